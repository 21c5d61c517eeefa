"""The line registry as a real HTTP service on loopback, used by two carriers."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from uvicorn.protocols.http.h11_impl import H11Protocol

from conftest import free_port
from faceproof.errors import ServiceError
from faceproof.policy import Activation, FailedCheck, PolicyContext, evaluate, load_rules
from faceproof.policy.nodelay import NoDelayH11Protocol
from faceproof.policy.registry_app import create_registry_app, registry_identity
from faceproof.policy.registry_client import HttpLineRegistry
from faceproof.policy.registry_server import open_registry
from faceproof.policy.registry_store import SqlLineRegistry
from faceproof.reasons import ReasonCode
from faceproof.resilience import CircuitBreaker, RetryPolicy

NUMBER = "900101-1234567"  # a made-up resident registration number (test vector)
HMAC_KEY = bytes.fromhex("8f" * 32)
POSTGRES_ENV = "FACEPROOF_TEST_POSTGRES_URL"
# The registry's PostgreSQL tests live in their own schema: other suites reset `public`.
POSTGRES_SCHEMA = "registry_test"


def fresh_registry_postgres_url() -> str:
    """The PostgreSQL test URL on an empty schema of its own, or a skip that says why."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} not set: .ci/run starts PostgreSQL and sets it")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {POSTGRES_SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {POSTGRES_SCHEMA}"))
    finally:
        engine.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{POSTGRES_SCHEMA}"


@dataclass
class LiveRegistry:
    url: str
    store: SqlLineRegistry
    db_path: Path | None

    def client(self, key: str) -> HttpLineRegistry:
        return HttpLineRegistry(self.url, key)


@contextmanager
def serving(app: FastAPI, http: type[asyncio.Protocol] = NoDelayH11Protocol) -> Iterator[str]:
    """An ASGI app served by uvicorn in a thread on a loopback port: its base URL. The socket is
    bound as uvicorn's multi-worker supervisor binds it (no TCP protocol number)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, http=http)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def start(registry: SqlLineRegistry, db_path: Path | None) -> Iterator[LiveRegistry]:
    try:
        with serving(create_registry_app(registry, HMAC_KEY)) as url:
            yield LiveRegistry(url, registry, db_path)
    finally:
        registry.db.engine.dispose()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveRegistry]:
    db_path = tmp_path / "registry.db"
    yield from start(open_registry(f"sqlite:///{db_path}", migrate=True), db_path)


def test_fourth_line_at_another_carrier_is_denied_through_the_registry(
    live: LiveRegistry,
) -> None:
    carrier_a = live.client(live.store.create_carrier("carrier-a"))
    mvno_b = live.client(live.store.create_carrier("mvno-b"))
    now = datetime.now(UTC)
    try:
        for i in range(3):
            carrier_a.record_activation(Activation(NUMBER, "carrier-a", "a-1", f"line-{i}", now))
        outcome = evaluate(PolicyContext(NUMBER, "mvno-b", "b-7"), mvno_b, load_rules(), now)
        assert outcome.decision == "deny"
        assert outcome.reasons == (ReasonCode.POLICY_LINE_LIMIT,)
        # Someone else is unaffected.
        other = evaluate(
            PolicyContext("850505-2345678", "mvno-b", "b-7"), mvno_b, load_rules(), now
        )
        assert other.allowed
    finally:
        carrier_a.close()
        mvno_b.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def live_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveRegistry]:
    if request.param == "postgresql":
        url, db_path = fresh_registry_postgres_url(), None
    else:
        db_path = tmp_path / "registry.db"
        url = f"sqlite:///{db_path}"
    yield from start(open_registry(url, migrate=True), db_path)


def test_concurrent_activations_from_two_carriers_lose_no_increment(
    live_backend: LiveRegistry,
) -> None:
    live = live_backend
    keys = {name: live.store.create_carrier(name) for name in ("carrier-a", "mvno-b")}
    now = datetime.now(UTC)

    def open_lines(name: str) -> None:
        client = live.client(keys[name])
        try:
            for i in range(15):
                client.record_activation(Activation(NUMBER, name, "s", f"{name}-{i}", now))
        finally:
            client.close()

    threads = [threading.Thread(target=open_lines, args=(n,)) for n in keys for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # Two threads per carrier send the same 15 line ids: each line counts once, none is lost.
    identity = registry_identity(NUMBER, HMAC_KEY)
    assert live.store.count_activations(identity, now - timedelta(days=1)) == 30


def test_the_registry_stores_no_raw_number(live: LiveRegistry) -> None:
    client = live.client(live.store.create_carrier("carrier-a"))
    try:
        client.record_activation(Activation(NUMBER, "carrier-a", "a-1", "l1", datetime.now(UTC)))
        client.record_failed_check(FailedCheck(NUMBER, "carrier-a", "a-1", datetime.now(UTC)))
    finally:
        client.close()
    assert live.db_path is not None
    raw = live.db_path.read_bytes()
    assert NUMBER.encode() not in raw
    assert NUMBER.replace("-", "").encode() not in raw
    assert registry_identity(NUMBER, HMAC_KEY).encode() in raw  # only the pseudonym


def test_only_an_authority_may_block_and_a_block_denies(live: LiveRegistry) -> None:
    carrier = live.client(live.store.create_carrier("carrier-a"))
    holder_channel = live.client(live.store.create_carrier("m-safer", authority=True))
    try:
        with pytest.raises(ServiceError) as info:
            carrier.set_blocked(NUMBER, True)
        assert info.value.code is ReasonCode.FORBIDDEN_SCOPE
        holder_channel.set_blocked(NUMBER, True)
        now = datetime.now(UTC)
        outcome = evaluate(PolicyContext(NUMBER, "carrier-a", "a-1"), carrier, load_rules(), now)
        assert outcome.decision == "deny"
        assert ReasonCode.POLICY_BLOCKED in outcome.reasons
        holder_channel.set_barred_until(NUMBER, now + timedelta(days=365))
        assert carrier.barred_until(NUMBER) is not None
    finally:
        carrier.close()
        holder_channel.close()


def test_failed_checks_across_carriers_flag_review(live: LiveRegistry) -> None:
    a = live.client(live.store.create_carrier("carrier-a"))
    b = live.client(live.store.create_carrier("mvno-b"))
    now = datetime.now(UTC)
    try:
        a.record_failed_check(FailedCheck(NUMBER, "carrier-a", "a-1", now))
        a.record_failed_check(FailedCheck(NUMBER, "carrier-a", "a-1", now))
        b.record_failed_check(FailedCheck(NUMBER, "mvno-b", "b-2", now))
        outcome = evaluate(PolicyContext(NUMBER, "mvno-b", "b-2"), b, load_rules(), now)
        assert outcome.decision == "review"
        assert outcome.reasons == (ReasonCode.POLICY_POSSIBLE_STOLEN_CARD,)
    finally:
        a.close()
        b.close()


def test_unknown_carrier_and_malformed_input_get_problem_json(live: LiveRegistry) -> None:
    with httpx.Client(base_url=live.url, timeout=5) as http:
        r = http.post(
            "/v1/identities/status",
            json={"number": NUMBER},
            headers={"Authorization": "Bearer fpr_not-a-key"},
        )
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "unauthorized"
        key = live.store.create_carrier("carrier-a")
        r = http.post(
            "/v1/activations",
            json={"number": "x; DROP TABLE", "line_id": "l", "store": "s"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 422
        assert r.json()["code"] == "malformed_request"
        assert "DROP TABLE" not in r.text  # input is not echoed back


def test_an_unreachable_registry_fails_fast_with_a_reason() -> None:
    client = HttpLineRegistry(f"http://127.0.0.1:{free_port()}", "fpr_x", timeout_s=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(ServiceError) as info:
            client.count_activations(NUMBER, datetime.now(UTC) - timedelta(days=30))
    finally:
        client.close()
    assert info.value.code is ReasonCode.REGISTRY_UNAVAILABLE
    assert time.monotonic() - started < 5


def test_the_registry_client_retries_idempotent_calls_and_opens_its_breaker() -> None:
    """A registry answering 503: status queries are retried, failed-check reports (which count)
    are not; after the breaker's threshold no request goes out at all."""
    sent: list[str] = []

    def down(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(503)

    breaker = CircuitBreaker("registry", failure_threshold=3, reset_timeout_s=60)
    client = HttpLineRegistry(
        "http://registry.test",
        "fpr_x",
        transport=httpx.MockTransport(down),
        retry=RetryPolicy(attempts=2, base_delay_s=0.001, max_delay_s=0.001),
        breaker=breaker,
    )
    since = datetime.now(UTC) - timedelta(days=30)
    try:
        with pytest.raises(ServiceError, match="HTTP 503"):
            client.count_activations(NUMBER, since)
        assert sent == ["/v1/identities/status"] * 2  # one retry
        with pytest.raises(ServiceError, match="HTTP 503"):
            client.record_failed_check(FailedCheck(NUMBER, "carrier-a", "s-1", since))
        assert sent[2:] == ["/v1/failed-checks"]  # no retry: a second report would count twice
        assert breaker.state.value == "open"  # three failures in a row
        with pytest.raises(ServiceError, match="circuit open") as info:
            client.count_activations(NUMBER, since)
        assert info.value.code is ReasonCode.REGISTRY_UNAVAILABLE
        assert len(sent) == 3  # nothing was sent while open
    finally:
        client.close()


@pytest.fixture
def live_postgres() -> Iterator[LiveRegistry]:
    yield from start(open_registry(fresh_registry_postgres_url(), migrate=True), None)


def test_line_limit_on_postgresql(live_postgres: LiveRegistry) -> None:
    a = live_postgres.client(live_postgres.store.create_carrier("carrier-a"))
    b = live_postgres.client(live_postgres.store.create_carrier("mvno-b"))
    now = datetime.now(UTC)
    try:
        for i in range(3):
            a.record_activation(Activation(NUMBER, "carrier-a", "a-1", f"line-{i}", now))
        a.record_activation(Activation(NUMBER, "carrier-a", "a-1", "line-0", now))  # duplicate
        assert b.count_activations(NUMBER, now - timedelta(days=30)) == 3
        outcome = evaluate(PolicyContext(NUMBER, "mvno-b", "b-1"), b, load_rules(), now)
        assert outcome.decision == "deny"
    finally:
        a.close()
        b.close()


def test_the_registry_protocol_sets_tcp_nodelay(monkeypatch: pytest.MonkeyPatch) -> None:
    """With several workers uvicorn leaves TCP_NODELAY off, and each response then waits for
    the client's delayed ACK (~40 ms on Linux; benchmarks/registry_bench.py measures it). The
    registry's protocol turns it on for every accepted connection."""
    monkeypatch.setattr(H11Protocol, "connection_made", lambda self, transport: None)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        with client, accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
            transport = SimpleNamespace(get_extra_info=lambda name: accepted)
            protocol = object.__new__(NoDelayH11Protocol)
            protocol.connection_made(transport)  # type: ignore[arg-type]
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_registry_serve_with_two_worker_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    registry = open_registry(url, migrate=True)
    key = registry.create_carrier("carrier-a")
    registry.record_activation(
        Activation(registry_identity(NUMBER, HMAC_KEY), "carrier-a", "s", "l1", datetime.now(UTC))
    )
    registry.db.close()
    key_file = tmp_path / "hmac.key"
    key_file.write_text(HMAC_KEY.hex())
    port = free_port()
    command = [sys.executable, "-m", "faceproof.cli.main", "registry", "serve", "--port"]
    storage = ["--database-url", url, "--hmac-key-file", str(key_file)]
    server = subprocess.Popen([*command, str(port), "--workers", "2", *storage])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # three processes import the app
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the registry did not start"
            time.sleep(0.2)
        client = HttpLineRegistry(base, key)
        try:
            assert client.count_activations(NUMBER, datetime.now(UTC) - timedelta(days=1)) == 1
        finally:
            client.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
