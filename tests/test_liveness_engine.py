"""The liveness engine end to end on clips generated in memory from the example portrait.

Every generated attack type must fail and generated 3D head turns must pass; bad inputs give
their reason codes. Real clips from ../shared/data/pad/live_video are only reported (skipped
when absent), never asserted: see benchmarks/liveness_bench.py.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faceproof.comparison import FaceComparer
from faceproof.errors import FaceError
from faceproof.faces.types import FaceDetection, FloatArray
from faceproof.liveness import Clip, LivenessEngine, LivenessResult, load_clip
from faceproof.liveness.challenge import Challenge, ChallengeIssuer
from faceproof.liveness.landmarks import (
    FaceMeshLandmarker,
    Roi,
    eye_aspect_ratio,
    head_pose,
    mouth_openness,
)
from faceproof.liveness.synthetic import (
    ATTACK_KINDS,
    SceneKit,
    attack_clip,
    bona_fide_clip,
    challenge_motion,
    replay_clip,
)
from faceproof.models.registry import get_spec, resolve_model_file
from faceproof.parallel import Helpers
from faceproof.reasons import ReasonCode
from faceproof.verification import frame_image

REJECTS_FOR_ATTACKS = {ReasonCode.PLANAR_MOTION, ReasonCode.MOTION_INSUFFICIENT}


@pytest.fixture(scope="module")
def landmarker() -> FaceMeshLandmarker:
    return FaceMeshLandmarker()


@pytest.fixture(scope="module")
def kit(landmarker: FaceMeshLandmarker) -> SceneKit:
    return SceneKit.build(landmarker)


@pytest.fixture(scope="module")
def engine(landmarker: FaceMeshLandmarker) -> LivenessEngine:
    return LivenessEngine(landmarker=landmarker)


@pytest.fixture(scope="module")
def turns(kit: SceneKit) -> Clip:
    return bona_fide_clip(kit, "turns", seed=11)


# --- the face mesh ------------------------------------------------------------------------------


def test_face_mesh_model_is_pinned_and_plausible(kit: SceneKit) -> None:
    spec = get_spec("mediapipe-face-landmark")
    assert resolve_model_file(spec).name == "face_landmark.tflite"  # SHA-256 checked
    mesh = kit.mesh
    # Nose tip in front of (smaller z than) the cheeks; eyes above the mouth; 468 points.
    assert mesh.shape == (468, 3)
    assert mesh[1, 2] < mesh[234, 2]
    assert mesh[1, 2] < mesh[454, 2]
    assert mesh[33, 1] < mesh[13, 1]
    assert mesh[33, 0] < mesh[263, 0]


def test_mesh_follows_head_turns_with_the_documented_signs(
    kit: SceneKit, landmarker: FaceMeshLandmarker, engine: LivenessEngine
) -> None:
    def measure(yaw: float, pitch: float) -> tuple[float, float, float]:
        frame = kit.head_frame(yaw, pitch)
        det = engine._detect(frame)[0]
        mesh = landmarker.landmarks(frame, Roi.from_detection(det))
        mesh = landmarker.landmarks(frame, mesh.next_roi())
        return head_pose(mesh)

    neutral = measure(0, 0)
    left = measure(-25, 0)  # renderer yaw < 0: nose to image right (subject's left)
    up = measure(0, -20)
    assert left[0] - neutral[0] > 12
    assert up[1] - neutral[1] > 10
    assert abs(up[0] - neutral[0]) < 6


def test_eye_and_mouth_ratios_are_in_range(kit: SceneKit, landmarker: FaceMeshLandmarker) -> None:
    frame = kit.portrait
    from faceproof.faces.detector import YuNetDetector

    det = YuNetDetector().detect(frame)[0]
    mesh = landmarker.landmarks(frame, Roi.from_detection(det))
    assert 0.12 < eye_aspect_ratio(mesh) < 0.45
    assert 0.0 <= mouth_openness(mesh) < 0.3
    assert mesh.presence > 0.9


# --- attacks fail, 3D heads pass ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ATTACK_KINDS)
def test_every_generated_attack_fails(kind: str, kit: SceneKit, engine: LivenessEngine) -> None:
    result = engine.analyze(attack_clip(kit, kind, seed=5))
    assert not result.live, result.to_dict()
    assert result.score < 0.5
    assert set(result.reasons) & REJECTS_FOR_ATTACKS
    assert ReasonCode.LIVENESS_PASSED not in result.reasons


@pytest.mark.parametrize("kind", ["turns", "nod_and_turn"])
def test_generated_3d_head_turns_pass(kind: str, kit: SceneKit, engine: LivenessEngine) -> None:
    result = engine.analyze(bona_fide_clip(kit, kind, seed=7))
    assert result.live, result.to_dict()
    assert result.reasons == (ReasonCode.LIVENESS_PASSED,)
    assert result.score > 0.5
    parallax = result.check("parallax")
    assert parallax.details["depth_seen"] is True
    passive = result.check("passive")
    assert passive.passed, passive.to_dict()
    assert passive.score >= 0.5
    assert len(passive.details["frames"]) == 3
    assert result.best_frame is not None
    assert result.face_frames == result.frames


def test_result_is_serialisable_and_holds_no_pixels(turns: Clip, engine: LivenessEngine) -> None:
    doc = engine.analyze(turns).to_dict()
    text = json.dumps(doc)
    assert {"live", "score", "reasons", "checks", "best_frame"} <= set(doc)
    assert set(doc["checks"]) == {"timing", "light", "continuity", "parallax", "passive"}
    assert len(text) < 4000


def test_a_still_live_looking_head_is_not_live(kit: SceneKit, engine: LivenessEngine) -> None:
    still = bona_fide_clip(kit, motion=lambda t: (0.0, 0.0, 0.0), kind="challenge", seed=2)
    result = engine.analyze(still)
    assert not result.live
    assert ReasonCode.MOTION_INSUFFICIENT in result.reasons


# --- challenges end to end ---------------------------------------------------------------------


def test_challenge_followed_passes_and_wrong_order_fails(
    kit: SceneKit, engine: LivenessEngine
) -> None:
    windows = ((0.6, 2.1), (2.1, 3.6), (3.6, 5.1))
    asked = Challenge("n", "s", ("turn_left", "look_up", "turn_right"), windows, 0.0, 1e12)
    clip = bona_fide_clip(
        kit, "challenge", seconds=5.4, motion=challenge_motion(asked.actions, asked.windows)
    )
    ok = engine.analyze(clip, asked)
    assert ok.live, ok.to_dict()
    assert ok.check("challenge").passed
    other = Challenge("n", "s", ("turn_right", "look_up", "turn_left"), windows, 0.0, 1e12)
    bad = engine.analyze(clip, other)
    assert not bad.live
    assert ReasonCode.CHALLENGE_NOT_FOLLOWED in bad.reasons


def test_attack_with_a_challenge_still_fails(kit: SceneKit, engine: LivenessEngine) -> None:
    challenge, _ = ChallengeIssuer(b"k" * 32, rng=random.Random(4)).issue("s", 2)
    result = engine.analyze(attack_clip(kit, "print_tilt", seed=9, seconds=5.0), challenge)
    assert not result.live
    assert ReasonCode.CHALLENGE_NOT_FOLLOWED in result.reasons


# --- bad inputs ------------------------------------------------------------------------------


def test_no_face_raises_face_not_found(engine: LivenessEngine) -> None:
    rng = np.random.default_rng(0)
    frames = [
        np.full((480, 640, 3), 120, np.uint8) + rng.integers(0, 5, (480, 640, 3), np.uint8)
        for _ in range(20)
    ]
    with pytest.raises(FaceError) as info:
        engine.analyze(Clip.from_arrays(frames, [i / 15 for i in range(20)]))
    assert info.value.code is ReasonCode.FACE_NOT_FOUND


def test_two_faces_raise_face_multiple(turns: Clip, engine: LivenessEngine) -> None:
    import cv2

    frames = []
    for f in turns.frames[:20]:
        half = cv2.resize(np.asarray(f), (320, 240))
        canvas = np.full((480, 640, 3), 90, np.uint8)
        canvas[120:360, :320] = half
        canvas[120:360, 320:] = half[:, ::-1]
        frames.append(canvas)
    with pytest.raises(FaceError) as info:
        engine.analyze(Clip.from_arrays(frames, [i / 15 for i in range(20)]))
    assert info.value.code is ReasonCode.FACE_MULTIPLE


def test_duplicated_or_reordered_timestamps_are_frame_timing(
    turns: Clip, engine: LivenessEngine
) -> None:
    times = list(turns.timestamps)
    times[10] = times[9]  # a duplicated timestamp
    result = engine.analyze(Clip(turns.frames, tuple(times)))
    assert ReasonCode.FRAME_TIMING in result.reasons
    assert not result.live
    times = list(turns.timestamps)
    times[5], times[6] = times[6], times[5]
    assert ReasonCode.FRAME_TIMING in engine.analyze(Clip(turns.frames, tuple(times))).reasons
    # A still picture repeated (a slideshow) is also implausible timing.
    frames = (turns.frames[0],) * 10 + turns.frames[10:]
    assert ReasonCode.FRAME_TIMING in engine.analyze(Clip(frames, turns.timestamps)).reasons


def test_spliced_clip_is_face_changed(turns: Clip, engine: LivenessEngine) -> None:
    moved = [np.roll(np.asarray(f), 200, axis=1) for f in turns.frames[22:]]
    clip = Clip.from_arrays(list(turns.frames[:22]) + moved, turns.timestamps)
    result = engine.analyze(clip)
    assert ReasonCode.FACE_CHANGED in result.reasons
    assert not result.live


def test_a_splice_where_the_tracking_parts_meet_is_face_changed(
    turns: Clip, engine: LivenessEngine
) -> None:
    """The clip is tracked in parts, each from a detection: the joint is checked as a keyframe
    inside one part is."""
    (_, joint), *_ = [(a, b) for a, b in engine._segments(len(turns.frames)) if a == 0]
    assert 0 < joint < len(turns.frames)
    moved = [np.roll(np.asarray(f), 200, axis=1) for f in turns.frames[joint:]]
    clip = Clip.from_arrays(list(turns.frames[:joint]) + moved, turns.timestamps)
    result = engine.analyze(clip)
    assert ReasonCode.FACE_CHANGED in result.reasons
    assert result.check("continuity").details["cut_at_frame"] == joint


def test_the_result_does_not_depend_on_helper_threads(
    kit: SceneKit, landmarker: FaceMeshLandmarker
) -> None:
    """One thread or two: the same checks, scores, frames and reasons, with a blink asked
    (its eyelid refinement is split between the threads too)."""
    windows = ((0.6, 1.8), (1.8, 3.0))
    asked = Challenge("n", "s", ("turn_left", "blink"), windows, 0.0, 1e12)
    clip = bona_fide_clip(
        kit, "challenge", seconds=3.0, motion=challenge_motion(asked.actions, asked.windows)
    )
    results = []
    for helpers in (Helpers(0), Helpers(1)):
        try:
            one = LivenessEngine(landmarker=landmarker, helpers=helpers).analyze(clip, asked)
        finally:
            helpers.close()
        doc = one.to_dict()
        doc.pop("analysis_ms")
        results.append(doc)
    assert results[0] == results[1]
    blink = results[0]["checks"]["challenge"]["details"]["actions"][1]
    assert blink["action"] == "blink"
    assert blink["done"], results[0]


class SwappingEmbedder:
    """A fake recogniser: the face 'changes identity' halfway through the clip."""

    model_id = "fake"

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, rgb: np.ndarray, face: FaceDetection) -> FloatArray:
        self.calls += 1
        v = np.zeros(8, np.float32)
        v[0 if self.calls == 1 else 1] = 1.0
        return v


class CountingEmbedder:
    """The real recogniser, counting its runs."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.calls = 0

    def embed(self, rgb: np.ndarray, face: FaceDetection) -> FloatArray:
        self.calls += 1
        embedding: FloatArray = self.inner.embed(rgb, face)
        return embedding


def test_the_callers_best_frame_embedding_stands_in_for_the_middle_keyframe(
    turns: Clip, landmarker: FaceMeshLandmarker, engine: LivenessEngine, comparer: FaceComparer
) -> None:
    counting = CountingEmbedder(engine.embedder)
    counted = LivenessEngine(landmarker=landmarker, detector=engine.detector, embedder=counting)
    alone = counted.analyze(turns)
    assert counting.calls == 3  # three keyframes
    counting.calls = 0
    given: list[int] = []

    def best_template(i: int) -> FloatArray | None:
        given.append(i)
        template = comparer.template(frame_image(turns.frames[i]))
        return template.embeddings.get(counting.model_id)

    shared = counted.analyze(turns, with_best_frame=best_template)
    assert counting.calls == 2  # the first and last keyframes; the best frame came embedded
    assert given == [shared.best_frame]
    identity = shared.check("continuity").details
    assert shared.best_frame in identity["identity_frames"]
    assert len(identity["identity_frames"]) == 3
    assert shared.live == alone.live
    assert identity["min_identity_cosine"] > 0.5  # one face throughout
    counting.calls = 0
    none = counted.analyze(turns, with_best_frame=lambda i: None)  # another model's caller
    assert counting.calls == 3
    assert none.check("continuity").details == alone.check("continuity").details


def test_identity_change_is_face_changed(turns: Clip, landmarker: FaceMeshLandmarker) -> None:
    fake = SwappingEmbedder()
    engine = LivenessEngine(landmarker=landmarker, embedder=fake)
    result = engine.analyze(turns)
    assert fake.calls == 3
    assert ReasonCode.FACE_CHANGED in result.reasons
    assert not result.live


def test_dark_clip_is_too_dark(turns: Clip, engine: LivenessEngine) -> None:
    dark = [(np.asarray(f, dtype=np.float32) * 0.22).astype(np.uint8) for f in turns.frames]
    result: LivenessResult = engine.analyze(Clip.from_arrays(dark, turns.timestamps))
    assert ReasonCode.TOO_DARK in result.reasons
    assert not result.live


# --- CLI on a generated clip (load_clip is replaced: no face video is written to disk) --------


def test_cli_json_on_generated_clips(
    turns: Clip,
    kit: SceneKit,
    engine: LivenessEngine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import faceproof.liveness.clip as clip_module
    import faceproof.liveness.engine as engine_module
    from faceproof.cli.liveness import add_parsers

    attack = attack_clip(kit, "screen_sway", seed=1)
    clips = {"live.webm": turns, "attack.webm": attack}
    monkeypatch.setattr(clip_module, "load_clip", lambda path: clips[str(path)])
    monkeypatch.setattr(engine_module, "LivenessEngine", lambda **_: engine)
    parser = argparse.ArgumentParser(prog="faceproof")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    for name, want_live, want_code in (("live.webm", True, 0), ("attack.webm", False, 1)):
        args = parser.parse_args(["liveness", name, "--json"])
        assert args.handler(args) == want_code
        doc = json.loads(capsys.readouterr().out)
        assert doc["live"] is want_live
        assert isinstance(doc["score"], float)
        assert isinstance(doc["reasons"], list)


# --- real clips: reported, not asserted (../shared/data; skipped when absent) ----------------

LIVE_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "pad" / "live_video"


@pytest.mark.shared_data
def test_real_live_clips_decode_and_are_judged(
    engine: LivenessEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every real clip decodes and gets a verdict; how many pass is printed, not asserted
    (they are talking heads, not liveness sessions: see benchmarks/liveness_bench.py)."""
    if not LIVE_VIDEO.is_dir():
        pytest.skip(f"{LIVE_VIDEO} is absent (shared evaluation data not installed)")
    lines, passed = [], 0
    clips = sorted(LIVE_VIDEO.glob("*.mp4"))
    assert clips
    for path in clips:
        result = engine.analyze(load_clip(path))
        assert result.frames >= 2
        passed += result.live
        cues = result.check("passive").details
        lines.append(
            f"{path.name}: live={result.live} {[c.value for c in result.reasons]} "
            f"moire={cues['moire']} halftone={cues['halftone']} sides={cues['frame_sides']}"
        )
    with capsys.disabled():
        print(f"\nreal live clips: {passed}/{len(clips)} pass\n" + "\n".join(lines))


def test_model_conversion_leaves_nothing_on_disk() -> None:
    import tempfile

    def leftovers() -> set[str]:
        return {p.name for p in Path(tempfile.gettempdir()).glob("faceproof-model-*")}

    before = leftovers()
    FaceMeshLandmarker()
    assert leftovers() == before


def test_replayed_video_without_a_challenge_is_a_screen(
    kit: SceneKit, engine: LivenessEngine
) -> None:
    """A replay of a recorded head turn on a phone screen: parallax cannot reject it (the
    recording's own depth is replayed), the passive screen cues do, with no challenge."""
    recording = bona_fide_clip(kit, "turns", seed=3, seconds=4.0)
    replay = replay_clip(kit, recording, seed=3)
    result = engine.analyze(replay)
    assert not result.live, result.to_dict()
    assert ReasonCode.SCREEN_DETECTED in result.reasons
    assert result.check("parallax").passed  # the gap the passive cues close
    passive = result.check("passive")
    assert not passive.passed
    assert passive.details["screen"] is True
    assert result.score < 0.5


def test_replayed_nod_is_a_screen_too(kit: SceneKit, engine: LivenessEngine) -> None:
    recording = bona_fide_clip(kit, "nod_and_turn", seed=8)
    result = engine.analyze(replay_clip(kit, recording, seed=8))
    assert not result.live, result.to_dict()
    assert ReasonCode.SCREEN_DETECTED in result.reasons


def test_replayed_video_fails_the_challenge(kit: SceneKit, engine: LivenessEngine) -> None:
    """With a challenge whose actions the recording does not contain, a replay fails that too."""
    recording = bona_fide_clip(kit, "turns", seed=3, seconds=4.0)
    replay = replay_clip(kit, recording, seed=3)
    windows = ((0.6, 1.9), (1.9, 3.2))
    challenge = Challenge("n", "s", ("look_up", "turn_right"), windows, 0.0, 1e12)
    result = engine.analyze(replay, challenge)
    assert not result.live
    assert ReasonCode.CHALLENGE_NOT_FOLLOWED in result.reasons
    assert ReasonCode.SCREEN_DETECTED in result.reasons


@pytest.mark.parametrize(
    ("kind", "code"),
    [("screen_still", ReasonCode.SCREEN_DETECTED), ("print_still", ReasonCode.PRINT_DETECTED)],
)
def test_passive_cues_name_the_medium_of_still_attacks(
    kind: str, code: ReasonCode, kit: SceneKit, engine: LivenessEngine
) -> None:
    result = engine.analyze(attack_clip(kit, kind, seed=6))
    assert not result.live
    assert code in result.reasons, result.check("passive").to_dict()
