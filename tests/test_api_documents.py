"""The document step of the HTTP service: the card read, the issuer check, the decision.

The card is a photographed specimen around the example portrait (conftest `card`); the clip is
the generated head turn of the same portrait; the issuer (진위확인) simulator runs as a real HTTP
server on loopback (conftest `issuer_sim`), and is stopped in the middle of a flow to show that
an unreachable issuer gives `review` + `issuer_unavailable`, quickly.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import timedelta
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


# --- subscription policy and line activation ---------------------------------------------------


def _registry(env: Env) -> Any:
    return env.client.app.state.service.registry  # type: ignore[attr-defined]


def test_a_fourth_line_is_denied_at_the_document_step_before_any_face_capture(
    make_env: Any, card: Card
) -> None:
    from faceproof.policy import Activation

    env = make_env()
    for i in range(3):  # three lines at other carriers within the window
        _registry(env).record_activation(
            Activation(card.fields["number"], f"carrier-{i}", "s-1", f"line-{i}", env.clock())
        )
    path, doc = _document(env, card)
    assert doc["outcome"] == "fail"
    assert doc["decision"]["reasons"] == ["policy_line_limit"]
    assert doc["attempts_used"] == 0  # turned away before any face was taken
    assert doc["document"]["policy"]["decision"] == "deny"
    messages = {m["code"]: m for m in doc["messages"]}
    assert "통신사" in messages["policy_line_limit"]["message_ko"]
    assert_problem(env.client.post(f"{path}/challenge"), 409, "token_replayed")


def test_a_blocked_identity_is_denied(make_env: Any, card: Card) -> None:
    env = make_env()
    _registry(env).set_blocked(card.fields["number"], True)
    _, doc = _document(env, card)
    assert doc["outcome"] == "fail"
    assert doc["decision"]["reasons"] == ["policy_blocked"]


def test_pass_then_activation_is_recorded_and_the_holder_is_alerted(
    make_env: Any, issuer_sim: IssuerFactory, card: Card, head_turn_mp4: bytes
) -> None:
    from datetime import timedelta

    from faceproof.policy.alerts import read_outbox

    sim = issuer_sim([card.registry_entry("valid")])
    env = make_env(sim.url)
    path, _ = _document(env, card)
    step = _clip(env, path, head_turn_mp4)
    assert step["outcome"] == "pass", step
    session_id = step["session_id"]
    url = f"/v1/sessions/{session_id}/activation"
    body = {"line_id": "line-777", "number": card.fields["number"], "contact": "+82-10-1111-2222"}
    wrong = {**body, "number": "850505-2345678"}
    r = env.client.post(url, json=wrong, headers=env.auth())
    assert_problem(r, 422, "activation_subject_mismatch")
    r = env.client.post(url, json=body, headers=env.auth("other"))  # another tenant
    assert_problem(r, 404, "session_not_found")
    r = env.client.post(url, json=body, headers=env.auth())
    assert r.status_code == 200, r.text
    assert r.json() == {
        "session_id": session_id,
        "line_id": "line-777",
        "recorded": True,
        "alert_sent": True,
    }
    # Confirmed twice: counted once, alerted once.
    r = env.client.post(url, json=body, headers=env.auth())
    assert r.json()["alert_sent"] is False
    since = env.clock() - timedelta(days=30)
    assert _registry(env).count_activations(card.fields["number"], since) == 1
    outbox = read_outbox(Path(env.settings.data_dir) / "outbox.jsonl")
    assert len(outbox) == 1
    assert outbox[0]["recipient"] == "+82-10-1111-2222"
    assert card.fields["number"] not in json.dumps(outbox, ensure_ascii=False)


def test_activation_needs_a_passed_session(make_env: Any, card: Card) -> None:
    env = make_env()
    session = env.new_session()
    body = {"line_id": "l-1", "number": card.fields["number"]}
    r = env.client.post(f"/v1/sessions/{session['id']}/activation", json=body, headers=env.auth())
    assert_problem(r, 409, "session_state")


# --- the mobile-ID path: a session completed without any face data ----------------------------


class _Published:
    def __init__(self) -> None:
        self.lists: dict[str, str] = {}

    def fetch(self, uri: str) -> str:
        return self.lists[uri]


def _mobile_id_env(make_env: Any) -> tuple[Env, Any, Any]:
    from faceproof.alternatives import MobileIdVerifier, TestHolder, TestIssuer

    env = make_env()
    issuer, published = TestIssuer(), _Published()
    published.lists[issuer.status_uri] = issuer.status_list(env.clock())
    verifier = MobileIdVerifier({issuer.issuer_id: issuer.public_key}, published, clock=env.clock)
    env.client.app.state.service.mobile_id = verifier  # type: ignore[attr-defined]
    return env, issuer, TestHolder()


def _present(env: Env, issuer: Any, holder: Any, path: str, number: str, **kw: Any) -> Any:
    binding = env.client.get(f"{path}/mobile-id").json()
    credential, disclosures, _ = issuer.issue(
        holder, name="홍길동", birth_date="1990-01-01", number=number, now=env.clock()
    )
    presentation = holder.present(
        credential,
        disclosures,
        nonce=kw.get("nonce", binding["nonce"]),
        audience=binding["audience"],
        now=env.clock(),
    )
    return env.client.post(f"{path}/mobile-id", json={"presentation": presentation})


def test_a_mobile_id_presentation_completes_a_session_without_face_data(make_env: Any) -> None:
    env, issuer, holder = _mobile_id_env(make_env)
    path = env.capture_path(env.new_session())  # no biometric consent is needed on this path
    r = _present(env, issuer, holder, path, "900101-1234567")
    assert r.status_code == 200, r.text
    step = r.json()
    assert step["outcome"] == "pass"
    assert step["decision"]["reasons"] == ["mobile_id_verified"]
    assert step["attempts_used"] == 0
    claims = verify_receipt(step["decision"]["receipt"], env.signer.jwks())
    assurance = claims["assurance"]
    assert assurance["document_type"] == "mobile_id"
    assert assurance["models"] == []  # no face model ran
    assert assurance["score"] is None
    assert assurance["liveness_checks"] == []
    assert claims["subject"] == pseudonymise("900101-1234567", env.settings.pseudonym_secret())
    # The session is decided: the token is spent.
    assert_problem(env.client.get(f"{path}/mobile-id"), 409, "token_replayed")


def test_a_presentation_for_another_session_is_refused(make_env: Any) -> None:
    env, issuer, holder = _mobile_id_env(make_env)
    path = env.capture_path(env.new_session())
    r = _present(env, issuer, holder, path, "900101-1234567", nonce="someone-elses-nonce")
    assert_problem(r, 422, "mobile_id_nonce_mismatch")
    # Nothing was decided: a correct presentation still works.
    assert _present(env, issuer, holder, path, "900101-1234567").json()["outcome"] == "pass"


def test_the_line_limit_applies_to_the_mobile_id_path_too(make_env: Any) -> None:
    from faceproof.policy import Activation

    env, issuer, holder = _mobile_id_env(make_env)
    for i in range(3):
        _registry(env).record_activation(
            Activation("900101-1234567", f"carrier-{i}", "s", f"l-{i}", env.clock())
        )
    path = env.capture_path(env.new_session())
    step = _present(env, issuer, holder, path, "900101-1234567").json()
    assert step["outcome"] == "fail"
    assert step["decision"]["reasons"] == ["policy_line_limit"]


def test_mobile_id_not_configured(make_env: Any) -> None:
    env = make_env()
    path = env.capture_path(env.new_session())
    assert_problem(env.client.get(f"{path}/mobile-id"), 409, "mobile_id_not_configured")


# --- the clerk's manual path -------------------------------------------------------------------


def _manual(env: Env, session_id: str, **overrides: Any) -> Any:
    body = {
        "clerk_id": "clerk-17",
        "document_serial": "2026-0501-0042",
        "abstract_issued_on": (env.clock() + timedelta(hours=9)).date().isoformat(),
        "holder_matches": True,
        "number": "900101-1234567",
        **overrides,
    }
    return env.client.post(f"/v1/sessions/{session_id}/manual-check", json=body, headers=env.auth())


def test_a_clerks_same_day_abstract_completes_a_session_without_face_data(
    make_env: Any,
) -> None:
    env = make_env()
    session = env.new_session()
    r = _manual(env, session["id"])
    assert r.status_code == 200, r.text
    step = r.json()
    assert step["outcome"] == "pass"
    assert step["decision"]["reasons"] == ["manual_check_recorded"]
    claims = verify_receipt(step["decision"]["receipt"], env.signer.jwks())
    assert claims["assurance"]["document_type"] == "manual_abstract"
    assert claims["assurance"]["models"] == []
    # Decided once: a second entry is refused.
    assert_problem(_manual(env, session["id"]), 409, "session_state")


def test_a_stale_abstract_fails_and_another_tenant_cannot_touch_the_session(
    make_env: Any,
) -> None:
    env = make_env()
    session = env.new_session()
    other = env.client.post(
        f"/v1/sessions/{session['id']}/manual-check",
        json={
            "clerk_id": "x1",
            "document_serial": "123456",
            "abstract_issued_on": "2026-01-01",
            "holder_matches": True,
            "number": "900101-1234567",
        },
        headers=env.auth("other"),
    )
    assert_problem(other, 404, "session_not_found")
    step = _manual(env, session["id"], abstract_issued_on="2020-01-01").json()
    assert step["outcome"] == "fail"
    assert step["decision"]["reasons"] == ["manual_abstract_not_same_day"]


def test_the_rules_are_checked_again_just_before_a_pass(
    make_env: Any, issuer_sim: IssuerFactory, card: Card, head_turn_mp4: bytes
) -> None:
    from faceproof.policy import Activation

    sim = issuer_sim([card.registry_entry("valid")])
    env = make_env(sim.url)
    path, doc = _document(env, card)
    assert doc["document"]["policy"]["decision"] == "allow"
    # Meanwhile, three lines are opened in this person's name at other carriers.
    for i in range(3):
        _registry(env).record_activation(
            Activation(card.fields["number"], f"carrier-{i}", "s", f"l-{i}", env.clock())
        )
    step = _clip(env, path, head_turn_mp4)
    assert step["outcome"] == "fail"
    assert step["decision"]["reasons"] == ["policy_line_limit"]


def test_a_failed_face_check_is_reported_to_the_line_registry(
    make_env: Any, card: Card, print_attack_mp4: bytes
) -> None:
    env = make_env()
    path, _ = _document(env, card)
    since = env.clock() - timedelta(hours=1)
    assert _registry(env).failed_checks(card.fields["number"], since) == (0, 0)
    step = _clip(env, path, print_attack_mp4)
    assert step["outcome"] == "retry"
    # One failed check at this store: repeated across stores, it flags a possible stolen card.
    assert _registry(env).failed_checks(card.fields["number"], since) == (1, 1)
