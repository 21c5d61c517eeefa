"""The HTTP service end to end: sessions, capture, decisions, receipts, problem+json, security
cases, and the no-retention scan. Flows run on SQLite, and on PostgreSQL when
FACEPROOF_TEST_POSTGRES_URL is set (see test_storage.py).

The card is a photographed specimen (conftest `card`: documents/ specimen generator around the
public-domain example portrait); the mirrored, relit, re-compressed portrait is the genuine
"selfie" (conftest `images`). The document paths with the issuer simulator are in
test_api_documents.py.
"""

from __future__ import annotations

import json
import logging
import random
import re
import tempfile
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from sqlalchemy import String, Text, select
from sqlalchemy import inspect as sa_inspect

from conftest import CHALLENGE_SEED, Card, Images, IssuerFactory, longest_number_list
from faceproof.api import create_app
from faceproof.comparison import FaceComparer
from faceproof.documents import pseudonymise
from faceproof.errors import FaceproofError
from faceproof.privacy.receipts import ReceiptSigner, verify_receipt
from faceproof.settings import Settings
from faceproof.storage.audit import verify_chain
from faceproof.storage.models import Attempt, AuditEntry, Base, Decision
from faceproof.storage.tenants import Scope, create_api_key, create_tenant
from test_storage import database_url

# Starlette 1.x deprecates driving its TestClient with `httpx` (it wants `httpx2`, which is not a
# dependency); the client itself works. Silence only that warning, only at import.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
SESSION_BODY = {"store_id": "gangnam-01", "channel": "in_store", "purpose": "new_line"}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Env:
    client: TestClient
    clock: Clock
    keys: dict[str, str]  # name -> plaintext API key
    settings: Settings
    signer: ReceiptSigner

    def auth(self, name: str = "writer") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}

    def new_session(self, **overrides: Any) -> dict[str, Any]:
        r = self.client.post(
            "/v1/sessions", json={**SESSION_BODY, **overrides}, headers=self.auth()
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def capture_path(self, session: dict[str, Any]) -> str:
        url = str(session["capture_url"])
        return url[url.index("/v1/capture/") :]

    def upload(self, path: str, data: bytes, content_type: str = "image/jpeg") -> Any:
        return self.client.post(path, files={"image": ("photo.jpg", data, content_type)})


def _make_env(
    tmp_path: Path,
    url: str,
    comparer: Any,
    *,
    raise_server_exceptions: bool = True,
    liveness: Any = None,
    **overrides: Any,
) -> Iterator[Env]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=url,
        max_upload_bytes=300 * 1024,
        public_base_url="https://faceproof.test",
        **overrides,
    )
    clock = Clock()
    signer = ReceiptSigner(Ed25519PrivateKey.generate())
    app = create_app(settings, comparer=comparer, signer=signer, clock=clock, liveness=liveness)
    service = app.state.service
    keys: dict[str, str] = {}
    with service.db.session() as db:
        a = create_tenant(db, "tenant-a", now=T0)
        b = create_tenant(db, "tenant-b", now=T0)
        for name, tenant, scopes in (
            ("writer", a, [Scope.SESSIONS_WRITE, Scope.SESSIONS_READ]),
            ("reader", a, [Scope.SESSIONS_READ]),
            ("admin", a, [Scope.ADMIN]),
            ("other", b, [Scope.SESSIONS_WRITE, Scope.SESSIONS_READ]),
        ):
            keys[name] = create_api_key(db, tenant.id, scopes, now=T0)[1]
    with TestClient(app, raise_server_exceptions=raise_server_exceptions) as client:
        yield Env(client, clock, keys, settings, signer)


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path, comparer: FaceComparer) -> Iterator[Env]:
    yield from _make_env(tmp_path, database_url(request.param, tmp_path), comparer)


@pytest.fixture
def sqlite_env(tmp_path: Path, comparer: FaceComparer) -> Iterator[Env]:
    yield from _make_env(tmp_path, database_url("sqlite", tmp_path), comparer)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:faceproof:reason:{code}"
    assert body["title"]
    assert body["detail"]
    assert body["message_ko"]
    assert "Traceback" not in response.text
    return body


def _consent(env: Env, path: str, choice: str = "accept") -> Any:
    return env.client.post(f"{path}/consent", json={"choice": choice})


# --- the flow -----------------------------------------------------------------------------------


def test_genuine_selfie_flow_gives_review(env: Env, images: Images, card: Card) -> None:
    session = env.new_session(channel="online", purpose="port_in", locale="en-US")
    assert session["state"] == "awaiting_consent"
    assert session["attempts_limit"] == 3
    assert session["capture_url"].startswith("https://faceproof.test/v1/capture/")
    path = env.capture_path(session)

    assert _consent(env, path).json()["state"] == "awaiting_document"
    doc = env.upload(f"{path}/document", card.jpeg)
    assert doc.status_code == 200, doc.text
    assert doc.json()["state"] == "awaiting_selfie"
    assert doc.json()["outcome"] == "document_accepted"
    assert doc.json()["document"]["status"] == "verified"  # no issuer configured here
    assert doc.json()["document"]["type"] == "kr_resident_card"

    selfie = env.upload(f"{path}/selfie", images.example_b)
    assert selfie.status_code == 200, selfie.text
    step = selfie.json()
    assert step["state"] == "completed"
    assert step["outcome"] == "review"
    decision = step["decision"]
    assert decision["decision"] == "review"
    assert "match_accepted" in decision["reasons"]
    assert "liveness_not_performed" in decision["reasons"]
    assert {m["code"] for m in decision["messages"]} == set(decision["reasons"])

    polled = env.client.get(f"/v1/sessions/{session['id']}", headers=env.auth("reader"))
    assert polled.status_code == 200
    body = polled.json()
    assert body["state"] == "completed"
    assert body["decision"]["receipt"] == decision["receipt"]
    assert [a["outcome"] for a in body["attempts"]] == ["review"]

    jwks = env.client.get("/.well-known/jwks.json").json()
    claims = verify_receipt(decision["receipt"], jwks)
    assert claims["sid"] == session["id"]
    assert claims["decision"] == "review"
    assert claims["reasons"] == decision["reasons"]
    assurance = claims["assurance"]
    assert "sface-2021dec-int8bq" in assurance["models"]
    assert "yunet-2023mar-int8bq" in assurance["models"]
    assert assurance["fmr_target"] > 0
    assert isinstance(assurance["threshold"], float)
    assert assurance["liveness_checks"] == []
    assert assurance["document_status"] == "verified"
    assert assurance["document_type"] == "kr_resident_card"
    checks = {c["name"]: c for c in assurance["document_checks"]}
    assert checks["field_number"] == {
        "name": "field_number",
        "passed": True,
        "code": "field_unreadable",
    }
    assert checks["portrait_face"]["passed"] is True
    assert "issuer" not in checks  # not configured
    key = env.settings.pseudonym_secret()
    assert claims["subject"] == pseudonymise(card.fields["number"], key)
    assert card.fields["number"] not in json.dumps(claims, ensure_ascii=False)

    # The flow is over: the token is spent.
    assert_problem(env.upload(f"{path}/selfie", images.example_b), 409, "token_replayed")
    assert_problem(_consent(env, path), 409, "token_replayed")

    service = env.client.app.state.service  # type: ignore[attr-defined]
    assert len(service.templates) == 0  # the card template is dropped after the decision
    with service.db.session() as db:
        assert verify_chain(db) is None
        events = db.scalars(select(AuditEntry.event).order_by(AuditEntry.id)).all()
    assert events[-4:] == [
        "session.consent",
        "session.document_accepted",
        "attempt.recorded",
        "decision.made",
    ]


def test_consent_declined_routes_to_alternative(env: Env) -> None:
    session = env.new_session()
    r = _consent(env, env.capture_path(session), "decline")
    assert r.status_code == 200
    decision = r.json()["decision"]
    assert decision["decision"] == "alternative_required"
    assert decision["reasons"] == ["consent_declined"]
    claims = verify_receipt(decision["receipt"], env.signer.jwks())
    assert claims["decision"] == "alternative_required"


def test_attempts_exhausted_after_three_unusable_selfies(
    env: Env, images: Images, card: Card
) -> None:
    session = env.new_session()
    path = env.capture_path(session)
    _consent(env, path)
    assert env.upload(f"{path}/document", card.jpeg).status_code == 200
    outcomes = []
    for _ in range(3):
        r = env.upload(f"{path}/selfie", images.flat_grey, "image/png")
        assert r.status_code == 200, r.text
        outcomes.append(r.json())
    assert [o["outcome"] for o in outcomes] == ["retry", "retry", "alternative_required"]
    assert outcomes[0]["reasons"] == ["face_not_found"]
    assert outcomes[0]["attempts_left"] == 2
    final = outcomes[2]["decision"]
    assert final["reasons"] == ["face_not_found", "attempts_exhausted"]
    assert_problem(env.upload(f"{path}/selfie", images.example_b), 409, "token_replayed")


def test_concurrent_selfies_decide_once(env: Env, images: Images, card: Card) -> None:
    session = env.new_session()
    path = env.capture_path(session)
    token = path.split("/")[3]
    _consent(env, path)
    assert env.upload(f"{path}/document", card.jpeg).status_code == 200
    service = env.client.app.state.service  # type: ignore[attr-defined]

    def attempt(_: int) -> Any:
        try:
            return service.selfie(token, images.example_b)
        except FaceproofError as exc:
            return exc.code.value

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(attempt, range(4)))
    steps = [r for r in results if not isinstance(r, str)]
    refused = [r for r in results if isinstance(r, str)]
    assert steps  # at least one upload decided
    assert set(refused) <= {"attempts_exhausted", "token_replayed"}
    receipts = {step.decision.receipt for step in steps}
    assert len(receipts) == 1  # one decision, whoever asked
    with service.db.session() as db:
        assert len(db.scalars(select(Decision)).all()) == 1
        assert len(db.scalars(select(Attempt)).all()) == len(steps) <= 3
        assert verify_chain(db) is None


# --- security cases -----------------------------------------------------------------------------


def test_authentication_and_scopes(sqlite_env: Env) -> None:
    env = sqlite_env
    c = env.client
    assert_problem(c.post("/v1/sessions", json=SESSION_BODY), 401, "unauthorized")
    bad = {"Authorization": "Bearer fpk_0123456789abcdef_not-a-key"}
    assert_problem(c.post("/v1/sessions", json=SESSION_BODY, headers=bad), 401, "unauthorized")
    r = c.post("/v1/sessions", json=SESSION_BODY, headers={"Authorization": "Basic abc"})
    assert_problem(r, 401, "unauthorized")
    r = c.post("/v1/sessions", json=SESSION_BODY, headers=env.auth("reader"))
    assert_problem(r, 403, "forbidden_scope")
    r = c.post("/v1/sessions", json=SESSION_BODY, headers=env.auth("admin"))
    assert r.status_code == 201  # admin implies every scope


def test_tenant_isolation(sqlite_env: Env) -> None:
    env = sqlite_env
    session = env.new_session()
    r = env.client.get(f"/v1/sessions/{session['id']}", headers=env.auth("other"))
    body = assert_problem(r, 404, "session_not_found")
    assert session["id"] not in json.dumps(body)
    r = env.client.get("/v1/sessions/ses_doesnotexist", headers=env.auth("reader"))
    assert_problem(r, 404, "session_not_found")


def test_capture_token_wrong_expired(sqlite_env: Env, images: Images, card: Card) -> None:
    env = sqlite_env
    assert_problem(_consent(env, "/v1/capture/not-a-token"), 404, "token_invalid")
    session = env.new_session()
    path = env.capture_path(session)
    env.clock.advance(env.settings.capture_token_ttl_seconds + 1)
    assert_problem(_consent(env, path), 410, "token_expired")
    assert_problem(env.upload(f"{path}/document", card.jpeg), 410, "token_expired")


def test_steps_out_of_order(sqlite_env: Env, images: Images, card: Card) -> None:
    env = sqlite_env
    session = env.new_session()
    path = env.capture_path(session)
    assert_problem(env.upload(f"{path}/document", card.jpeg), 409, "consent_required")
    assert_problem(env.upload(f"{path}/selfie", images.jpeg), 409, "consent_required")
    _consent(env, path)
    assert_problem(_consent(env, path), 409, "session_state")
    assert_problem(env.upload(f"{path}/selfie", images.jpeg), 409, "session_state")
    # A photo that is not a card: the applicant retakes it (422, no attempt used, state unchanged).
    body = assert_problem(
        env.upload(f"{path}/document", images.flat_grey, "image/png"), 422, "card_not_found"
    )
    assert body["message_ko"]
    # A face photo: the reader sees an object touching the frame's edges, not a whole card.
    assert_problem(env.upload(f"{path}/document", images.jpeg), 422, "card_cut_off")
    step = env.client.get(f"/v1/sessions/{session['id']}", headers=env.auth("reader")).json()
    assert (step["state"], step["attempts_used"]) == ("awaiting_document", 0)


def test_upload_limits_and_types(sqlite_env: Env, images: Images, card: Card) -> None:
    env = sqlite_env
    path = env.capture_path(env.new_session())
    _consent(env, path)
    big = images.png  # a lossless 512x512 PNG: larger than the 300 KiB test limit
    assert len(big) > env.settings.max_upload_bytes
    assert_problem(env.upload(f"{path}/document", big, "image/png"), 413, "payload_too_large")
    # Without Content-Length (chunked): the stream is cut off at the cap.
    boundary = "fpboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + big
        + f"\r\n--{boundary}--\r\n".encode()
    )
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    r = env.client.post(
        f"{path}/document",
        content=iter(chunks),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert "content-length" not in r.request.headers
    assert_problem(r, 413, "payload_too_large")
    r = env.client.post(
        f"{path}/document", content=images.jpeg, headers={"content-type": "image/jpeg"}
    )
    assert_problem(r, 415, "unsupported_media_type")
    assert_problem(
        env.upload(f"{path}/document", images.jpeg, "text/plain"), 415, "unsupported_media_type"
    )
    r = env.client.post(f"{path}/document", files={"other": ("a.jpg", images.jpeg, "image/jpeg")})
    assert_problem(r, 422, "malformed_request")
    # The session is unharmed by the refused uploads.
    assert env.upload(f"{path}/document", card.jpeg).status_code == 200


def test_malformed_json_and_validation(sqlite_env: Env) -> None:
    env = sqlite_env
    r = env.client.post(
        "/v1/sessions",
        content=b'{"store_id": ',
        headers={**env.auth(), "content-type": "application/json"},
    )
    body = assert_problem(r, 422, "malformed_request")
    assert "errors" in body
    r = env.client.post("/v1/sessions", json={**SESSION_BODY, "channel": "fax"}, headers=env.auth())
    assert_problem(r, 422, "malformed_request")
    r = env.client.post(
        "/v1/sessions", json={**SESSION_BODY, "rrn": "900101-1234567"}, headers=env.auth()
    )
    body = assert_problem(r, 422, "malformed_request")
    assert "900101" not in r.text  # submitted values are never echoed
    path = env.capture_path(env.new_session())
    assert_problem(
        env.client.post(f"{path}/consent", json={"choice": "maybe"}), 422, "malformed_request"
    )
    assert_problem(env.client.get("/v1/nothing-here"), 404, "malformed_request")


def test_unexpected_error_is_bare_500(tmp_path: Path, images: Images, card: Card) -> None:
    class Broken:
        def template(self, image: bytes) -> Any:
            raise RuntimeError("secret internal detail /etc/passwd")

    for env in _make_env(
        tmp_path, database_url("sqlite", tmp_path), Broken(), raise_server_exceptions=False
    ):
        path = env.capture_path(env.new_session())
        _consent(env, path)
        r = env.upload(f"{path}/document", card.jpeg)
        body = assert_problem(r, 500, "internal_error")
        assert "secret" not in r.text
        assert "RuntimeError" not in r.text
        assert set(body) == {"type", "title", "status", "detail", "code", "message_ko"}


def test_rate_limits_per_tenant_and_client(tmp_path: Path, comparer: FaceComparer) -> None:
    url = database_url("sqlite", tmp_path)
    for env in _make_env(
        tmp_path, url, comparer, rate_limit_tenant_per_minute=3, rate_limit_client_per_minute=2
    ):
        for _ in range(3):
            env.new_session()
        r = env.client.post("/v1/sessions", json=SESSION_BODY, headers=env.auth())
        assert_problem(r, 429, "rate_limited")
        assert int(r.headers["Retry-After"]) >= 1
        # Another tenant has its own budget.
        r = env.client.post("/v1/sessions", json=SESSION_BODY, headers=env.auth("other"))
        assert r.status_code == 201
        env.clock.advance(20)  # one token back at 3/min
        path = env.capture_path(env.new_session())
        assert _consent(env, "/v1/capture/nope").status_code == 404
        assert _consent(env, path).status_code == 200
        assert_problem(_consent(env, path), 429, "rate_limited")


def test_session_expires(sqlite_env: Env) -> None:
    env = sqlite_env
    session = env.new_session()
    env.clock.advance(env.settings.session_ttl_seconds + 1)
    r = env.client.get(f"/v1/sessions/{session['id']}", headers=env.auth())
    assert r.json()["state"] == "expired"


def test_cors_only_for_the_capture_origin(tmp_path: Path, comparer: FaceComparer) -> None:
    url = database_url("sqlite", tmp_path)
    origin = "https://capture.example"
    for env in _make_env(tmp_path, url, comparer, capture_origins=[origin]):
        pre = {"Access-Control-Request-Method": "POST"}
        r = env.client.options("/v1/capture/x/consent", headers={"Origin": origin, **pre})
        assert r.headers.get("access-control-allow-origin") == origin
        r = env.client.options(
            "/v1/capture/x/consent", headers={"Origin": "https://evil.example", **pre}
        )
        assert "access-control-allow-origin" not in r.headers
        r = env.client.options(
            "/v1/sessions",
            headers={"Origin": origin, **pre, "Access-Control-Request-Headers": "authorization"},
        )
        assert "authorization" not in r.headers.get("access-control-allow-headers", "").lower()


# --- operations ---------------------------------------------------------------------------------


def test_health_ready_metrics_openapi(sqlite_env: Env) -> None:
    c = sqlite_env.client
    assert c.get("/healthz").json() == {"status": "ok"}
    assert c.get("/readyz").json() == {"status": "ready"}
    _consent(sqlite_env, sqlite_env.capture_path(sqlite_env.new_session()), "decline")
    metrics = c.get("/metrics").text
    assert (
        'faceproof_decisions_total{decision="alternative_required",reason="consent_declined"} 1.0'
        in metrics
    )
    assert "faceproof_request_seconds_bucket" in metrics
    paths = c.get("/openapi.json").json()["paths"]
    assert {"/v1/sessions", "/v1/sessions/{session_id}", "/v1/capture/{token}/selfie"} <= set(paths)
    upload = paths["/v1/capture/{token}/document"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload


def test_production_refuses_default_secrets(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="PSEUDONYM_KEY"):
        Settings(environment="production", database_url="sqlite://")
    key = "k" * 40
    with pytest.raises(ValidationError, match="RECEIPT_KEY_PATH"):
        Settings(environment="production", pseudonym_key=key, database_url="sqlite://")
    with pytest.raises(ValidationError, match="CHALLENGE_KEY"):
        Settings(
            environment="production",
            pseudonym_key=key,
            database_url="sqlite://",
            receipt_key_path=tmp_path / "r.pem",
        )
    with pytest.raises(ValidationError, match="CHALLENGE_KEY"):
        Settings(challenge_key="not-hex")
    settings = Settings(
        environment="production",
        pseudonym_key=key,
        challenge_key="ab" * 32,
        database_url=f"sqlite:///{tmp_path / 'p.db'}",
        receipt_key_path=tmp_path / "missing.pem",
        data_dir=tmp_path / "unused",
        run_migrations_on_start=True,
    )
    with pytest.raises(FileNotFoundError):  # production never generates a key
        create_app(settings)
    assert not (tmp_path / "missing.pem").exists()
    assert not (tmp_path / "unused").exists()


def test_development_generates_receipt_key_0600(tmp_path: Path, comparer: FaceComparer) -> None:
    settings = Settings(data_dir=tmp_path / "d")
    app = create_app(settings, comparer=comparer)
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        kid = client.get("/.well-known/jwks.json").json()["keys"][0]["kid"]
    key = tmp_path / "d" / "receipt-ed25519.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "d" / "faceproof.db").is_file()
    with TestClient(create_app(settings, comparer=comparer)) as client:
        assert client.get("/.well-known/jwks.json").json()["keys"][0]["kid"] == kid


# --- no retention -------------------------------------------------------------------------------

# Long enough that base64 text (receipts, encrypted uploads) never holds one by chance: a
# WebP's form type is always followed by its first chunk (VP8 , VP8L or VP8X), and a GIF
# starts with one of its two versions.
_MAGIC = {
    "jpeg": b"\xff\xd8\xff",
    "png": b"\x89PNG\r\n\x1a\n",
    "webp": b"WEBPVP8",
    "gif87a": b"GIF87a",
    "gif89a": b"GIF89a",
    "mp4": b"ftypisom",
    "webm": b"\x1a\x45\xdf\xa3",
}
_FLOAT_RUN = re.compile(r"(?:-?\d+\.\d+(?:e-?\d+)?\s*,\s*){63,}")


def _tmp_snapshot() -> dict[Path, float]:
    root = Path(tempfile.gettempdir())
    out = {}
    for p in root.glob("*"):
        try:
            if p.is_file():
                out[p] = p.stat().st_mtime
        except OSError:
            continue
    return out


def test_no_biometric_retention(
    tmp_path: Path,
    comparer: FaceComparer,
    liveness_engine: Any,
    head_turn_mp4: bytes,
    images: Images,
    card: Card,
    expired_card: Card,
    issuer_sim: IssuerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    before = _tmp_snapshot()
    uploads = [card.jpeg, expired_card.jpeg, images.example_b, images.flat_grey, head_turn_mp4]
    responses: list[str] = []  # every response body of the flows, problem details included
    assert b"ftypisom" in head_turn_mp4[:32]

    def kept(response: Any) -> Any:
        responses.append(response.text)
        return response

    # The issuer check runs too (the numbers travel to it; DEBUG logs of httpx are captured).
    sim = issuer_sim([card.registry_entry("valid"), expired_card.registry_entry("valid")])
    for env in _make_env(
        tmp_path,
        database_url("sqlite", tmp_path),
        comparer,
        liveness=liveness_engine,
        issuer_url=sim.url,
    ):
        # Five full flows: genuine with a liveness clip (pass); genuine selfie (review); a photo
        # that is not a card, then exhausted attempts; an expired card (fail); declined consent.
        service = env.client.app.state.service  # type: ignore[attr-defined]
        service.challenges.rng = random.Random(CHALLENGE_SEED)
        path = env.capture_path(env.new_session())
        kept(_consent(env, path))
        kept(env.upload(f"{path}/document", card.jpeg))
        spec = kept(env.client.post(f"{path}/challenge")).json()["challenge"]
        clip = env.client.post(
            f"{path}/clip",
            files={"clip": ("clip.mp4", head_turn_mp4, "video/mp4")},
            data={"challenge": spec},
        )
        assert kept(clip).json()["outcome"] == "pass", clip.text
        session = env.new_session()
        path = env.capture_path(session)
        kept(_consent(env, path))
        kept(env.upload(f"{path}/document", card.jpeg))
        assert kept(env.upload(f"{path}/selfie", images.example_b)).json()["outcome"] == "review"
        kept(env.client.get(f"/v1/sessions/{session['id']}", headers=env.auth("reader")))
        path = env.capture_path(env.new_session())
        kept(_consent(env, path))
        assert kept(env.upload(f"{path}/document", images.example_b)).status_code == 422
        kept(env.upload(f"{path}/document", card.jpeg))
        for _ in range(3):
            kept(env.upload(f"{path}/selfie", images.flat_grey, "image/png"))
        path = env.capture_path(env.new_session())
        kept(_consent(env, path))
        assert kept(env.upload(f"{path}/document", expired_card.jpeg)).json()["outcome"] == "fail"
        kept(env.upload(f"{path}/document", card.jpeg))  # 409 token_replayed: a problem
        kept(_consent(env, env.capture_path(env.new_session()), "decline"))
        service = env.client.app.state.service  # type: ignore[attr-defined]
        with service.db.session() as db:
            receipts = [
                verify_receipt(r, env.signer.jwks()) for r in db.scalars(select(Decision.receipt))
            ]
            stored_subjects = set(db.scalars(select(Decision.subject_id)))
        assert len(receipts) == 5
        key = env.settings.pseudonym_secret()
        assert pseudonymise(card.fields["number"], key) in stored_subjects
        # Every text and JSON column of every table: no number list as long as an embedding.
        with service.db.session() as db:
            for table in Base.metadata.sorted_tables:
                for row in db.execute(table.select()).mappings():
                    for column in table.columns:
                        value = row[column.name]
                        if isinstance(value, list | dict):
                            assert longest_number_list(value) < 64, (table.name, column.name)
                        if isinstance(column.type, String | Text) and isinstance(value, str):
                            assert not _FLOAT_RUN.search(value), (table.name, column.name)
        assert sa_inspect(service.db.engine).get_table_names()  # the scan saw the real schema

    db_files = list((tmp_path).glob("faceproof.db*"))
    assert db_files
    for db_file in db_files:
        raw = db_file.read_bytes()
        for name, magic in _MAGIC.items():
            assert magic not in raw, f"{name} magic bytes in {db_file.name}"
        for data in uploads:
            assert data[200:264] not in raw
    # No raw registration number (with or without its hyphen) in the database file, the logs,
    # the receipts or any response (problem details included); the pseudonym only.
    numbers = [
        form
        for c in (card, expired_card)
        for form in (c.fields["number"], c.fields["number"].replace("-", ""))
    ]
    texts = [caplog.text, *responses, *(json.dumps(r, ensure_ascii=False) for r in receipts)]
    for number in numbers:
        for db_file in db_files:
            assert number.encode() not in db_file.read_bytes(), db_file.name
        for text in texts:
            assert number not in text
    logs = caplog.text
    assert logs  # the flow did log something
    for name, magic in _MAGIC.items():
        assert magic.decode("latin-1") not in logs, name
    assert not _FLOAT_RUN.search(logs)
    for path, mtime in _tmp_snapshot().items():
        if before.get(path) == mtime:
            continue
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        for data in uploads:
            assert data[200:264] not in raw, f"upload bytes in temp file {path}"
