"""The liveness path of the HTTP service: signed challenge, clip upload, the shared decision.

Clips are generated from the public-domain example portrait (`faceproof.liveness.synthetic`) and
encoded to MP4 in memory (conftest): a bona fide-like head performing the issued challenge, and
a tilted print. The challenge issuer draws from a seeded RNG so that it asks for the actions the
generated head performs (conftest CHALLENGE_SEED); its clock is the app's injected clock. The
card is a photographed specimen with the same portrait (conftest `card`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conftest import CHALLENGE_ACTIONS, CHALLENGE_SEED, CHALLENGE_WINDOWS, Card
from faceproof.comparison import FaceComparer
from faceproof.liveness import LivenessEngine
from faceproof.privacy.receipts import verify_receipt
from faceproof.storage.models import Attempt, Decision
from test_api import Env, _consent, _make_env, assert_problem
from test_storage import database_url


def _env(
    tmp_path: Path, kind: str, comparer: FaceComparer, engine: LivenessEngine
) -> Iterator[Env]:
    for env in _make_env(
        tmp_path,
        database_url(kind, tmp_path),
        comparer,
        liveness=engine,
        max_clip_bytes=400 * 1024,
    ):
        env.client.app.state.service.challenges.rng = random.Random(CHALLENGE_SEED)  # type: ignore[attr-defined]
        yield env


@pytest.fixture(params=["sqlite", "postgresql"])
def lenv(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    comparer: FaceComparer,
    liveness_engine: LivenessEngine,
) -> Iterator[Env]:
    yield from _env(tmp_path, request.param, comparer, liveness_engine)


@pytest.fixture
def sqlite_lenv(
    tmp_path: Path, comparer: FaceComparer, liveness_engine: LivenessEngine
) -> Iterator[Env]:
    yield from _env(tmp_path, "sqlite", comparer, liveness_engine)


def _ready(env: Env, card: Card) -> tuple[dict[str, Any], str]:
    """A session with consent given and the card uploaded: ready for a challenge."""
    session = env.new_session()
    path = env.capture_path(session)
    assert _consent(env, path).status_code == 200
    assert env.upload(f"{path}/document", card.jpeg).status_code == 200
    return session, path


def _challenge(env: Env, path: str) -> dict[str, Any]:
    r = env.client.post(f"{path}/challenge")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _clip(env: Env, path: str, spec: str, data: bytes, content_type: str = "video/mp4") -> Any:
    return env.client.post(
        f"{path}/clip",
        files={"clip": ("clip.mp4", data, content_type)},
        data={"challenge": spec},
    )


def test_live_head_turn_and_a_verified_card_give_pass(
    lenv: Env, card: Card, head_turn_mp4: bytes
) -> None:
    session, path = _ready(lenv, card)
    ch = _challenge(lenv, path)
    assert [a["action"] for a in ch["actions"]] == list(CHALLENGE_ACTIONS)
    assert [(a["start_s"], a["end_s"]) for a in ch["actions"]] == list(CHALLENGE_WINDOWS)
    assert ch["record_seconds"] >= CHALLENGE_WINDOWS[-1][1]
    assert ch["challenge"].startswith("v1.")
    assert ch["expires_at"] > ch["issued_at"]

    r = _clip(lenv, path, ch["challenge"], head_turn_mp4)
    assert r.status_code == 200, r.text
    step = r.json()
    assert step["state"] == "completed"
    assert step["outcome"] == "pass"  # live, matched, the card verified (no issuer configured)
    reasons = step["decision"]["reasons"]
    assert "liveness_passed" in reasons
    assert "match_accepted" in reasons
    assert "document_not_verified" not in reasons
    assert "issuer_confirmed" not in reasons  # no issuer check configured here
    assert "liveness_not_performed" not in reasons
    assert {m["code"] for m in step["decision"]["messages"]} == set(reasons)

    jwks = lenv.client.get("/.well-known/jwks.json").json()
    claims = verify_receipt(step["decision"]["receipt"], jwks)
    assert claims["decision"] == "pass"
    assurance = claims["assurance"]
    checks = {c["name"]: c for c in assurance["liveness_checks"]}
    assert {"timing", "light", "continuity", "parallax", "challenge"} <= set(checks)
    assert all(c["passed"] for c in checks.values())
    assert assurance["liveness_score"] > 0.5
    assert assurance["document_status"] == "verified"
    assert "mediapipe-face-landmark" in assurance["models"]
    assert "sface-2021dec-int8bq" in assurance["models"]
    assert isinstance(assurance["score"], float)
    assert assurance["score"] >= assurance["threshold"]

    polled = lenv.client.get(f"/v1/sessions/{session['id']}", headers=lenv.auth("reader"))
    assert [a["outcome"] for a in polled.json()["attempts"]] == ["pass"]
    service = lenv.client.app.state.service  # type: ignore[attr-defined]
    assert len(service.templates) == 0
    with service.db.session() as db:
        stored = db.scalars(select(Decision)).one()
        assert stored.scores["liveness_live"] is True
        assert stored.scores["liveness_score"] > 0.5
    # The flow is over: the token is spent.
    assert_problem(lenv.client.post(f"{path}/challenge"), 409, "token_replayed")


def test_print_attack_is_retry_and_the_challenge_cannot_be_replayed(
    sqlite_lenv: Env, card: Card, print_attack_mp4: bytes, head_turn_mp4: bytes
) -> None:
    env = sqlite_lenv
    _, path = _ready(env, card)
    ch = _challenge(env, path)
    r = _clip(env, path, ch["challenge"], print_attack_mp4)
    assert r.status_code == 200, r.text
    step = r.json()
    assert step["outcome"] == "retry"
    assert step["state"] == "awaiting_selfie"
    assert step["attempts_left"] == 2
    assert {"planar_motion", "motion_insufficient"} & set(step["reasons"])
    assert "match_accepted" not in step["reasons"]  # no match is run on a clip that is not live
    assert step["decision"] is None

    # The same challenge again (even with a genuine clip): refused, no attempt used.
    again = _clip(env, path, ch["challenge"], head_turn_mp4)
    assert_problem(again, 409, "challenge_unknown")
    metrics = env.client.get("/metrics").text
    assert 'faceproof_liveness_rejects_total{reason="planar_motion"}' in metrics

    # A fresh challenge works; it is a new draw, so only check that the flow goes on.
    fresh = _challenge(env, path)
    assert fresh["challenge"] != ch["challenge"]
    service = env.client.app.state.service  # type: ignore[attr-defined]
    with service.db.session() as db:
        assert db.scalars(select(Attempt.outcome)).all() == ["retry"]


def test_expired_challenge_is_410_and_costs_no_attempt(
    sqlite_lenv: Env, card: Card, head_turn_mp4: bytes
) -> None:
    env = sqlite_lenv
    session, path = _ready(env, card)
    ch = _challenge(env, path)
    env.clock.advance(121)  # the challenge lives 120 s
    assert_problem(_clip(env, path, ch["challenge"], head_turn_mp4), 410, "challenge_expired")
    polled = env.client.get(f"/v1/sessions/{session['id']}", headers=env.auth("reader"))
    assert polled.json()["attempts_used"] == 0


def test_foreign_or_tampered_challenge_is_unknown(
    sqlite_lenv: Env, card: Card, head_turn_mp4: bytes
) -> None:
    env = sqlite_lenv
    _, path_a = _ready(env, card)
    _, path_b = _ready(env, card)
    spec_b = _challenge(env, path_b)["challenge"]
    assert_problem(_clip(env, path_a, spec_b, head_turn_mp4), 409, "challenge_unknown")
    spec_a = _challenge(env, path_a)["challenge"]
    tampered = spec_a[:-2] + ("AA" if not spec_a.endswith("AA") else "BB")
    assert_problem(_clip(env, path_a, tampered, head_turn_mp4), 409, "challenge_unknown")
    assert_problem(_clip(env, path_a, "v1.garbage", head_turn_mp4), 409, "challenge_unknown")


def test_clip_upload_checks(sqlite_lenv: Env, card: Card, head_turn_mp4: bytes) -> None:
    env = sqlite_lenv
    session = env.new_session()
    path = env.capture_path(session)
    assert_problem(env.client.post(f"{path}/challenge"), 409, "consent_required")
    _consent(env, path)
    assert_problem(env.client.post(f"{path}/challenge"), 409, "session_state")  # no card yet
    env.upload(f"{path}/document", card.jpeg)
    spec = _challenge(env, path)["challenge"]

    assert_problem(
        _clip(env, path, spec, head_turn_mp4, content_type="image/jpeg"),
        415,
        "unsupported_media_type",
    )
    assert_problem(_clip(env, path, spec, b"\0" * (401 * 1024)), 413, "payload_too_large")
    no_spec = env.client.post(
        f"{path}/clip", files={"clip": ("clip.mp4", head_turn_mp4, "video/mp4")}
    )
    assert_problem(no_spec, 422, "malformed_request")
    no_clip = env.client.post(
        f"{path}/clip",
        files={"video": ("clip.mp4", head_turn_mp4, "video/mp4")},
        data={"challenge": spec},
    )
    assert_problem(no_clip, 422, "malformed_request")
    form_only = env.client.post(f"{path}/clip", data={"challenge": spec})
    assert_problem(form_only, 415, "unsupported_media_type")  # not multipart
    assert_problem(
        env.client.post(f"{path}/clip", json={"challenge": spec}), 415, "unsupported_media_type"
    )

    # A corrupt video is an attempt (like an unusable selfie): retry with clip_corrupt.
    bad = _clip(env, path, spec, b"not a video at all" * 100)
    assert bad.status_code == 200, bad.text
    assert bad.json()["outcome"] == "retry"
    assert bad.json()["reasons"] == ["clip_corrupt"]
    assert bad.json()["attempts_used"] == 1


def test_last_failed_clip_gives_alternative_required(
    tmp_path: Path,
    comparer: FaceComparer,
    liveness_engine: LivenessEngine,
    card: Card,
    print_attack_mp4: bytes,
) -> None:
    for env in _make_env(
        tmp_path,
        database_url("sqlite", tmp_path),
        comparer,
        liveness=liveness_engine,
        attempts_limit=1,
    ):
        _, path = _ready(env, card)
        spec = _challenge(env, path)["challenge"]
        step = _clip(env, path, spec, print_attack_mp4).json()
        assert step["outcome"] == "alternative_required"
        assert step["state"] == "completed"
        assert step["reasons"][-1] == "attempts_exhausted"
        assert {"planar_motion", "motion_insufficient"} & set(step["reasons"])
        assert step["decision"]["decision"] == "alternative_required"
