"""The liveness engine: one clip (and optionally a challenge) in, one `LivenessResult` out.

Per frame, the face is tracked as MediaPipe tracks it: YuNet finds it on a keyframe (every
`keyframe_every` frames, on a copy shrunk to `detect_side` px), and between keyframes the next
crop comes from the previous mesh. Each tracked frame yields the 468-point mesh, head pose, eye
and mouth openness. Then the checks run:

- timing: timestamps strictly increasing, a sane frame rate, no long gap, few identical frames;
- light: the face region is bright enough to judge (`too_dark`);
- continuity: the track never jumps (a cut or splice) and SFace embeddings of three keyframes
  agree (`face_changed`);
- parallax: 3D motion, not a plane (`planar_motion`) and not a still face
  (`motion_insufficient`) - see `liveness.parallax`; this runs with or without a challenge;
- passive cues: a screen's pixel grid/moire, bezel and glare, a print's halftone, on the
  sharpest few frames (`screen_detected`, `print_detected`) - see `liveness.cues`; with or
  without a challenge (this is what rejects a replayed video without one);
- challenge (only when one is given): its actions in order, inside their windows
  (`challenge_not_followed`).

No face at all raises `FaceError(face_not_found)`; a second clear face on a keyframe raises
`FaceError(face_multiple)`.

The clip is always tracked in `track_segments` parts, each from a keyframe detection, so the
result never depends on how many threads ran them. The parts, the two halves of the blink
refinement, and the identity embeddings (beside the other checks) run on a free helper thread
when there is one (faceproof.parallel): on an idle machine that about halves a clip's wait.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import cv2
import numpy as np
import numpy.typing as npt

from faceproof.errors import FaceError
from faceproof.faces.detector import FaceDetector, YuNetDetector, rank_subject_faces
from faceproof.faces.embedders import Embedder, SFaceEmbedder
from faceproof.faces.types import BoundingBox, FaceDetection, FloatArray
from faceproof.liveness.challenge import (
    ActionThresholds,
    Challenge,
    FrameMeasures,
    follow_actions,
)
from faceproof.liveness.clip import Clip
from faceproof.liveness.cues import CueThresholds, decide, frame_cues, summarise
from faceproof.liveness.landmarks import (
    FaceMesh,
    FaceMeshLandmarker,
    Landmarker,
    Roi,
    eye_aspect_ratio,
    head_pose,
    mouth_openness,
)
from faceproof.liveness.pad_model import PadModel
from faceproof.liveness.parallax import ParallaxConfig, measure_parallax
from faceproof.liveness.result import CheckResult, LivenessResult
from faceproof.parallel import Helpers, shared_helpers
from faceproof.reasons import ReasonCode

__all__ = ["LivenessConfig", "LivenessEngine"]


@dataclass(frozen=True, slots=True)
class LivenessConfig:
    keyframe_every: int = 8  # YuNet re-checks the track (and counts faces) every 8 frames
    detect_side: int = 320  # YuNet runs on a copy with this long side (faces stay > 60 px)
    min_presence: float = 0.5  # mesh face-presence probability to keep tracking
    extra_face_min_confidence: float = 0.75  # as faces.analyzer: a "second person"
    extra_face_min_relative_width: float = 0.35
    min_face_fraction: float = 0.8  # of frames that must hold the tracked face
    max_jump_iod: float = 0.8  # centre jump between consecutive tracked frames / IOD: a cut
    max_scale_jump: float = 1.35  # face-size ratio between consecutive tracked frames
    identity_frames: int = 3
    # The clip is tracked in this many parts, each starting at a keyframe (fixed, so that
    # results never depend on the thread count); the parts run in parallel.
    track_segments: int = 2
    min_identity_cosine: float = 0.30  # SFace; impostors sit near 0.1, genuine pairs > 0.45
    min_fps: float = 5.0
    max_fps: float = 120.0
    max_gap_s: float = 0.5
    max_identical_fraction: float = 0.3
    dark_luma: float = 45.0  # mean face luma (0-255) below which the clip is too dark
    parallax: ParallaxConfig = field(default_factory=ParallaxConfig)
    cue_frames: int = 3  # passive cues run on this many of the sharpest tracked frames
    cue_candidates: int = 15  # ... chosen among this many evenly spread tracked frames
    cues: CueThresholds = field(default_factory=CueThresholds)
    actions: ActionThresholds = field(default_factory=ActionThresholds)


@dataclass(slots=True)
class _Track:
    meshes: list[FaceMesh | None]
    keyframe_faces: list[tuple[int, FaceDetection]]
    cut_at: int | None = None

    @classmethod
    def joined(cls, parts: list[_Track]) -> _Track:
        """Consecutive parts as one track. Where a part starts (always on a detection), that
        detection must sit where the previous part's last mesh would have looked next, as a
        keyframe inside one part must."""
        meshes: list[FaceMesh | None] = []
        faces: list[tuple[int, FaceDetection]] = []
        cuts = [p.cut_at for p in parts if p.cut_at is not None]
        for part in parts:
            previous = meshes[-1] if meshes else None
            start = len(meshes)
            if previous is not None and part.keyframe_faces:
                i, det = part.keyframe_faces[0]
                if i == start and _moved(det, previous.next_roi()):
                    cuts.append(i)
            meshes += part.meshes
            faces += part.keyframe_faces
        return cls(meshes, faces, min(cuts) if cuts else None)


def _moved(det: FaceDetection, roi: Roi) -> bool:
    """The detected face is not where the track expected it: a cut or another face."""
    cx, cy = det.box.center
    iod = max(det.inter_eye_distance, 1.0)
    return math.hypot(cx - roi.cx, cy - roi.cy) > 1.2 * iod


# An eye ratio below this fraction of the open-eye baseline is closing: its frame's skipped
# neighbours get refined eyelids too (LivenessEngine._refine_eyelids).
_CLOSING = 0.85


def _logistic(x: float, centre: float, scale: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, (x - centre) / scale))))


class LivenessEngine:
    """Loads its models once; `analyze` is safe to call many times (not from many threads)."""

    def __init__(
        self,
        *,
        detector: FaceDetector | None = None,
        landmarker: Landmarker | None = None,
        embedder: Embedder | None = None,
        config: LivenessConfig | None = None,
        timer: Callable[[], float] = time.perf_counter,
        pad_model: PadModel | None = None,
        helpers: Helpers | None = None,
    ) -> None:
        """`pad_model`: an operator's learned PAD cue (liveness.pad_model); None: not used.
        `helpers`: spare threads for an analysis's parts (default: the process's, see
        faceproof.parallel; `Helpers(0)`: one thread). The models are shared between threads
        (onnxruntime sessions are thread-safe)."""
        self.detector: FaceDetector = detector or YuNetDetector()
        self.landmarker: Landmarker = landmarker or FaceMeshLandmarker()
        self.embedder: Embedder = embedder or SFaceEmbedder()
        self.config = config or LivenessConfig()
        self.pad_model = pad_model
        self._timer = timer
        self.helpers = helpers if helpers is not None else shared_helpers()

    # --- tracking ---------------------------------------------------------------------------

    def _detect(self, rgb: npt.NDArray[np.uint8]) -> list[FaceDetection]:
        h, w = rgb.shape[:2]
        scale = min(1.0, self.config.detect_side / max(h, w))
        small: npt.NDArray[np.uint8] = rgb
        if scale < 1.0:
            size = (round(w * scale), round(h * scale))
            small = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), np.uint8)
        inv = 1.0 / scale
        out = []
        for d in rank_subject_faces(self.detector.detect(small), small.shape[1], small.shape[0]):
            b = d.box
            out.append(
                FaceDetection(
                    BoundingBox(b.x * inv, b.y * inv, b.width * inv, b.height * inv),
                    tuple((x * inv, y * inv) for x, y in d.landmarks),  # type: ignore[arg-type]
                    d.confidence,
                )
            )
        return out

    def _segments(self, frames: int) -> list[tuple[int, int]]:
        """[start, stop) of each part to track; every start after 0 is a keyframe."""
        k = self.config.keyframe_every
        parts = max(1, self.config.track_segments)
        bounds = [0]
        for s in range(1, parts):
            b = round(frames * s / parts / k) * k
            if bounds[-1] < b < frames:
                bounds.append(b)
        return list(zip(bounds, [*bounds[1:], frames], strict=True))

    def _track(self, clip: Clip) -> _Track:
        parts = self.helpers.all(
            [
                partial(self._track_part, clip, start, stop)
                for start, stop in self._segments(len(clip.frames))
            ]
        )
        return _Track.joined(parts)

    def _track_part(self, clip: Clip, start: int, stop: int) -> _Track:
        cfg = self.config
        meshes: list[FaceMesh | None] = []
        keyframe_faces: list[tuple[int, FaceDetection]] = []
        roi: Roi | None = None
        cut_at: int | None = None
        for i in range(start, stop):
            frame = clip.frames[i]
            det: FaceDetection | None = None
            if roi is None or i % cfg.keyframe_every == 0:
                ranked = self._detect(frame)
                if ranked:
                    det = ranked[0]
                    others = [
                        d
                        for d in ranked[1:]
                        if d.confidence >= cfg.extra_face_min_confidence
                        and d.box.width >= cfg.extra_face_min_relative_width * det.box.width
                    ]
                    if others:
                        raise FaceError(
                            ReasonCode.FACE_MULTIPLE,
                            f"{1 + len(others)} faces in frame {i}; only the applicant may be "
                            "in the video.",
                            face_count=1 + len(others),
                            frame=i,
                        )
                    keyframe_faces.append((i, det))
                    # The tracked face and the detected one must be the same place.
                    if roi is not None and cut_at is None and _moved(det, roi):
                        cut_at = i
                    if roi is None:
                        roi = Roi.from_detection(det)
                elif roi is None:
                    meshes.append(None)
                    continue
            assert roi is not None
            mesh = self.landmarker.landmarks(frame, roi)
            if mesh.presence < cfg.min_presence:
                meshes.append(None)
                roi = None
                continue
            meshes.append(mesh)
            roi = mesh.next_roi()
        return _Track(meshes, keyframe_faces, cut_at)

    # --- checks -----------------------------------------------------------------------------

    def _timing(self, clip: Clip) -> CheckResult:
        cfg = self.config
        t = np.asarray(clip.timestamps, dtype=np.float64)
        dt = np.diff(t)
        problems: list[str] = []
        if dt.size == 0 or np.any(dt <= 0):
            problems.append("timestamps not strictly increasing")
        positive = dt[dt > 0]
        fps = 1.0 / float(np.median(positive)) if positive.size else 0.0
        if not cfg.min_fps <= fps <= cfg.max_fps:
            problems.append(f"frame rate {fps:.1f} outside {cfg.min_fps:g}-{cfg.max_fps:g}")
        max_gap = float(dt.max()) if dt.size else 0.0
        if max_gap > max(cfg.max_gap_s, 5.0 / max(fps, 1e-6)):
            problems.append(f"gap of {max_gap:.2f} s")
        # Identical consecutive frames: a few are normal (webcams repeat frames in low light);
        # many, or a frozen stretch longer than the largest allowed gap, are not.
        same = [np.array_equal(a, b) for a, b in zip(clip.frames, clip.frames[1:], strict=False)]
        identical = sum(same)
        identical_fraction = identical / max(1, len(clip.frames) - 1)
        frozen, run_start = 0.0, None
        for k, is_same in enumerate([*same, False]):
            if is_same and run_start is None:
                run_start = k
            elif not is_same and run_start is not None:
                frozen = max(frozen, float(t[k] - t[run_start]))
                run_start = None
        if identical_fraction > cfg.max_identical_fraction or frozen > cfg.max_gap_s:
            problems.append(f"{identical} identical consecutive frames ({frozen:.2f} s frozen)")
        details = {
            "fps": round(fps, 2),
            "max_gap_s": round(max_gap, 3),
            "identical_fraction": round(identical_fraction, 3),
            **({"problems": problems} if problems else {}),
        }
        ok = not problems
        return CheckResult(
            "timing", 1.0 if ok else 0.0, ok, None if ok else ReasonCode.FRAME_TIMING, details
        )

    def _light(self, clip: Clip, meshes: list[FaceMesh | None]) -> CheckResult:
        lumas = []
        for frame, mesh in zip(clip.frames, meshes, strict=True):
            if mesh is None:
                continue
            x0, y0 = np.floor(mesh.xy.min(axis=0)).astype(int)
            x1, y1 = np.ceil(mesh.xy.max(axis=0)).astype(int)
            h, w = frame.shape[:2]
            patch = frame[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
            if patch.size:
                lumas.append(float(patch.mean()))
        luma = float(np.median(lumas)) if lumas else float(np.mean([f.mean() for f in clip.frames]))
        ok = luma >= self.config.dark_luma
        score = _logistic(luma, self.config.dark_luma, 5.0)
        return CheckResult(
            "light", score, ok, None if ok else ReasonCode.TOO_DARK, {"face_luma": round(luma, 1)}
        )

    def _identity_picks(self, track: _Track) -> list[int]:
        """Indices into the keyframe faces: a few spread over the clip."""
        n = len(track.keyframe_faces)
        if not n:
            return []
        return sorted({round(k) for k in np.linspace(0, n - 1, self.config.identity_frames)})

    def _embed_keyframes(
        self, clip: Clip, track: _Track, picks: list[int]
    ) -> list[tuple[int, FloatArray]]:
        faces = [track.keyframe_faces[k] for k in picks]
        return [(i, self.embedder.embed(clip.frames[i], det)) for i, det in faces]

    @staticmethod
    def _identity(samples: list[tuple[int, FloatArray]]) -> tuple[float, list[int]]:
        """Lowest cosine between the frames' embeddings, and those frames (in clip order)."""
        min_cos = 1.0
        for a in range(len(samples)):
            for b in range(a + 1, len(samples)):
                min_cos = min(min_cos, float(np.dot(samples[a][1], samples[b][1])))
        return min_cos, sorted(i for i, _ in samples)

    def _continuity(self, track: _Track, identity: tuple[float, list[int]]) -> CheckResult:
        cfg = self.config
        details: dict[str, object] = {}
        cut = track.cut_at
        prev: FaceMesh | None = None
        for i, mesh in enumerate(track.meshes):
            if mesh is None:
                continue
            if prev is not None:
                jump = float(np.linalg.norm(mesh.xy.mean(axis=0) - prev.xy.mean(axis=0)))
                iod = max(prev.inter_ocular, 1.0)
                ratio = mesh.inter_ocular / iod
                if cut is None and (
                    jump > cfg.max_jump_iod * iod
                    or not 1 / cfg.max_scale_jump <= ratio <= cfg.max_scale_jump
                ):
                    cut = i
            prev = mesh
        if cut is not None:
            details["cut_at_frame"] = cut
        min_cos, identity_frames = identity
        details["min_identity_cosine"] = round(min_cos, 3)
        details["identity_frames"] = identity_frames
        ok = cut is None and min_cos >= cfg.min_identity_cosine
        score = 0.0 if cut is not None else _logistic(min_cos, cfg.min_identity_cosine, 0.05)
        return CheckResult(
            "continuity", score, ok, None if ok else ReasonCode.FACE_CHANGED, details
        )

    def _passive(
        self, clip: Clip, tracked: list[int], meshes: list[FaceMesh | None]
    ) -> CheckResult:
        """Screen and print cues (liveness.cues) on the sharpest few tracked frames."""
        cfg = self.config
        picks = sorted({round(k) for k in np.linspace(0, len(tracked) - 1, cfg.cue_candidates)})
        scored: list[tuple[float, int, tuple[float, float, float, float]]] = []
        for k in picks:
            mesh = meshes[k]
            if mesh is None:
                continue
            frame = clip.frames[tracked[k]]
            x0, y0 = mesh.xy.min(axis=0)
            x1, y1 = mesh.xy.max(axis=0)
            h, w = frame.shape[:2]
            ix0, iy0 = max(0, int(x0)), max(0, int(y0))
            patch = frame[iy0 : min(h, int(y1) + 1), ix0 : min(w, int(x1) + 1)]
            if patch.size == 0:
                continue
            grey = cv2.cvtColor(np.ascontiguousarray(patch), cv2.COLOR_RGB2GRAY)
            sharp = float(cv2.Laplacian(grey, cv2.CV_64F).var())
            box = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
            scored.append((sharp, tracked[k], box))
        scored.sort(key=lambda s: -s[0])
        chosen = sorted(scored[: cfg.cue_frames], key=lambda s: s[1])
        per_frame = [frame_cues(clip.frames[i], box) for _, i, box in chosen]
        if not per_frame:
            return CheckResult("passive", 0.5, True, None, {"frames": []})
        cues = summarise(per_frame)
        verdict = decide(cues, cfg.cues)
        code = None
        if verdict.screen:
            code = ReasonCode.SCREEN_DETECTED
        elif verdict.print_:
            code = ReasonCode.PRINT_DETECTED
        details: dict[str, object] = {
            "frames": [i for _, i, _ in chosen],
            "moire": round(cues.moire, 2),
            "halftone": round(cues.halftone, 2),
            "frame_sides": cues.frame_sides,
            "glare": round(cues.glare, 4),
            "saturation_p90": round(cues.saturation, 3),
            "screen": verdict.screen,
            "print": verdict.print_,
        }
        if verdict.why:
            details["why"] = list(verdict.why)
        return CheckResult("passive", verdict.score, code is None, code, details)

    def _pad_model(
        self,
        clip: Clip,
        tracked: list[int],
        meshes: list[FaceMesh | None],
        passive: CheckResult,
    ) -> list[CheckResult]:
        """The operator's PAD model on the frames the passive check chose; median live
        probability against its threshold (`presentation_attack`). [] without a model."""
        model = self.pad_model
        if model is None:
            return []
        mesh_at = dict(zip(tracked, meshes, strict=True))  # frame index -> its mesh
        frames = [int(i) for i in passive.details.get("frames", [])]
        if not frames:  # the passive check found no usable patch: spread over tracked frames
            spread = np.linspace(0, len(tracked) - 1, min(len(tracked), self.config.cue_frames))
            frames = sorted({tracked[round(k)] for k in spread})
        probabilities = []
        for i in frames:
            mesh = mesh_at.get(i)
            if mesh is None:
                continue
            x0, y0 = mesh.xy.min(axis=0)
            x1, y1 = mesh.xy.max(axis=0)
            box = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
            probabilities.append(model.live_probability(clip.frames[i], box))
        live = float(np.median(probabilities)) if probabilities else 0.0
        t = model.threshold
        # Piecewise linear so that 0.5 is the threshold, like every other check's score.
        score = 0.5 * live / t if live < t else 0.5 + 0.5 * (live - t) / max(1.0 - t, 1e-9)
        ok = bool(probabilities) and live >= t
        details: dict[str, object] = {
            "model": model.model_id,
            "frames": frames,
            "live_probability": round(live, 4),
            "per_frame": [round(p, 4) for p in probabilities],
            "threshold": t,
        }
        code = None if ok else ReasonCode.PRESENTATION_ATTACK
        return [CheckResult("pad_model", min(1.0, max(0.0, score)), ok, code, details)]

    def _refine_eyelids(
        self, clip: Clip, track: _Track, tracked: list[int], challenge: Challenge
    ) -> None:
        """Eyelids from the eye-contour model on the frames a blink is judged on: the neutral
        start (the open-eye baseline) and each blink's window. The face mesh alone keeps its
        eyes open on a closed eye, so without this no blink is ever seen.

        The model costs two runs (~7 ms) per frame, so it runs in two passes: every other
        frame first, then the skipped neighbours of any frame whose eyes were already closing
        (below `_CLOSING` of the baseline). A blink lasts several frames, closing and opening,
        so one of them is always in the first pass. Frames left unrefined have no eye ratio
        (`analyze`): the plain mesh's would not compare with the refined baseline."""
        refine = getattr(self.landmarker, "refine_eyes", None)
        if refine is None:  # a landmarker without an eye model (tests' fakes)
            return
        neutral_s = self.config.actions.neutral_s
        windows = [
            w for a, w in zip(challenge.actions, challenge.windows, strict=True) if a == "blink"
        ]
        t0 = clip.timestamps[tracked[0]]
        spans = [
            [i for i in tracked if start <= clip.timestamps[i] - t0 <= end]
            for start, end in [(0.0, neutral_s), *windows]
        ]

        def refine_all(part: list[int]) -> list[FaceMesh]:
            return [refine(clip.frames[i], track.meshes[i]) for i in part]

        def refine_in_parallel(frames: list[int]) -> None:
            half = len(frames) // 2
            parts = self.helpers.all(
                [partial(refine_all, frames[:half]), partial(refine_all, frames[half:])]
            )
            for i, mesh in zip(frames, [m for part in parts for m in part], strict=True):
                track.meshes[i] = mesh

        def eye(i: int) -> float:
            mesh = track.meshes[i]
            return eye_aspect_ratio(mesh) if mesh is not None else math.nan

        first = {i for span in spans for i in span[::2]}
        refine_in_parallel(sorted(first))
        baseline = [eye(i) for i in spans[0] if i in first]
        if not baseline:
            return
        closing = _CLOSING * float(np.median(baseline))
        second: set[int] = set()
        for span in spans[1:]:
            for k, i in enumerate(span):
                if i in first and eye(i) < closing:
                    second.update(j for j in span[max(0, k - 1) : k + 2] if j not in first)
        if second:
            refine_in_parallel(sorted(second))

    # --- the whole analysis -----------------------------------------------------------------

    def analyze(
        self,
        clip: Clip,
        challenge: Challenge | None = None,
        *,
        with_best_frame: Callable[[int], FloatArray | None] | None = None,
    ) -> LivenessResult:
        """`with_best_frame(i)`: called with the best frame's index as soon as it is known,
        while the identity embeddings run beside (the caller's 1:1 match, which then adds no
        wait); it runs whether or not the clip turns out live, and its errors propagate. It
        may return the best frame's unit embedding by this engine's recogniser
        (`embedder.model_id`), which then stands in for the middle identity keyframe: the
        same face is not embedded twice."""
        started = self._timer()
        cfg = self.config
        track = self._track(clip)
        tracked = [i for i, m in enumerate(track.meshes) if m is not None]
        if not tracked:
            raise FaceError(ReasonCode.FACE_NOT_FOUND, "No face was found in the video.")
        if challenge is not None and "blink" in challenge.actions:
            self._refine_eyelids(clip, track, tracked, challenge)
        # SFace on the identity keyframes (the costliest check) beside the others.
        # The identity keyframes' embeddings (the costliest check) beside the others; a best
        # frame embedding from `with_best_frame` stands in for the middle one.
        picks = self._identity_picks(track)
        middle = picks[1:-1] if with_best_frame is not None else []
        ends = [k for k in picks if k not in middle]
        identity = self.helpers.beside(partial(self._embed_keyframes, clip, track, ends))
        meshes = [track.meshes[i] for i in tracked]
        refined = (
            challenge is not None
            and "blink" in challenge.actions
            and hasattr(self.landmarker, "refine_eyes")
        )
        measures = []
        for i in tracked:
            mesh = track.meshes[i]
            assert mesh is not None
            yaw, pitch, _ = head_pose(mesh)
            # With a blink asked, only refined eyelids are compared (see _refine_eyelids).
            eye = eye_aspect_ratio(mesh) if mesh.eyelids is not None or not refined else math.nan
            measures.append(
                FrameMeasures(clip.timestamps[i], yaw, pitch, eye, mouth_openness(mesh))
            )
        checks = [self._timing(clip), self._light(clip, track.meshes)]
        continuity_at = len(checks)
        # Parallax against the most frontal tracked frame.
        yaws = np.asarray([m.yaw for m in measures])
        pitches = np.asarray([m.pitch for m in measures])
        frontal = np.abs(yaws - np.median(yaws)) + np.abs(pitches - np.median(pitches))
        reference = int(np.argmin(np.abs(yaws) + np.abs(pitches - np.median(pitches))))
        tracks = np.stack([m.xy for m in meshes if m is not None])
        par = measure_parallax(tracks, reference, cfg.parallax)
        if par.depth_seen:
            par_code = None
        elif par.planar:
            par_code = ReasonCode.PLANAR_MOTION
        else:
            par_code = ReasonCode.MOTION_INSUFFICIENT
        checks.append(CheckResult("parallax", par.score, par_code is None, par_code, par.to_dict()))
        checks.append(self._passive(clip, tracked, meshes))
        checks += self._pad_model(clip, tracked, meshes, checks[-1])
        best = self._best_frame(clip, tracked, meshes, frontal)
        given: FloatArray | None = None
        if with_best_frame is not None and best is not None:
            given = with_best_frame(best)
        samples = identity.result()
        if given is not None and best is not None:
            samples.append((best, given))
        elif middle:  # the caller had no embedding by this engine's model: embed it here
            samples += self._embed_keyframes(clip, track, middle)
        checks.insert(continuity_at, self._continuity(track, self._identity(samples)))
        del samples, given  # embeddings: never kept
        if challenge is not None:
            followed, action_checks = follow_actions(measures, challenge, cfg.actions)
            done = sum(c.done for c in action_checks)
            checks.append(
                CheckResult(
                    "challenge",
                    done / len(action_checks),
                    followed,
                    None if followed else ReasonCode.CHALLENGE_NOT_FOLLOWED,
                    {"actions": [c.to_dict() for c in action_checks]},
                )
            )
        face_fraction = len(tracked) / len(clip.frames)
        reasons: list[ReasonCode] = []
        if face_fraction < cfg.min_face_fraction:
            reasons.append(ReasonCode.FACE_NOT_FOUND)
        reasons += [c.code for c in checks if c.code is not None]
        live = not reasons
        if live:
            reasons.append(ReasonCode.LIVENESS_PASSED)
        score = min(c.score for c in checks)
        if not live:
            score = min(score, 0.49)
        return LivenessResult(
            live=live,
            score=float(score),
            reasons=tuple(dict.fromkeys(reasons)),
            checks=tuple(checks),
            best_frame=best,
            frames=len(clip.frames),
            duration_s=clip.duration,
            fps=clip.fps,
            face_frames=len(tracked),
            analysis_ms=(self._timer() - started) * 1000.0,
        )

    def _best_frame(
        self,
        clip: Clip,
        tracked: list[int],
        meshes: list[FaceMesh | None],
        off_frontal: npt.NDArray[np.float64],
    ) -> int | None:
        """Sharp and frontal: Laplacian variance of the face patch, down-weighted by pose."""
        best, best_value = None, -1.0
        for k, (i, mesh) in enumerate(zip(tracked, meshes, strict=True)):
            if mesh is None or off_frontal[k] > 12.0:
                continue
            x0, y0 = np.floor(mesh.xy.min(axis=0)).astype(int)
            x1, y1 = np.ceil(mesh.xy.max(axis=0)).astype(int)
            h, w = clip.frames[i].shape[:2]
            patch = clip.frames[i][max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
            if patch.size == 0:
                continue
            grey = cv2.cvtColor(np.ascontiguousarray(patch), cv2.COLOR_RGB2GRAY)
            sharp = float(cv2.Laplacian(grey, cv2.CV_64F).var())
            value = sharp * math.exp(-off_frontal[k] / 10.0)
            if value > best_value:
                best, best_value = i, value
        return best if best is not None else (tracked[0] if tracked else None)
