"""The document step of the HTTP service: the card read, the issuer check, the decision.

The card is a photographed specimen around the example portrait (conftest `card`); the clip is
the generated head turn of the same portrait; the issuer (진위확인) simulator runs as a real HTTP
server on loopback (conftest `issuer_sim`), and is stopped in the middle of a flow to show that
an unreachable issuer gives `review` + `issuer_unavailable`, quickly.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from conftest import CARD_TODAY, CHALLENGE_SEED, Card, IssuerFactory, encode
from faceproof.comparison import FaceComparer
from faceproof.documents import DocumentType, pseudonymise
from faceproof.documents.specimen import photograph, render_specimen
from faceproof.liveness import LivenessEngine
from faceproof.privacy.receipts import verify_receipt
from test_api import Env, _consent, _make_env, assert_problem
from test_storage import database_url


@pytest.fixture
def make_env(
    tmp_path: Path, comparer: FaceComparer, liveness_engine: LivenessEngine
) -> Iterator[Any]:
    """An SQLite service, optionally with `issuer_url` set."""
    envs: list[Iterator[Env]] = []

    def make(issuer_url: str | None = None) -> Env:
        gen = _make_env(
            tmp_path,
            database_url("sqlite", tmp_path),
            comparer,
            liveness=liveness_engine,
            issuer_url=issuer_url,
        )
        envs.append(gen)
        env = next(gen)
        env.client.app.state.service.challenges.rng = random.Random(CHALLENGE_SEED)  # type: ignore[attr-defined]
        return env

    yield make
    for gen in envs:
        for _ in gen:  # runs the rest of the generator: closes the client
            pass


def _document(env: Env, card: Card) -> tuple[str, Any]:
    path = env.capture_path(env.new_session())
    assert _consent(env, path).status_code == 200
    r = env.upload(f"{path}/document", card.jpeg)
    assert r.status_code == 200, r.text
    return path, r.json()


def _clip(env: Env, path: str, clip: bytes) -> dict[str, Any]:
    spec = env.client.post(f"{path}/challenge").json()["challenge"]
    r = env.client.post(
        f"{path}/clip", files={"clip": ("clip.mp4", clip, "video/mp4")}, data={"challenge": spec}
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_issuer_confirms_and_the_live_clip_passes(
    make_env: Any, issuer_sim: IssuerFactory, card: Card, head_turn_mp4: bytes
) -> None:
    sim = issuer_sim([card.registry_entry("valid")])
    env = make_env(sim.url)
    path, doc = _document(env, card)
    assert doc["outcome"] == "document_accepted"
    assert doc["document"]["status"] == "verified"
    assert doc["reasons"][0] == "issuer_confirmed"
    step = _clip(env, path, head_turn_mp4)
    assert step["outcome"] == "pass", step
    reasons = step["decision"]["reasons"]
    assert {"liveness_passed", "match_accepted", "issuer_confirmed"} <= set(reasons)
    assert "document_not_verified" not in reasons
    claims = verify_receipt(step["decision"]["receipt"], env.signer.jwks())
    assurance = claims["assurance"]
    assert assurance["document_status"] == "verified"
    assert assurance["document_type"] == "kr_resident_card"
    issuer = next(c for c in assurance["document_checks"] if c["name"] == "issuer")
    assert issuer == {"name": "issuer", "passed": True, "code": "issuer_confirmed"}
    assert claims["subject"] == pseudonymise(card.fields["number"], env.settings.pseudonym_secret())


def test_issuer_revoked_fails_at_the_document_step(
    make_env: Any, issuer_sim: IssuerFactory, card: Card
) -> None:
    sim = issuer_sim([card.registry_entry("revoked")])
    env = make_env(sim.url)
    path, doc = _document(env, card)
    assert doc["state"] == "completed"
    assert doc["outcome"] == "fail"
    assert doc["document"]["status"] == "rejected"
    assert doc["decision"]["reasons"] == ["issuer_revoked"]
    assert doc["attempts_used"] == 0  # no face attempt was needed
    claims = verify_receipt(doc["decision"]["receipt"], env.signer.jwks())
    assert claims["decision"] == "fail"
    assert claims["assurance"]["document_status"] == "rejected"
    assert_problem(env.client.post(f"{path}/challenge"), 409, "token_replayed")


def test_issuer_stopped_mid_flow_is_review_issuer_unavailable_quickly(
    make_env: Any, issuer_sim: IssuerFactory, card: Card, head_turn_mp4: bytes
) -> None:
    sim = issuer_sim([card.registry_entry("valid")])
    env = make_env(sim.url)
    path = env.capture_path(env.new_session())
    assert _consent(env, path).status_code == 200
    sim.stop()  # the issuer goes away between consent and the card
    start = time.monotonic()
    r = env.upload(f"{path}/document", card.jpeg)
    elapsed = time.monotonic() - start
    assert r.status_code == 200, r.text
    assert elapsed < 5.0
    doc = r.json()
    assert doc["document"]["status"] == "unverified"
    assert "issuer_unavailable" in doc["reasons"]
    step = _clip(env, path, head_turn_mp4)
    assert step["outcome"] == "review"
    reasons = step["decision"]["reasons"]
    assert {"liveness_passed", "match_accepted", "issuer_unavailable"} <= set(reasons)
    assert reasons[-1] == "document_not_verified"
    claims = verify_receipt(step["decision"]["receipt"], env.signer.jwks())
    assert claims["assurance"]["document_status"] == "unverified"


def test_expired_card_fails_with_document_expired(make_env: Any, expired_card: Card) -> None:
    env = make_env()
    _, doc = _document(env, expired_card)
    assert doc["outcome"] == "fail"
    assert doc["document"]["type"] == "kr_driver_license"
    assert doc["decision"]["reasons"] == ["document_expired"]
    expiry = next(c for c in doc["document"]["checks"] if c["code"] == "document_expired")
    assert expiry["passed"] is False


def test_card_whose_portrait_has_no_face_fails(make_env: Any) -> None:
    plain = Image.new("RGB", (300, 400), (180, 190, 200))
    spec = render_specimen(DocumentType.KR_RESIDENT_CARD, seed=2, today=CARD_TODAY, portrait=plain)
    faceless = Card(encode(photograph(spec, seed=2).image, "JPEG", quality=85), "", {})
    env = make_env()
    _, doc = _document(env, faceless)
    assert doc["outcome"] == "fail"
    assert doc["decision"]["reasons"] == ["portrait_no_face"]


def test_not_a_card_is_422_and_the_applicant_retakes(make_env: Any, card: Card) -> None:
    env = make_env()
    session = env.new_session()
    path = env.capture_path(session)
    _consent(env, path)
    blank = encode(Image.new("RGB", (800, 600), (120, 110, 100)), "JPEG", quality=90)
    assert_problem(env.upload(f"{path}/document", blank), 422, "card_not_found")
    polled = env.client.get(f"/v1/sessions/{session['id']}", headers=env.auth("reader")).json()
    assert (polled["state"], polled["attempts_used"]) == ("awaiting_document", 0)
    assert env.upload(f"{path}/document", card.jpeg).json()["document"]["status"] == "verified"
