"""3D parallax: does the face move like a head, or like a flat picture?

A photo or a screen moved in front of a camera is a plane: the image of every point on it moves
by one homography between any two frames, whatever the hand does (shift, scale, tilt, sway). A
real head turning is not a plane: the nose tip moves against the cheeks and the face outline,
and no single homography explains all 468 mesh points.

For each frame against a reference frame (the most frontal one), two least-squares fits of the
face-mesh points are made, and their RMS residuals are divided by the reference inter-ocular
distance (so the numbers do not depend on face size):

- `motion`: the residual of a 2D similarity (shift, scale, in-plane rotation). It measures how
  much the face changed shape at all; a still face, still photo or a photo only shifted in the
  image plane leaves it near the landmark noise.
- `residual`: the residual of a homography. A plane tilted in 3D is explained by it; a head is
  not.
- `displacement`: the RMS point motion after removing only the mean shift: any scaling,
  rotation or tilt of the face in the image.

Frames whose `motion` is below `min_motion` carry no evidence of depth. With at least
`min_moving_frames` such frames, the parallax score is a high percentile of `residual` over
them, and the clip shows 3D motion when it reaches `planar_threshold`. Otherwise the clip is
either planar (the face did move in the image, `displacement` >= `min_displacement`, but like a
plane: a photo swayed, scaled or tilted) or shows insufficient motion (a still face or a photo
held still). Neither is ever "live". Thresholds were set on the generated clips of
`liveness.synthetic` (docs/liveness.md gives the measured values and their margins).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from faceproof.faces.geometry import similarity_transform

__all__ = ["ParallaxConfig", "ParallaxResult", "measure_parallax"]

# Mesh points used: every 3rd of the 468 keeps the whole face (outline, eyes, nose, mouth) and
# makes the fits cheap.
_SUBSET: Final = np.arange(0, 468, 3)


@dataclass(frozen=True, slots=True)
class ParallaxConfig:
    min_motion: float = 0.035  # similarity residual / IOD for a frame to count as "moving"
    min_moving_frames: int = 3
    min_displacement: float = 0.05  # RMS motion minus shift / IOD: "the face did move"
    planar_threshold: float = 0.022  # homography residual / IOD below which motion is planar
    percentile: float = 80.0
    max_pairs: int = 30  # frames compared with the reference (evenly spread): bounds the cost
    score_scale: float = 0.008  # width of the logistic that maps residual to a 0..1 score


@dataclass(frozen=True, slots=True)
class ParallaxResult:
    score: float  # 0..1, > 0.5 when the motion is not planar
    residual: float  # the percentile of homography residuals over moving frames (/ IOD)
    max_motion: float  # the largest similarity residual seen (/ IOD)
    max_displacement: float  # the largest RMS motion after removing the shift (/ IOD)
    moving_frames: int
    depth_seen: bool  # 3D (non-planar) motion: the only outcome that supports "live"
    planar: bool  # the face moved, but like a plane

    @property
    def insufficient(self) -> bool:
        return not self.depth_seen and not self.planar

    def to_dict(self) -> dict[str, float | int | bool]:
        return {
            "score": round(self.score, 4),
            "residual": round(self.residual, 4),
            "max_motion": round(self.max_motion, 4),
            "max_displacement": round(self.max_displacement, 4),
            "moving_frames": self.moving_frames,
            "depth_seen": self.depth_seen,
            "planar": self.planar,
        }


def _rms(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    return float(np.sqrt(np.mean(np.sum((a - b) ** 2, axis=1))))


def measure_parallax(
    tracks: npt.NDArray[np.floating],
    reference: int,
    config: ParallaxConfig | None = None,
) -> ParallaxResult:
    """tracks: (frames, 468, 2) mesh points in image pixels; reference: index of a frame."""
    cfg = config or ParallaxConfig()
    full = np.asarray(tracks, dtype=np.float64)
    iod = float(np.linalg.norm(full[reference, 33] - full[reference, 263]))  # outer eye corners
    pts = full[:, _SUBSET, :]
    ref = pts[reference]
    if iod < 1e-6 or len(pts) < 2:
        return ParallaxResult(0.0, 0.0, 0.0, 0.0, 0, False, False)
    ref_h = np.hstack([ref, np.ones((len(ref), 1))])
    ref_c = ref - ref.mean(axis=0)
    motions, residuals, displacements = [], [], []
    step = max(1, -(-(len(pts) - 1) // cfg.max_pairs))
    for i, cur in enumerate(pts):
        if i == reference or (i - reference) % step:
            continue
        sim = similarity_transform(ref, cur)
        motion = _rms(ref_h @ sim.T, cur) / iod
        h, _ = cv2.findHomography(ref, cur, 0)
        if h is None:
            residual = motion
        else:
            proj = ref_h @ h.T
            proj = proj[:, :2] / proj[:, 2:3]
            residual = _rms(proj, cur) / iod
        motions.append(motion)
        residuals.append(residual)
        displacements.append(_rms(cur - cur.mean(axis=0), ref_c) / iod)
    motion_arr, resid_arr = np.asarray(motions), np.asarray(residuals)
    moving = motion_arr >= cfg.min_motion
    n_moving = int(moving.sum())
    max_motion = float(motion_arr.max())
    max_disp = float(max(displacements))
    if n_moving >= cfg.min_moving_frames:
        residual = float(np.percentile(resid_arr[moving], cfg.percentile))
    else:
        residual = float(np.percentile(resid_arr, cfg.percentile))
    score = float(1.0 / (1.0 + np.exp(-(residual - cfg.planar_threshold) / cfg.score_scale)))
    depth = n_moving >= cfg.min_moving_frames and residual >= cfg.planar_threshold
    if not depth:
        score = min(score, 0.5 * score)  # no depth evidence: never above 0.25
    planar = not depth and max_disp >= cfg.min_displacement
    return ParallaxResult(score, residual, max_motion, max_disp, n_moving, depth, planar)
