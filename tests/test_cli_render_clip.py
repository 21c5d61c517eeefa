"""`faceproof render-clip`: a rendered head performing a challenge, for the curl walk-through.
The clip it writes must pass the liveness check of the very challenge it was made for."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from faceproof.cli.main import main
from faceproof.liveness import LivenessEngine
from faceproof.liveness.challenge import ChallengeIssuer
from faceproof.liveness.clip import load_clip

KEY = bytes(range(32))


def _answer(actions: list[str]) -> dict[str, object]:
    """A challenge answer as the service gives it, for fixed actions (2 s windows)."""
    return {
        "challenge": "v1.x.y",
        "actions": [
            {"action": a, "start_s": 0.6 + 2 * i, "end_s": 2.6 + 2 * i}
            for i, a in enumerate(actions)
        ],
        "record_seconds": 0.6 + 2 * len(actions) + 0.4,
    }


def test_the_rendered_clip_passes_the_challenge_it_was_made_for(
    tmp_path: Path, liveness_engine: LivenessEngine
) -> None:
    issuer = ChallengeIssuer(KEY, rng=random.Random(22))
    challenge, spec = issuer.issue("ses_walkthrough", n_actions=2)
    assert set(challenge.actions) <= {"turn_left", "turn_right"}  # the seed's first draw
    answer = {  # as POST .../challenge answers it (api/service.py)
        "challenge": spec,
        "actions": [
            {"action": a, "start_s": s, "end_s": e}
            for a, (s, e) in zip(challenge.actions, challenge.windows, strict=True)
        ],
        "record_seconds": round(challenge.windows[-1][1] + 0.4, 2),
    }
    (tmp_path / "challenge.json").write_text(json.dumps(answer))
    out = tmp_path / "clip.mp4"
    assert main(["render-clip", str(tmp_path / "challenge.json"), "--out", str(out)]) == 0
    assert out.read_bytes()[4:8] == b"ftyp"
    result = liveness_engine.analyze(load_clip(out), challenge=challenge)
    assert result.live, result.reasons


def test_unknown_actions_and_bad_input_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every challenge action renders (tests/test_liveness_actions.py checks blink and mouth).
    path = tmp_path / "challenge.json"
    path.write_text(json.dumps(_answer(["turn_left", "wink", "blink"])))
    assert main(["render-clip", str(path), "--out", str(tmp_path / "c.mp4")]) == 2
    assert "wink" in capsys.readouterr().err
    assert not (tmp_path / "c.mp4").exists()
    path.write_text("{not json")
    assert main(["render-clip", str(path), "--out", str(tmp_path / "c.mp4")]) == 2
    assert not (tmp_path / "c.mp4").exists()
