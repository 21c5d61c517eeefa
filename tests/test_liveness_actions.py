"""Blink and open mouth, rendered and detected (issue 3).

The rendered head closes its eyelids (a 0.28 s blink) and drops its jaw; the real MediaPipe
models must read that, and `LivenessEngine.analyze` must accept the clip for a challenge that
asks for it and reject it when the action is missing or out of order. Blinks need the refined
eyelids (`FaceMeshLandmarker.refine_eyes`, which the engine runs on the neutral start and the
blink windows of a challenge that asks for a blink): the plain face mesh keeps its eyes open.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from faceproof.cli.main import main
from faceproof.liveness import LivenessEngine
from faceproof.liveness.challenge import ActionThresholds, Challenge
from faceproof.liveness.clip import Clip, load_clip
from faceproof.liveness.landmarks import (
    FaceMeshLandmarker,
    Roi,
    eye_aspect_ratio,
    mouth_openness,
)
from faceproof.liveness.synthetic import (
    SceneKit,
    attack_clip,
    bona_fide_clip,
    challenge_motion,
    replay_clip,
)
from faceproof.reasons import ReasonCode

WINDOWS = ((0.6, 2.6), (2.6, 4.6))
SECONDS = 5.0


def challenge(*actions: str) -> Challenge:
    return Challenge("n", "s", actions, WINDOWS, 0.0, 1e12)


@pytest.fixture(scope="module")
def refined_engine(liveness_engine: LivenessEngine) -> LivenessEngine:
    """The product's engine (`LivenessEngine()`): eyelids refined where a blink is judged."""
    return liveness_engine


class _MeshOnly:
    """A face mesh without the eye-contour model (`refine_eyes` absent)."""

    def __init__(self, inner: FaceMeshLandmarker) -> None:
        self._inner = inner
        self.model_id = inner.model_id

    def landmarks(self, rgb: np.ndarray[Any, Any], roi: Roi) -> Any:
        return self._inner.landmarks(rgb, roi)


@pytest.fixture(scope="module")
def plain_engine(liveness_engine: LivenessEngine) -> LivenessEngine:
    """The same with the face mesh alone (what LivenessEngine() did before eyelids)."""
    assert isinstance(liveness_engine.landmarker, FaceMeshLandmarker)
    return LivenessEngine(
        detector=liveness_engine.detector,
        embedder=liveness_engine.embedder,
        landmarker=_MeshOnly(liveness_engine.landmarker),
    )


def rendered(kit: SceneKit, *actions: str, seed: int = 0) -> Clip:
    motion = challenge_motion(actions, WINDOWS)
    return bona_fide_clip(kit, "challenge", seconds=SECONDS, motion=motion, seed=seed)


@pytest.fixture(scope="module")
def blink_then_mouth(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """`faceproof render-clip` for (blink, open_mouth), read back from its MP4."""
    folder = tmp_path_factory.mktemp("render")
    answer = {
        "challenge": "v1.x.y",
        "actions": [
            {"action": a, "start_s": s, "end_s": e}
            for a, (s, e) in zip(("blink", "open_mouth"), WINDOWS, strict=True)
        ],
        "record_seconds": WINDOWS[-1][1],
    }
    (folder / "challenge.json").write_text(json.dumps(answer))
    out = folder / "clip.mp4"
    assert main(["render-clip", str(folder / "challenge.json"), "--out", str(out)]) == 0
    return load_clip(out)


@pytest.fixture(scope="module")
def turn_then_mouth(scene_kit: SceneKit) -> Clip:
    return rendered(scene_kit, "turn_left", "open_mouth", seed=1)


@pytest.fixture(scope="module")
def blink_then_turn(scene_kit: SceneKit) -> Clip:
    return rendered(scene_kit, "blink", "turn_right", seed=2)


def actions_done(result: Any) -> dict[str, bool]:
    return {a["action"]: a["done"] for a in result.check("challenge").details["actions"]}


# --- the renders, as the models read single frames ----------------------------------------------


def _mesh(landmarker: FaceMeshLandmarker, engine: LivenessEngine, frame: np.ndarray) -> Any:
    mesh = landmarker.landmarks(frame, Roi.from_detection(engine._detect(frame)[0]))
    for _ in range(2):
        mesh = landmarker.landmarks(frame, mesh.next_roi())
    return mesh


def test_closed_eyelids_read_as_closed_only_with_refined_eyelids(
    scene_kit: SceneKit, liveness_engine: LivenessEngine
) -> None:
    refined = FaceMeshLandmarker(refine_eyes=True)  # every mesh with its eyelids
    plain = liveness_engine.landmarker  # LivenessEngine()'s: eyelids only on demand
    assert isinstance(plain, FaceMeshLandmarker)
    assert not plain.refines_eyes
    for yaw in (0.0, 20.0):
        open_eyes = scene_kit.head_frame(yaw, 0.0)
        closed_eyes = scene_kit.head_frame(yaw, 0.0, eyes_closed=1.0)
        ratio = eye_aspect_ratio(_mesh(refined, liveness_engine, closed_eyes)) / eye_aspect_ratio(
            _mesh(refined, liveness_engine, open_eyes)
        )
        assert ratio < ActionThresholds().blink_ratio * 0.75, (yaw, ratio)
        # The plain face mesh hardly moves its eyelids: why blinks need the refinement.
        plain_ratio = eye_aspect_ratio(_mesh(plain, liveness_engine, closed_eyes)) / (
            eye_aspect_ratio(_mesh(plain, liveness_engine, open_eyes))
        )
        assert plain_ratio > ActionThresholds().blink_ratio, (yaw, plain_ratio)


def test_dropped_jaw_reads_as_an_open_mouth(
    scene_kit: SceneKit, liveness_engine: LivenessEngine
) -> None:
    plain = liveness_engine.landmarker
    assert isinstance(plain, FaceMeshLandmarker)
    shut = mouth_openness(_mesh(plain, liveness_engine, scene_kit.head_frame(0, 0, mouth_open=-1)))
    wide = mouth_openness(_mesh(plain, liveness_engine, scene_kit.head_frame(0, 0, mouth_open=1)))
    assert shut < 0.1
    assert wide - shut > ActionThresholds().mouth_open


def test_a_blink_is_quick_and_caught_by_a_15_fps_camera() -> None:
    track = challenge_motion(("blink", "turn_left"), WINDOWS)
    times = np.arange(0, SECONDS, 0.005)
    eyes = np.array([track(float(t))[2] for t in times])
    closing = times[eyes > 0.01]
    assert 0.15 <= closing.max() - closing.min() <= 0.3  # closes and reopens in 150-300 ms
    assert WINDOWS[0][0] < closing.min()
    assert closing.max() < WINDOWS[0][1]
    frames = np.array([track(i / 15)[2] for i in range(round(15 * SECONDS))])
    assert (frames > 0.99).sum() >= 1  # at least one fully closed frame at 15 fps
    # Without an open_mouth action the mouth stays the portrait's own; with one it rests shut.
    assert all(track(float(t))[3] == 0.0 for t in times[::50])
    mouth_track = challenge_motion(("open_mouth", "blink"), WINDOWS)
    assert mouth_track(0.2)[3] == -1.0
    assert mouth_track(1.6)[3] == 1.0


# --- the engine: a rendered action passes, a missing or misplaced one fails ----------------------


def test_rendered_blink_and_open_mouth_pass_their_challenge(
    refined_engine: LivenessEngine, blink_then_mouth: Clip
) -> None:
    result = refined_engine.analyze(blink_then_mouth, challenge("blink", "open_mouth"))
    assert result.live, result.to_dict()
    assert actions_done(result) == {"blink": True, "open_mouth": True}
    # Out of order: the mouth opens in the blink's window and the blink comes too late.
    swapped = refined_engine.analyze(blink_then_mouth, challenge("open_mouth", "blink"))
    assert not swapped.live
    assert ReasonCode.CHALLENGE_NOT_FOLLOWED in swapped.reasons
    assert actions_done(swapped) == {"open_mouth": False, "blink": False}


@pytest.mark.parametrize(
    ("missing_from", "done", "performed_in", "asked"),
    [
        (
            "turn_then_mouth",
            {"blink": False, "open_mouth": True},
            "blink_then_turn",
            ("blink", "turn_right"),
        ),
        (
            "blink_then_turn",
            {"blink": True, "open_mouth": False},
            "turn_then_mouth",
            ("turn_left", "open_mouth"),
        ),
    ],
    ids=["blink", "open_mouth"],
)
def test_a_missing_action_fails_and_a_rendered_one_passes(
    request: pytest.FixtureRequest,
    refined_engine: LivenessEngine,
    missing_from: str,
    done: dict[str, bool],
    performed_in: str,
    asked: tuple[str, str],
) -> None:
    """(blink, open_mouth) asked of a clip that lacks one of them fails on that one; a clip
    that renders it passes a challenge with it."""
    missing = refined_engine.analyze(
        request.getfixturevalue(missing_from), challenge("blink", "open_mouth")
    )
    assert not missing.live
    assert ReasonCode.CHALLENGE_NOT_FOLLOWED in missing.reasons
    assert actions_done(missing) == done
    passed = refined_engine.analyze(request.getfixturevalue(performed_in), challenge(*asked))
    assert passed.live, passed.to_dict()


class _CountingRefiner(_MeshOnly):
    """The face mesh with its eye-contour model, counting the frames refined."""

    def __init__(self, inner: FaceMeshLandmarker) -> None:
        super().__init__(inner)
        self.refined = 0

    def refine_eyes(self, rgb: np.ndarray[Any, Any], mesh: Any) -> Any:
        self.refined += 1
        return self._inner.refine_eyes(rgb, mesh)


def test_eyelids_are_refined_in_two_passes(
    liveness_engine: LivenessEngine, blink_then_turn: Clip, turn_then_mouth: Clip
) -> None:
    """Every other frame of the neutral start and the blink's window, then only the skipped
    neighbours of frames whose eyes were closing: about half the model runs, same verdict."""
    assert isinstance(liveness_engine.landmarker, FaceMeshLandmarker)
    counting = _CountingRefiner(liveness_engine.landmarker)
    engine = LivenessEngine(
        detector=liveness_engine.detector, embedder=liveness_engine.embedder, landmarker=counting
    )
    asked = challenge("blink", "turn_right")
    t0 = blink_then_turn.timestamps[0]
    neutral_s = engine.config.actions.neutral_s
    judged = sum(
        1
        for t in blink_then_turn.timestamps
        if t - t0 <= neutral_s or WINDOWS[0][0] <= t - t0 <= WINDOWS[0][1]
    )
    done = engine.analyze(blink_then_turn, asked)
    assert done.live, done.to_dict()
    first_pass = (judged + 1) // 2
    assert first_pass <= counting.refined <= first_pass + 6  # a blink adds its neighbours
    counting.refined = 0
    missing = engine.analyze(turn_then_mouth, challenge("blink", "open_mouth"))
    assert actions_done(missing)["blink"] is False
    assert counting.refined <= first_pass + 1  # open eyes: the first pass only


def test_the_plain_mesh_engine_does_not_see_the_blink(
    plain_engine: LivenessEngine, blink_then_turn: Clip
) -> None:
    """Why the eyelids are refined: with the face mesh alone a blink is not detected."""
    result = plain_engine.analyze(blink_then_turn, challenge("blink", "turn_right"))
    assert actions_done(result) == {"blink": False, "turn_right": True}


# --- attacks stay attacks ------------------------------------------------------------------------


def test_attacks_still_fail_a_blink_and_mouth_challenge(
    scene_kit: SceneKit, refined_engine: LivenessEngine, blink_then_mouth: Clip
) -> None:
    asked = challenge("blink", "open_mouth")
    printed = refined_engine.analyze(attack_clip(scene_kit, "print_tilt", seed=3, seconds=5), asked)
    assert not printed.live
    assert ReasonCode.CHALLENGE_NOT_FOLLOWED in printed.reasons
    # A replay of a head that did blink and open its mouth follows the challenge: the screen
    # cues are what reject it.
    replayed = refined_engine.analyze(replay_clip(scene_kit, blink_then_mouth, seed=4), asked)
    assert not replayed.live
    assert ReasonCode.SCREEN_DETECTED in replayed.reasons
