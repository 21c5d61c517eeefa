"""The line registry as a real HTTP service on loopback, used by two carriers."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from faceproof.errors import ServiceError
from faceproof.policy import Activation, FailedCheck, PolicyContext, evaluate, load_rules
from faceproof.policy.registry_app import create_registry_app, registry_identity
from faceproof.policy.registry_client import HttpLineRegistry
from faceproof.policy.registry_store import SqlLineRegistry
from faceproof.reasons import ReasonCode
from faceproof.storage.db import Database

NUMBER = "900101-1234567"  # a made-up resident registration number (test vector)
HMAC_KEY = bytes.fromhex("8f" * 32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class LiveRegistry:
    url: str
    store: SqlLineRegistry
    db_path: Path | None

    def client(self, key: str) -> HttpLineRegistry:
        return HttpLineRegistry(self.url, key)


def start(registry: SqlLineRegistry, db_path: Path | None) -> Iterator[LiveRegistry]:
    port = free_port()
    app = create_registry_app(registry, HMAC_KEY)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "registry did not start"
        time.sleep(0.05)
    try:
        yield LiveRegistry(f"http://127.0.0.1:{port}", registry, db_path)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        registry.db.engine.dispose()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveRegistry]:
    db_path = tmp_path / "registry.db"
    yield from start(SqlLineRegistry(Database(f"sqlite:///{db_path}")), db_path)


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


def test_concurrent_activations_from_two_carriers_lose_no_increment(live: LiveRegistry) -> None:
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


@pytest.fixture
def live_postgres() -> Iterator[LiveRegistry]:
    url = os.environ.get("FACEPROOF_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("FACEPROOF_TEST_POSTGRES_URL not set: .ci/run starts PostgreSQL and sets it")
    registry = SqlLineRegistry(Database(url))
    from faceproof.policy.registry_store import RegistryBase

    RegistryBase.metadata.drop_all(registry.db.engine)
    RegistryBase.metadata.create_all(registry.db.engine)
    yield from start(registry, None)


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
