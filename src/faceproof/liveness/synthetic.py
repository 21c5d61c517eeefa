"""Liveness test clips made in code from the bundled public-domain portrait (no files needed).

One renderer draws a textured triangle mesh with 3D vertices through a pinhole camera (painter's
order, one dense `cv2.remap` per frame), so attacks and bona fide-like heads are drawn alike:

- ATTACKS: the photo as a flat print (halftone dots at 45 degrees, duller gamut, white paper
  border) or on a phone screen (pixel grid with RGB sub-pixel stripes, a glare spot, black
  bezel with a light rim, brighter and bluer), as a plane of small triangles: held still with
  hand jitter, tilted left and right about the vertical axis, swayed and scaled, bent (a
  cylinder) while tilting, all in front of a synthetic room background, with a mild camera
  blur.
- VIDEO REPLAY: a bona fide-like clip played on the phone screen, held with hand jitter. Its
  landmarks carry the recorded head's parallax: only a challenge or the passive screen cues
  (`liveness.cues`) can reject it.
- BONA FIDE-LIKE: the portrait's 468-point face mesh, given the model's own depth (z), rotated in
  3D about a point behind the face (piecewise-affine warp of the mesh's Delaunay triangles),
  optionally following challenge actions (turns, look up, blink by closing the eyelid points).

These clips are a lower bar than real attacks and real faces: see docs/liveness.md.
Everything stays in memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt
from scipy.spatial import Delaunay  # type: ignore[import-untyped]

from faceproof.liveness.clip import Clip
from faceproof.liveness.landmarks import MESH, FaceMeshLandmarker, Landmarker, Roi

__all__ = [
    "ATTACK_KINDS",
    "BONA_FIDE_KINDS",
    "SceneKit",
    "attack_clip",
    "bona_fide_clip",
    "replay_clip",
]

WIDTH, HEIGHT = 640, 480
FOCAL = 600.0  # pixels: about 56 degrees horizontal field of view, a laptop or phone camera

ATTACK_KINDS: Final = (
    "print_still",
    "print_tilt",
    "print_sway",
    "print_bent",
    "screen_still",
    "screen_tilt",
    "screen_sway",
)
BONA_FIDE_KINDS: Final = ("turns", "nod_and_turn", "challenge")

F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]


def _background(seed: int) -> U8:
    """A room-like backdrop: a vertical gradient, a few coloured panels, mild noise."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, HEIGHT)[:, None, None]
    base = (150 + 60 * y) * np.array([1.0, 0.95, 0.85])
    img = np.broadcast_to(base, (HEIGHT, WIDTH, 3)).copy()
    for _ in range(5):
        x0, y0 = int(rng.integers(0, WIDTH - 80)), int(rng.integers(0, HEIGHT - 80))
        w, h = int(rng.integers(60, 220)), int(rng.integers(60, 220))
        img[y0 : y0 + h, x0 : x0 + w] = rng.integers(40, 220, size=3)
    img += rng.normal(0, 3, img.shape)
    out: U8 = np.clip(img, 0, 255).astype(np.uint8)
    return out


def _render(
    texture: U8,
    uv: F64,
    verts: F64,
    triangles: npt.NDArray[np.int32],
    background: U8,
) -> U8:
    """Draw textured triangles (uv in texture pixels, verts in camera space) over background."""
    z = np.maximum(verts[:, 2], 1.0)
    proj = np.column_stack(
        [WIDTH / 2 + FOCAL * verts[:, 0] / z, HEIGHT / 2 + FOCAL * verts[:, 1] / z]
    )
    index = np.full((HEIGHT, WIDTH), -1, dtype=np.int32)
    depth = z[triangles].mean(axis=1)
    for t in np.argsort(-depth):  # far first: nearer triangles overwrite them
        pts = np.round(proj[triangles[t]] * 16).astype(np.int32)
        cv2.fillConvexPoly(index, pts, int(t), lineType=cv2.LINE_8, shift=4)
    # Inverse affine per triangle: destination pixel -> texture coordinate.
    dst = proj[triangles]  # (T, 3, 2)
    src = uv[triangles]
    ones = np.ones((len(triangles), 3, 1))
    a = np.concatenate([dst, ones], axis=2)  # (T, 3, 3)
    det = np.linalg.det(a)
    ok = np.abs(det) > 1e-9
    inv = np.zeros((len(triangles), 3, 2))
    inv[ok] = np.linalg.solve(a[ok], src[ok])  # rows: coefficients for x, y, 1
    ys, xs = np.nonzero(index >= 0)
    tri = index[ys, xs]
    coef = inv[tri]
    map_x = np.full((HEIGHT, WIDTH), -1.0, dtype=np.float32)
    map_y = np.full((HEIGHT, WIDTH), -1.0, dtype=np.float32)
    map_x[ys, xs] = xs * coef[:, 0, 0] + ys * coef[:, 1, 0] + coef[:, 2, 0]
    map_y[ys, xs] = xs * coef[:, 0, 1] + ys * coef[:, 1, 1] + coef[:, 2, 1]
    drawn = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = (index >= 0)[:, :, None]
    out: U8 = np.where(mask, drawn, background).astype(np.uint8)
    return out


def _grid(width: float, height: float, n: int) -> tuple[F64, npt.NDArray[np.int32]]:
    """An n x n grid of vertices over a width x height rectangle and its triangles."""
    u, v = np.meshgrid(np.linspace(0, width, n + 1), np.linspace(0, height, n + 1))
    uv = np.column_stack([u.ravel(), v.ravel()])
    tris = []
    for r in range(n):
        for c in range(n):
            i = r * (n + 1) + c
            tris += [(i, i + 1, i + n + 2), (i, i + n + 2, i + n + 1)]
    return uv, np.asarray(tris, dtype=np.int32)


def _rotation(yaw: float, pitch: float, roll: float) -> F64:
    """Degrees; yaw about the vertical axis, pitch about the horizontal, roll in the image."""
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    out: F64 = rz @ ry @ rx
    return out


@dataclass(frozen=True, slots=True, eq=False)
class SceneKit:
    """The portrait, its face mesh and a triangulation, computed once per process."""

    portrait: U8  # the subject as seen by the camera at rest, 640x480
    mesh: F64  # (468, 3) in portrait pixels, z in the same scale
    uv: F64  # mesh + anchor points (texture coordinates)
    triangles: npt.NDArray[np.int32]
    n_face: int  # the first n_face uv points are mesh points (the rest are static anchors)

    @classmethod
    def build(cls, landmarker: Landmarker | None = None) -> SceneKit:
        from faceproof.examples import example_portrait
        from faceproof.faces.detector import YuNetDetector

        photo = np.asarray(example_portrait(), dtype=np.uint8)
        # Put the face (box centre ~ (223, 119) in the 512 px original) at a selfie's size and
        # place: about 190 px wide, centred a little above the middle of a 640x480 frame.
        scale = 1.7
        big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        x0, y0 = round(223 * scale - WIDTH / 2), max(0, round(119 * scale - HEIGHT * 0.42))
        portrait: U8 = np.ascontiguousarray(big[y0 : y0 + HEIGHT, x0 : x0 + WIDTH], np.uint8)
        det = YuNetDetector().detect(portrait)[0]
        lm = landmarker or FaceMeshLandmarker()
        mesh = lm.landmarks(portrait, Roi.from_detection(det))
        mesh = lm.landmarks(portrait, mesh.next_roi())
        points = mesh.points.astype(np.float64)
        # Static anchors: an ellipse around the face and the frame border.
        centre = points[:, :2].mean(axis=0)
        radius = (points[:, :2].max(axis=0) - points[:, :2].min(axis=0)) / 2
        angles = np.linspace(0, 2 * math.pi, 24, endpoint=False)
        ring = centre + 1.35 * radius * np.column_stack([np.cos(angles), np.sin(angles)])
        border = [(x, y) for x in np.linspace(0, WIDTH - 1, 9) for y in (0, HEIGHT - 1)]
        border += [(x, y) for x in (0, WIDTH - 1) for y in np.linspace(0, HEIGHT - 1, 7)[1:-1]]
        uv = np.vstack([points[:, :2], ring, np.asarray(border, dtype=np.float64)])
        triangles = np.asarray(Delaunay(uv).simplices, dtype=np.int32)
        return cls(portrait, points, uv, triangles, len(points))

    def head_frame(
        self,
        yaw: float,
        pitch: float,
        eyes_closed: float = 0.0,
        shift: tuple[float, float] = (0, 0),
    ) -> U8:
        """The head rotated in 3D (degrees) about a point behind the face, eyes 0..1 closed."""
        pts = self.mesh.copy()
        if eyes_closed > 0:
            for upper, lower in (
                (MESH.right_upper_lid, MESH.right_lower_lid),
                (MESH.left_upper_lid, MESH.left_lower_lid),
            ):
                up, lo = np.asarray(upper), np.asarray(lower)
                pts[up, :2] += eyes_closed * 0.9 * (pts[lo, :2] - pts[up, :2])
        iod = float(np.linalg.norm(pts[MESH.left_eye_outer, :2] - pts[MESH.right_eye_outer, :2]))
        pivot = np.array([*pts[:, :2].mean(axis=0), pts[:, 2].mean() + 1.2 * iod])
        rotated = (pts - pivot) @ _rotation(yaw, pitch, 0.0).T + pivot
        rotated[:, :2] += shift
        anchors = np.column_stack([self.uv[self.n_face :], np.full(len(self.uv) - self.n_face, 0)])
        verts = np.vstack([rotated, anchors])
        # Camera space: pixel offsets from the image centre at depth FOCAL (scale 1 at z = 0).
        cam = np.column_stack(
            [verts[:, 0] - WIDTH / 2, verts[:, 1] - HEIGHT / 2, FOCAL + verts[:, 2]]
        )
        anchor_rows = slice(self.n_face, None)
        cam[anchor_rows, 2] = FOCAL  # anchors stay exactly where they are
        return _render(self.portrait, self.uv, cam, self.triangles, self.portrait)


def _hold(
    photo: U8,
    background: U8,
    *,
    yaw: float,
    pitch: float,
    roll: float,
    distance: float,
    shift: tuple[float, float],
    bend: float,
    uv_tris: tuple[F64, npt.NDArray[np.int32]],
) -> U8:
    """The photo as a plane (or a cylinder, curvature `bend` in 1/px) held before the camera."""
    uv, tris = uv_tris
    h, w = photo.shape[:2]
    x = uv[:, 0] - w / 2
    y = uv[:, 1] - h / 2
    z = np.zeros_like(x)
    if bend > 0:
        r = 1.0 / bend
        x, z = r * np.sin(x / r), -r * (1 - np.cos(x / r))  # edges curl towards the camera
    local = np.column_stack([x, y, z]) @ _rotation(yaw, pitch, roll).T
    cam = local + np.array([shift[0], shift[1], distance])
    return _render(photo, uv, cam, tris, background)


SCREEN_PITCH = 3  # texture px per screen pixel (the grid the camera resolves, just)
HALFTONE_PITCH = 5.0  # texture px per halftone cell, screen at 45 degrees
CAMERA_BLUR = 0.6  # Gaussian sigma (px) of the camera's optics on attack frames


def _pixel_grid(img: F64) -> F64:
    """A phone screen's pixels: RGB sub-pixel stripes and dark gaps between pixel rows."""
    h, w = img.shape[:2]
    cols = np.arange(w) % SCREEN_PITCH
    rows = np.arange(h) % SCREEN_PITCH
    stripes = np.full((w, 3), 0.8)
    for c in range(3):
        stripes[cols == c, c] = 1.25  # each column lights one sub-pixel colour brightest
    gap = np.where(rows == SCREEN_PITCH - 1, 0.6, 1.0)
    out: F64 = img * stripes[None, :, :] * gap[:, None, None]
    return out


def _glare(img: F64, centre: tuple[float, float], radius: float) -> F64:
    """A lamp's specular reflection on glass: a soft white blob added on top."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    d2 = ((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 * 2.5) / radius**2
    out: F64 = img + 320.0 * np.exp(-d2)[:, :, None]
    return out


def _halftone(img: F64) -> F64:
    """Amplitude-modulated halftone (one dot screen at 45 degrees) and a print's duller gamut."""
    h, w = img.shape[:2]
    grey = img.mean(axis=2, keepdims=True)
    dull = grey + 0.7 * (img - grey)  # inks cover less gamut than a camera sees
    dull = 18 + dull * (225 - 18) / 255  # paper white and ink black: lower contrast
    yy, xx = np.mgrid[0:h, 0:w]
    u = (xx + yy) / math.sqrt(2) * 2 * math.pi / HALFTONE_PITCH
    v = (xx - yy) / math.sqrt(2) * 2 * math.pi / HALFTONE_PITCH
    screen = (np.cos(u) + np.cos(v)) / 4 + 0.5  # 0..1 dot profile
    coverage = 1.0 - dull / 255.0  # ink needed
    ink = np.clip((coverage - screen[:, :, None]) * 4 + 0.5, 0, 1)  # soft-edged dots
    out: F64 = 240.0 * (1 - ink) + 8.0 * ink  # paper white where no ink
    # Colour: the dots carry the (dulled) hue.
    tint = dull / np.maximum(grey * (225 - 18) / 255 + 18, 1.0)
    out = out * np.clip(tint, 0.6, 1.4)
    return out


def _framed(portrait: U8, kind: str, glare_at: tuple[float, float] = (0.78, 0.2)) -> U8:
    """The portrait's head-and-shoulders cut as a print (halftone, paper border) or a phone
    screen (pixel grid, dark bezel with a light rim, a glare spot)."""
    face = portrait[40:440, 120:520].astype(np.float64)  # 400x400 around the face
    if kind == "screen":
        lit = _pixel_grid(face * [0.95, 1.0, 1.12] * 1.08 + 6)
        lit = _glare(lit, (glare_at[0] * 400, glare_at[1] * 400), 45.0)
        pad = 18
        out = np.full((400 + 2 * pad, 400 + 2 * pad + 10, 3), 12, dtype=np.uint8)
        out[:3, :] = out[-3:, :] = 190  # the phone's metal rim
        out[:, :3] = out[:, -3:] = 190
        out[pad : pad + 400, pad + 5 : pad + 405] = np.clip(lit, 0, 255).astype(np.uint8)
        return out
    pad = 24
    out = np.full((400 + 2 * pad, 400 + 2 * pad, 3), 236, dtype=np.uint8)
    out[pad : pad + 400, pad : pad + 400] = np.clip(_halftone(face), 0, 255).astype(np.uint8)
    return out


def _camera(frame: U8) -> U8:
    out: U8 = np.asarray(cv2.GaussianBlur(frame, (0, 0), CAMERA_BLUR), np.uint8)
    return out


def attack_clip(
    kit: SceneKit, kind: str, *, seed: int = 0, fps: float = 15.0, seconds: float = 3.0
) -> Clip:
    """One presentation attack of `kind` (see ATTACK_KINDS), deterministic for a seed."""
    if kind not in ATTACK_KINDS:
        raise ValueError(f"unknown attack kind {kind!r}; expected one of {ATTACK_KINDS}")
    rng = np.random.default_rng(seed)
    medium, motion = kind.split("_")
    photo = _framed(kit.portrait, medium)
    background = _background(seed + 1)
    uv_tris = _grid(photo.shape[1], photo.shape[0], 14)
    n = round(fps * seconds)
    frames = []
    base_distance = FOCAL * 1.05
    jitter = rng.normal(0, 1, (n, 5)).cumsum(axis=0) * 0.15  # slow hand drift
    for i in range(n):
        phase = 2 * math.pi * i / n
        yaw, pitch, roll = jitter[i, 0], jitter[i, 1], jitter[i, 2] * 0.5
        shift = (jitter[i, 3] * 2, jitter[i, 4] * 2)
        distance, bend = base_distance, 0.0
        if motion == "tilt":
            yaw += 35 * math.sin(phase)
            pitch += 8 * math.sin(2 * phase)
        elif motion == "sway":
            shift = (shift[0] + 60 * math.sin(phase), shift[1] + 20 * math.sin(2 * phase))
            distance *= 1 + 0.25 * math.sin(phase)
            roll += 12 * math.sin(phase)
            yaw += 15 * math.sin(2 * phase)
        elif motion == "bent":
            bend = 1 / 260.0
            yaw += 30 * math.sin(phase)
        frames.append(
            _camera(
                _hold(
                    photo,
                    background,
                    yaw=yaw,
                    pitch=pitch,
                    roll=roll,
                    distance=distance,
                    shift=shift,
                    bend=bend,
                    uv_tris=uv_tris,
                )
            )
        )
    return Clip.from_arrays(frames, [i / fps for i in range(n)], source=f"synthetic:{kind}")


Pose = tuple[float, float, float]  # yaw, pitch, eyes_closed


def _turns(t: float) -> Pose:
    return (28 * math.sin(2 * math.pi * t / 3.0), 0.0, 0.0)


def _nod_and_turn(t: float) -> Pose:
    return (20 * math.sin(2 * math.pi * t / 3.0), 12 * math.sin(2 * math.pi * t / 1.5), 0.0)


def _bump(t: float, start: float, end: float) -> float:
    """0 outside [start, end], a smooth 0 -> 1 -> 0 bump inside."""
    if not start < t < end:
        return 0.0
    return math.sin(math.pi * (t - start) / (end - start)) ** 2


def challenge_motion(
    actions: Sequence[str], windows: Sequence[tuple[float, float]]
) -> Callable[[float], Pose]:
    """A pose track that performs each action in the middle of its window."""

    def pose(t: float) -> Pose:
        yaw = pitch = eyes = 0.0
        for action, (start, end) in zip(actions, windows, strict=True):
            mid = (start + end) / 2
            half = (end - start) * 0.35
            b = _bump(t, mid - half, mid + half)
            # Renderer yaw < 0 moves the nose to image right: the subject's left, as a
            # (non-mirrored) camera sees it; see liveness.landmarks for the measured signs.
            if action == "turn_left":
                yaw -= 30 * b
            elif action == "turn_right":
                yaw += 30 * b
            elif action == "look_up":
                pitch -= 22 * b
            elif action == "blink":
                eyes += min(1.0, 2.5 * b)
        return (yaw, pitch, eyes)

    return pose


def bona_fide_clip(
    kit: SceneKit,
    kind: str = "turns",
    *,
    fps: float = 15.0,
    seconds: float = 3.0,
    motion: Callable[[float], Pose] | None = None,
    seed: int = 0,
) -> Clip:
    """A 3D head (the portrait's mesh with depth) turning; `motion` overrides the kind's track."""
    if motion is None:
        if kind == "turns":
            motion = _turns
        elif kind == "nod_and_turn":
            motion = _nod_and_turn
        else:
            raise ValueError(f"kind {kind!r} needs an explicit motion (see challenge_motion)")
    rng = np.random.default_rng(seed)
    n = round(fps * seconds)
    drift = rng.normal(0, 0.6, (n, 2)).cumsum(axis=0)
    frames = []
    for i in range(n):
        yaw, pitch, eyes = motion(i / fps)
        frames.append(
            kit.head_frame(yaw, pitch, eyes, shift=(float(drift[i, 0]), float(drift[i, 1])))
        )
    return Clip.from_arrays(frames, [i / fps for i in range(n)], source=f"synthetic:{kind}")


def replay_clip(kit: SceneKit, recording: Clip, *, seed: int = 0) -> Clip:
    """`recording` replayed on a phone screen held in front of the camera (hand jitter)."""
    rng = np.random.default_rng(seed)
    background = _background(seed + 1)
    n = len(recording.frames)
    jitter = rng.normal(0, 1, (n, 5)).cumsum(axis=0) * 0.15
    frames = []
    uv_tris: tuple[F64, npt.NDArray[np.int32]] | None = None
    for i, shown in enumerate(recording.frames):
        photo = _framed(np.asarray(shown), "screen")
        uv_tris = uv_tris or _grid(photo.shape[1], photo.shape[0], 14)
        frames.append(
            _camera(
                _hold(
                    photo,
                    background,
                    yaw=float(jitter[i, 0]),
                    pitch=float(jitter[i, 1]),
                    roll=float(jitter[i, 2]) * 0.5,
                    distance=FOCAL * 1.05,
                    shift=(float(jitter[i, 3]) * 2, float(jitter[i, 4]) * 2),
                    bend=0.0,
                    uv_tris=uv_tris,
                )
            )
        )
    return Clip.from_arrays(frames, list(recording.timestamps), source="synthetic:replay")


def encode_video(clip: Clip, fmt: str = "mp4", codec: str = "mpeg4") -> bytes:
    """A clip as a video file in memory (PyAV; MPEG-4 part 2 in MP4 by default), with one
    timestamp per frame at the clip's rate: what a capture client would upload."""
    import io
    from fractions import Fraction

    import av

    fps = round(clip.fps)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as out:
        stream: Any = out.add_stream(codec, rate=fps)  # a VideoStream; PyAV types a union
        stream.width, stream.height = clip.size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {"qscale": "3"} if codec == "mpeg4" else {}
        for i, pixels in enumerate(clip.frames):
            frame = av.VideoFrame.from_ndarray(np.asarray(pixels), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()
