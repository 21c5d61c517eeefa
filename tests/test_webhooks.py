"""Signed webhooks (api/webhooks.py): registration, the transactional outbox, delivery with
retries, signatures, tenant isolation, URL rules, the migration, and no retention.

Deliveries go to a real HTTP server on loopback (`Receiver`, http.server in a thread). The app's
clock is the tests' frozen clock: a retry is due only once a test moves the clock, so backoff is
checked without sleeping or timing anything; the tests wait for conditions, never for durations.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Integer,
    LargeBinary,
    PickleType,
    String,
    func,
    inspect,
    select,
    text,
    update,
)

from conftest import longest_number_list
from faceproof.api import webhooks
from faceproof.api.webhooks import (
    MAX_WEBHOOKS_PER_TENANT,
    check_webhook_url,
    open_secret,
    seal_secret,
    sign_webhook,
    verify_webhook_signature,
)
from faceproof.documents import pseudonymise
from faceproof.errors import FaceproofError
from faceproof.privacy.receipts import verify_receipt
from faceproof.reasons import ReasonCode
from faceproof.settings import Settings, SettingsError
from faceproof.storage.db import Database
from faceproof.storage.db import downgrade as db_downgrade
from faceproof.storage.db import upgrade as db_upgrade
from faceproof.storage.models import (
    AuditEntry,
    Base,
    Decision,
    Session,
    Tenant,
    UTCDateTime,
    Webhook,
    WebhookDelivery,
)
from faceproof.storage.purge import purge_expired
from faceproof.storage.tenants import Scope, create_api_key
from test_api import _FLOAT_RUN, _MAGIC, T0, Env, _consent, _make_env, assert_problem
from test_storage import database_url

T = TypeVar("T")
_NUMBER = "900101-1234568"  # a syntactically valid registration number (synthetic)
_WAIT_S = 60.0  # how long a condition may take to come true before the test gives up


# --- a loopback receiver ------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]  # lower-case names
    body: bytes


class Receiver:
    """An HTTP endpoint on 127.0.0.1 that records each POST and answers with the next of
    `answers`, then `default`: a status code, or "hang" (no answer until `release` is set, then
    the connection is closed unanswered)."""

    def __init__(self, answers: tuple[int | str, ...] = (), default: int | str = 200) -> None:
        self.requests: list[Received] = []
        self.release = threading.Event()
        self._answers = list(answers)
        self._default = default
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                answer = receiver._record(
                    Received({k.lower(): v for k, v in self.headers.items()}, body)
                )
                if answer == "hang":
                    receiver.release.wait(_WAIT_S)
                    self.close_connection = True
                    return
                self.send_response(int(answer))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _record(self, received: Received) -> int | str:
        with self._changed:
            self.requests.append(received)
            self._changed.notify_all()
            return self._answers.pop(0) if self._answers else self._default

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/faceproof"

    def wait_for(self, count: int) -> list[Received]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.requests) >= count, _WAIT_S), (
                f"{len(self.requests)} of {count} deliveries arrived"
            )
            return list(self.requests)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


# --- helpers ------------------------------------------------------------------------------------


@contextmanager
def _env(tmp_path: Path, kind: str = "sqlite", **overrides: Any) -> Iterator[Env]:
    """The API test environment (test_api._make_env) with a fast-polling delivery thread."""
    overrides.setdefault("webhook_poll_seconds", 0.02)
    made = _make_env(tmp_path, database_url(kind, tmp_path), None, **overrides)
    try:
        yield next(made)
    finally:
        made.close()


def _wait_until(condition: Callable[[], T | None], what: str) -> T:
    deadline = time.monotonic() + _WAIT_S
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def _register(env: Env, url: str, events: tuple[str, ...] = ("session.decided",)) -> Any:
    r = env.client.post(
        "/v1/webhooks", json={"url": url, "events": list(events)}, headers=env.auth("admin")
    )
    assert r.status_code == 201, r.text
    return r.json()


def _decline(env: Env) -> dict[str, Any]:
    """A session decided the cheapest way: consent declined (alternative_required)."""
    session = env.new_session()
    r = _consent(env, env.capture_path(session), "decline")
    assert r.status_code == 200, r.text
    assert r.json()["decision"]["decision"] == "alternative_required"
    return session


def _deliveries(env: Env) -> list[WebhookDelivery]:
    with env.client.app.state.service.db.session() as db:  # type: ignore[attr-defined]
        return list(db.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def _only(env: Env, **expected: Any) -> WebhookDelivery | None:
    """The one delivery, once it has every `expected` attribute value."""
    rows = _deliveries(env)
    assert len(rows) <= 1, rows
    if rows and all(getattr(rows[0], k) == v for k, v in expected.items()):
        return rows[0]
    return None


def _verifies(secret: str, got: Received) -> bool:
    timestamp = got.headers["faceproof-timestamp"]
    return verify_webhook_signature(
        secret, timestamp, got.body, got.headers["faceproof-signature"], now=float(timestamp)
    )


def _assert_no_personal_or_biometric_data(body: str) -> None:
    raw = body.encode()
    assert not any(magic in raw for magic in _MAGIC.values())
    assert not _FLOAT_RUN.search(body)
    assert longest_number_list(json.loads(body)) < 16
    # Not inside an id: a random hex session or event id may hold 13 digits in a row.
    number = r"(?<![0-9A-Za-z_])\d{6}-?\d{7}(?![0-9A-Za-z_])"
    assert not re.search(number, body), "a registration number"


# --- delivery -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_decided_session_gets_exactly_one_signed_delivery(tmp_path: Path, kind: str) -> None:
    with Receiver() as receiver, _env(tmp_path, kind) as env:
        hook = _register(env, receiver.url)
        assert hook["secret"].startswith("whsec_")
        assert hook["events"] == ["session.decided"]
        session = _decline(env)
        (got,) = receiver.wait_for(1)
        row = _wait_until(lambda: _only(env, status="delivered"), "the delivery to settle")
        assert row.attempts == 1
        assert row.last_status == 200
        # Nothing else is due: another pass (beside the worker's own thread) sends nothing.
        assert env.client.app.state.webhooks.run_once() == 0  # type: ignore[attr-defined]
        assert len(receiver.requests) == 1

        # The signature: over "<timestamp>.<body>", the timestamp being the app's clock.
        assert got.headers["content-type"] == "application/json"
        timestamp = got.headers["faceproof-timestamp"]
        assert timestamp == str(int(T0.timestamp()))
        assert _verifies(hook["secret"], got)
        signature = got.headers["faceproof-signature"]
        now = T0.timestamp()
        assert not verify_webhook_signature(
            hook["secret"], timestamp, got.body + b" ", signature, now=now
        )
        assert not verify_webhook_signature("whsec_other", timestamp, got.body, signature, now=now)
        assert not verify_webhook_signature(
            hook["secret"], timestamp, got.body, signature, now=now + 301
        )
        assert not verify_webhook_signature(
            hook["secret"], str(int(now) + 60), got.body, signature, now=now + 60
        )

        # The body: ids, the decision, its codes and the receipt; nothing else.
        body = json.loads(got.body)
        assert set(body) == {"id", "type", "created_at", "data"}
        assert body["id"] == got.headers["faceproof-event-id"] == row.event_id
        assert body["type"] == "session.decided"
        assert body["created_at"] == T0.isoformat()
        assert set(body["data"]) == {"session_id", "decision", "reasons", "receipt"}
        assert body["data"]["session_id"] == session["id"]
        assert body["data"]["decision"] == "alternative_required"
        assert body["data"]["reasons"] == ["consent_declined"]
        claims = verify_receipt(body["data"]["receipt"], env.signer.jwks())
        assert claims["sid"] == session["id"]
        assert got.body.decode() == row.body
        _assert_no_personal_or_biometric_data(row.body)

        # The secret is shown once: never listed, and stored only sealed.
        listed = env.client.get("/v1/webhooks", headers=env.auth("admin"))
        assert listed.json() == [{k: hook[k] for k in ("id", "url", "events", "created_at")}]
        with env.client.app.state.service.db.session() as db:  # type: ignore[attr-defined]
            stored = db.get_one(Webhook, hook["id"])
            columns = [str(getattr(stored, c.key)) for c in Webhook.__table__.columns]
            tenant_b = db.scalars(select(Tenant.id).where(Tenant.name == "tenant-b")).one()
        assert not any(hook["secret"] in value for value in columns)
        assert stored.secret_sealed is not None
        key = env.settings.webhook_secret()
        assert open_secret(key, stored.tenant_id, stored.id, stored.secret_sealed) == hook["secret"]
        assert open_secret(key, tenant_b, stored.id, stored.secret_sealed) is None
        if kind == "sqlite":
            database_file = (tmp_path / "faceproof.db").read_bytes()
            assert hook["secret"].encode() not in database_file


def test_the_event_and_the_decision_commit_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox row is written in the decision's transaction: when anything fails after it
    is queued, neither the decision nor the event is stored (and the session can still be
    decided, once, with its one event)."""
    queue = webhooks.enqueue_event

    def queue_then_fail(*args: Any, **kwargs: Any) -> int:
        assert queue(*args, **kwargs) == 1
        raise RuntimeError("the process dies after queueing")

    with Receiver() as receiver, _env(tmp_path) as env:
        _register(env, receiver.url)
        session = env.new_session()
        monkeypatch.setattr(webhooks, "enqueue_event", queue_then_fail)
        with pytest.raises(RuntimeError):
            _consent(env, env.capture_path(session), "decline")
        polled = env.client.get(f"/v1/sessions/{session['id']}", headers=env.auth("reader"))
        assert polled.json()["decision"] is None
        assert polled.json()["state"] == "awaiting_consent"
        assert _deliveries(env) == []
        monkeypatch.setattr(webhooks, "enqueue_event", queue)
        assert _consent(env, env.capture_path(session), "decline").status_code == 200
        (got,) = receiver.wait_for(1)
        assert json.loads(got.body)["data"]["session_id"] == session["id"]
        assert len(_deliveries(env)) == 1


def test_failed_tries_back_off_and_resend_the_same_event(tmp_path: Path) -> None:
    """500, 500, then 200: three tries of one event (same id, same body), each signed, each
    scheduled with a full-jitter exponential pause (30 s, then 60 s at most)."""
    settings = {"webhook_retry_base_seconds": 30, "webhook_retry_max_seconds": 600}
    with Receiver(answers=(500, 500)) as receiver, _env(tmp_path, **settings) as env:
        hook = _register(env, receiver.url)
        _decline(env)
        for tries, ceiling in ((1, 30), (2, 60)):
            receiver.wait_for(tries)
            row = _wait_until(
                lambda tries=tries: _only(env, status="pending", attempts=tries), "a retry"
            )
            now = env.clock()
            assert now <= row.next_attempt_at <= now + timedelta(seconds=ceiling)
            assert (row.last_status, row.last_error) == (500, "http_500")
            assert len(receiver.requests) == tries  # not due yet: the clock has not moved
            env.clock.advance(ceiling)
        requests = receiver.wait_for(3)
        row = _wait_until(lambda: _only(env, status="delivered"), "the third try")
        assert row.attempts == 3
        assert row.delivered_at == env.clock()
        assert len(requests) == 3
        assert {r.headers["faceproof-event-id"] for r in requests} == {row.event_id}
        assert {r.body for r in requests} == {row.body.encode()}
        assert [r.headers["faceproof-timestamp"] for r in requests] == [
            str(int((T0 + timedelta(seconds=s)).timestamp())) for s in (0, 30, 90)
        ]
        assert all(_verifies(hook["secret"], r) for r in requests)


def test_a_dead_receiver_ends_failed_and_never_blocks_the_api(tmp_path: Path) -> None:
    # A long timeout, so the thread is certainly still inside the first try while the API is
    # used; `release` then ends each try at once (the connection closed unanswered).
    settings = {
        "webhook_max_attempts": 3,
        "webhook_retry_base_seconds": 0,
        "webhook_timeout_seconds": 30,
    }
    with Receiver(default="hang") as receiver, _env(tmp_path, **settings) as env:
        _register(env, receiver.url)
        first = _decline(env)
        receiver.wait_for(1)
        # The delivery thread is stuck inside a try that gets no answer; the API goes on.
        second = _decline(env)
        polled = env.client.get(f"/v1/sessions/{second['id']}", headers=env.auth("reader"))
        assert polled.json()["decision"]["decision"] == "alternative_required"
        assert [r.status for r in _deliveries(env)] == ["delivering", "pending"]
        assert len(receiver.requests) == 1
        receiver.release.set()  # from now on each connection is closed unanswered

        def all_failed() -> list[WebhookDelivery] | None:
            rows = _deliveries(env)
            return rows if [r.status for r in rows] == ["failed", "failed"] else None

        rows = _wait_until(all_failed, "both deliveries to fail")
        assert [r.session_id for r in rows] == [first["id"], second["id"]]
        assert all(r.attempts == 3 and r.last_status is None for r in rows)
        assert {r.last_error for r in rows} == {"RemoteProtocolError"}
        assert env.client.app.state.webhooks.run_once() == 0  # type: ignore[attr-defined]
        assert len(receiver.requests) == 6


def test_a_line_activation_is_one_event_and_is_purged_with_its_session(tmp_path: Path) -> None:
    """`line.activated` after a pass: confirming the line twice queues one event; the body
    carries the line id and no registration number; retention purges the deliveries."""
    with Receiver() as receiver, _env(tmp_path) as env:
        hook = _register(env, receiver.url, ("line.activated", "session.decided"))
        assert hook["events"] == ["line.activated", "session.decided"]
        session = env.new_session()
        service = env.client.app.state.service  # type: ignore[attr-defined]
        with service.db.session() as db:  # a pass, as the face path would store it
            db.execute(update(Session).where(Session.id == session["id"]).values(state="completed"))
            tenant_id = db.scalars(select(Session.tenant_id).where(Session.id == session["id"]))
            db.add(
                Decision(
                    session_id=session["id"],
                    tenant_id=tenant_id.one(),
                    decision="pass",
                    reasons=["liveness_passed", "match_accepted"],
                    scores={},
                    model_versions=[],
                    subject_id=pseudonymise(_NUMBER, env.settings.pseudonym_secret()),
                    receipt=env.signer.sign({"sid": session["id"], "decision": "pass"}),
                    created_at=T0,
                )
            )
        activation = {"line_id": "line-0001", "number": _NUMBER}
        for _ in range(2):
            r = env.client.post(
                f"/v1/sessions/{session['id']}/activation", json=activation, headers=env.auth()
            )
            assert r.status_code == 200, r.text
        (got,) = receiver.wait_for(1)
        row = _wait_until(lambda: _only(env, status="delivered"), "the activation event")
        assert _verifies(hook["secret"], got)
        body = json.loads(got.body)
        assert body["type"] == "line.activated"
        assert body["data"]["line_id"] == "line-0001"
        assert body["data"]["decision"] == "pass"
        assert set(body["data"]) == {"session_id", "decision", "reasons", "receipt", "line_id"}
        for fragment in (_NUMBER, _NUMBER.replace("-", ""), "1234568"):
            assert fragment not in row.body
        _assert_no_personal_or_biometric_data(row.body)
        with service.db.session() as db:
            purged = purge_expired(
                db, now=T0 + timedelta(days=env.settings.retention_days + 1), retention_days=1
            )
        assert purged == 1
        assert _deliveries(env) == []


def test_the_outbox_tables_hold_no_images_or_float_arrays() -> None:
    """No column of the webhook tables could hold image bytes or an embedding."""
    json_columns = []
    for table in (Webhook.__table__, WebhookDelivery.__table__):
        for column in table.columns:
            assert not isinstance(column.type, LargeBinary | PickleType | Float), column
            if isinstance(column.type, JSON):
                json_columns.append(f"{table.name}.{column.key}")
            else:
                assert isinstance(column.type, String | Integer | Boolean | UTCDateTime), column
    assert json_columns == ["webhooks.events"]  # event names, checked against WebhookEvent


# --- registration -------------------------------------------------------------------------------


def test_registration_is_admin_only_and_per_tenant(tmp_path: Path) -> None:
    with _env(tmp_path) as env:
        service = env.client.app.state.service  # type: ignore[attr-defined]
        with service.db.session() as db:
            a = db.scalars(select(Tenant.id).where(Tenant.name == "tenant-a")).one()
            b = db.scalars(select(Tenant.id).where(Tenant.name == "tenant-b")).one()
            env.keys["admin-b"] = create_api_key(db, b, [Scope.ADMIN], now=T0)[1]
            env.keys["store-admin"] = create_api_key(
                db, a, [Scope.ADMIN], now=T0, store_id="gangnam-01"
            )[1]
        hook = _register(env, "http://127.0.0.1:9/hooks/a")
        path = f"/v1/webhooks/{hook['id']}"
        body = {"url": "http://127.0.0.1:9/hooks/b", "events": ["session.decided"]}
        for key in ("writer", "reader", "other", "store-admin"):
            headers = env.auth(key)
            assert_problem(
                env.client.post("/v1/webhooks", json=body, headers=headers), 403, "forbidden_scope"
            )
            assert_problem(env.client.get("/v1/webhooks", headers=headers), 403, "forbidden_scope")
            assert_problem(env.client.delete(path, headers=headers), 403, "forbidden_scope")
        # Another tenant's admin: the webhook is not there, exactly as a missing one.
        other = env.auth("admin-b")
        assert env.client.get("/v1/webhooks", headers=other).json() == []
        foreign = assert_problem(env.client.delete(path, headers=other), 404, "webhook_not_found")
        missing = env.client.delete("/v1/webhooks/whk_missing", headers=env.auth("admin"))
        assert assert_problem(missing, 404, "webhook_not_found") == {
            **foreign,
            "instance": foreign["instance"],
        }
        assert hook["id"] not in json.dumps(foreign)
        assert [
            h["id"] for h in env.client.get("/v1/webhooks", headers=env.auth("admin")).json()
        ] == [hook["id"]]
        # A decision of tenant b queues nothing for tenant a's webhook.
        other_session = env.client.post(
            "/v1/sessions",
            json={"store_id": "s1", "channel": "online", "purpose": "new_line"},
            headers=env.auth("other"),
        ).json()
        assert _consent(env, env.capture_path(other_session), "decline").status_code == 200
        assert _deliveries(env) == []
        # The owner deletes it; afterwards decisions queue nothing.
        r = env.client.delete(path, headers=env.auth("admin"))
        assert r.status_code == 204
        assert r.content == b""
        assert env.client.get("/v1/webhooks", headers=env.auth("admin")).json() == []
        assert_problem(env.client.delete(path, headers=env.auth("admin")), 404, "webhook_not_found")
        _decline(env)
        assert _deliveries(env) == []
        with service.db.session() as db:
            events = list(
                db.scalars(select(AuditEntry.event).where(AuditEntry.event.like("webhook.%")))
            )
        assert events == ["webhook.created", "webhook.deleted"]
        # At most MAX_WEBHOOKS_PER_TENANT per tenant.
        for n in range(MAX_WEBHOOKS_PER_TENANT):
            _register(env, f"http://127.0.0.1:9/hooks/{n}")
        r = env.client.post("/v1/webhooks", json=body, headers=env.auth("admin"))
        assert_problem(r, 409, "webhook_limit")


_BAD_URLS = [
    "http://carrier.example/hooks",  # development: loopback only
    "https://carrier.example/hooks",
    "ftp://127.0.0.1/hooks",
    "http://user:secret@127.0.0.1/hooks",
    "http://@127.0.0.1/hooks",
    "http://127.0.0.1:99999/hooks",
    "http://127.0.0.1:0/hooks",
    "http://127.0.0.1/hooks#fragment",
    "http://127.0.0.1/ho oks",
    "http://127.0.0.1/hooks\u00e9",
    "http://[::1/hooks",
    "not a url at all",
    "http:///hooks/only",
]


@pytest.mark.parametrize("url", _BAD_URLS)
def test_bad_urls_are_422(tmp_path: Path, url: str) -> None:
    with _env(tmp_path) as env:
        r = env.client.post(
            "/v1/webhooks",
            json={"url": url, "events": ["session.decided"]},
            headers=env.auth("admin"),
        )
        assert_problem(r, 422, "webhook_url_invalid")
        assert env.client.get("/v1/webhooks", headers=env.auth("admin")).json() == []


def test_malformed_registrations_are_422(tmp_path: Path) -> None:
    with _env(tmp_path) as env:
        good = {"url": "http://127.0.0.1:9/hooks", "events": ["session.decided"]}
        for body in (
            {**good, "url": "http://127.0.0.1/" + "a" * 500},  # longer than 500
            {**good, "url": "http://a"},  # shorter than 10
            {**good, "events": []},
            {**good, "events": ["session.created"]},
            {**good, "secret": "mine"},
            {"url": good["url"]},
        ):
            r = env.client.post("/v1/webhooks", json=body, headers=env.auth("admin"))
            assert_problem(r, 422, "malformed_request")
        assert env.client.get("/v1/webhooks", headers=env.auth("admin")).json() == []
        # Loopback in development: IPv4, IPv6 and localhost, http or https.
        for url in ("http://[::1]:8080/h", "https://localhost/h", "http://127.0.0.2/h"):
            assert _register(env, url)["url"] == url


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://carrier.example/hooks/faceproof", True),
        ("https://8.8.8.8/hooks", True),
        ("https://carrier.example:8443/hooks?tenant=1", True),
        ("http://carrier.example/hooks", False),
        ("https://localhost/hooks", False),
        ("https://api.localhost/hooks", False),
        ("https://127.0.0.1/hooks", False),
        ("https://[::1]/hooks", False),
        ("https://10.1.2.3/hooks", False),
        ("https://192.168.0.10/hooks", False),
        ("https://169.254.169.254/latest/meta-data", False),
        ("https://user@carrier.example/hooks", False),
        ("https://carrier_example/hooks", False),
    ],
)
def test_production_urls_are_https_to_public_hosts(url: str, allowed: bool) -> None:
    if allowed:
        assert check_webhook_url(url, production=True) == url
        return
    with pytest.raises(FaceproofError) as caught:
        check_webhook_url(url, production=True)
    assert caught.value.code is ReasonCode.WEBHOOK_URL_INVALID
    assert caught.value.http_status == 422


def test_signature_verification_rules() -> None:
    body = b'{"id":"evt_1"}'
    good = sign_webhook("whsec_a", "1780000000", body)
    assert good.startswith("v1=")
    assert len(good) == 3 + 64
    now = 1_780_000_000.0
    assert verify_webhook_signature("whsec_a", "1780000000", body, good, now=now)
    # Several values (a rotation): any one that matches will do.
    assert verify_webhook_signature(
        "whsec_a", "1780000000", body, f"v1={'0' * 64}, {good}", now=now
    )
    assert verify_webhook_signature("whsec_a", "1780000000", body, good, 10, now=now + 10)
    assert not verify_webhook_signature("whsec_a", "1780000000", body, good, 10, now=now + 11)
    assert not verify_webhook_signature("whsec_a", "1780000000", body, good, 10, now=now - 11)
    for timestamp in ("", "-1", "1780000000.0", "١٧٨٠٠٠٠٠٠٠", "9" * 13):
        assert not verify_webhook_signature("whsec_a", timestamp, body, good, now=now)
    for header in ("", good[3:], "v2=" + good[3:], good.upper(), "v1=é"):
        assert not verify_webhook_signature("whsec_a", "1780000000", body, header, now=now)


# --- the migration ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_migration_applies_and_matches_the_models(tmp_path: Path, kind: str) -> None:
    database = Database(database_url(kind, tmp_path))
    try:
        engine = database.engine
        db_upgrade(engine, "0003")
        with engine.begin() as conn:  # a webhook row from before 0004 (a table only then)
            at = {"at": datetime(2026, 5, 1)}  # naive UTC, as stored
            conn.execute(
                text("INSERT INTO tenants VALUES ('t', 'T', :at, :yes)"), {**at, "yes": True}
            )
            conn.execute(
                text("INSERT INTO webhooks VALUES ('w', 't', 'https://x.example/h', 'h', :at, :y)"),
                {**at, "y": True},
            )
        database.upgrade()
        inspector = inspect(engine)
        assert "webhook_deliveries" in inspector.get_table_names()
        assert {"events", "secret_sealed"} <= {c["name"] for c in inspector.get_columns("webhooks")}
        indexes = {i["name"] for i in inspector.get_indexes("webhook_deliveries")}
        assert "ix_webhook_deliveries_due" in indexes
        with database.session() as db:
            old = db.get_one(Webhook, "w")
            assert (old.events, old.secret_sealed) == ([], None)
            assert db.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert [d for d in diff if "webhook" in str(d)] == []
        db_downgrade(engine, "0003")
        inspector = inspect(engine)
        assert "webhook_deliveries" not in inspector.get_table_names()
        assert "events" not in {c["name"] for c in inspector.get_columns("webhooks")}
        database.upgrade()
        assert "webhook_deliveries" in inspect(engine).get_table_names()
    finally:
        database.close()


def test_the_webhook_key_setting() -> None:
    """An explicit key replaces the derived one; a short or non-hex key stops the service at
    start (the dispatcher reads it in create_app), never silently weakens the sealing."""
    derived = Settings().webhook_secret()
    explicit = Settings(webhook_key="ab" * 32).webhook_secret()
    assert len(derived) == len(explicit) == 32
    assert derived != explicit
    for bad in ("ab" * 31, "zz" * 32):
        with pytest.raises(SettingsError):
            Settings(webhook_key=bad).webhook_secret()
    sealed = seal_secret(explicit, "ten_a", "whk_1", "whsec_x")
    assert open_secret(explicit, "ten_a", "whk_1", sealed) == "whsec_x"
    assert open_secret(derived, "ten_a", "whk_1", sealed) is None
    assert open_secret(explicit, "ten_a", "whk_2", sealed) is None
    flipped = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
    assert open_secret(explicit, "ten_a", "whk_1", flipped) is None
    assert open_secret(explicit, "ten_a", "whk_1", "v2" + sealed[2:]) is None
