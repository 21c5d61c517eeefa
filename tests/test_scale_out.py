"""Scale-out: the shared state in Redis (`api/shared_state.py`), and two real workers.

One real `redis-server` for this module, on a free loopback port, started with no persistence
(`--save '' --appendonly no`, its working directory checked empty at the end). The unit tests
use it directly: a held card is sealed to its capture token (no template bytes, no float runs,
no number in the Redis value; another token, another session or one flipped bit cannot open
it), used challenges and token buckets behave as in memory. The two-worker test starts two
`faceproof serve` processes against one PostgreSQL schema made for it (so other PostgreSQL
runs on the same database are not disturbed), one Redis, one data dir and one receipt key, and
moves one session between them; the challenge RNG is seeded through the development-only
`FACEPROOF_CHALLENGE_SEED`, so the first challenge a worker issues asks for the actions the
generated head performs (conftest CHALLENGE_SEED).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError

from conftest import CHALLENGE_ACTIONS, CHALLENGE_SEED, Card, Images, free_port, make_card
from faceproof.api.problems import ApiError
from faceproof.api.ratelimit import MemoryBuckets, RateLimiter
from faceproof.api.shared_state import MemoryState, RedisState, card_key
from faceproof.api.templates import HeldCard
from faceproof.comparison import FaceComparer
from faceproof.errors import ServiceError
from faceproof.policy import PolicyOutcome
from faceproof.privacy.receipts import load_or_create_signing_key, verify_receipt
from faceproof.reasons import ReasonCode
from faceproof.settings import Environment, Settings
from faceproof.verification import DocumentEvidence, DocumentStatus
from serve_support import postgres_schema
from test_api import _make_env, assert_problem
from test_api_serve import _cli, _start, _stop
from test_storage import POSTGRES_ENV, database_url

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
NUMBER = "900101-1234567"  # a made-up registration number


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(REDIS_SERVER).is_file():
        pytest.skip(f"redis-server not found ({REDIS_SERVER}); Debian: apt-get install redis")
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [REDIS_SERVER, *args, "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                pass
            assert proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not come up"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=20)
    assert list(workdir.iterdir()) == []  # no dump, no append-only file: nothing on disk


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def state(redis_url: str) -> Iterator[RedisState]:
    shared = RedisState.from_url(redis_url, _now, prefix=f"t-{uuid.uuid4().hex[:8]}:")
    yield shared
    shared.close()


def _held_card(comparer: FaceComparer, images: Images) -> HeldCard:
    template = comparer.extend(comparer.template(images.jpeg))  # every recogniser
    evidence = DocumentEvidence(
        DocumentStatus.VERIFIED,
        (ReasonCode.ISSUER_CONFIRMED,),
        "kr_resident_card",
        (
            ("issuer", True, ReasonCode.ISSUER_CONFIRMED),
            ("expiry", True, ReasonCode.DOCUMENT_EXPIRED),
        ),
        subject="5ub" * 21,
        policy=PolicyOutcome("allow", (), "test-1", {"new_lines_in_window": 1}),
    )
    return HeldCard(template, evidence, NUMBER)


# --- the shared state, unit by unit -------------------------------------------------------------


def test_a_held_card_in_redis_is_sealed_to_its_capture_token(
    state: RedisState, comparer: FaceComparer, images: Images
) -> None:
    card = _held_card(comparer, images)
    assert len(card.template.embeddings) >= 2
    token, other = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    state.cards.put("ses_1", token, card, _now() + timedelta(seconds=60))
    key = f"{state.prefix}card:ses_1"
    raw = state.client.get(key)
    assert isinstance(raw, bytes)
    assert 0 < state.client.pttl(key) <= 60_000  # the token's remaining life

    # Nothing readable: no slice of any embedding's bytes, no text floats, no number.
    for vector in card.template.embeddings.values():
        data = np.asarray(vector, dtype="<f4").tobytes()
        for at in range(0, len(data) - 16, 4):
            assert data[at : at + 16] not in raw
        assert f"{float(vector[0]):.6f}".encode() not in raw
    assert re.search(rb"(?:-?\d+\.\d{3,}[,\s\]]*){4,}", raw) is None
    for plain in (NUMBER, NUMBER.replace("-", ""), "5ub" * 21, "kr_resident_card", "issuer"):
        assert plain.encode() not in raw

    # The capture token opens it; another token, another session, a flipped bit do not.
    held = state.cards.get("ses_1", token)
    assert held is not None
    assert held.document == card.document
    assert held.registry_identity == NUMBER
    assert held.template.observation == card.template.observation
    assert sorted(held.template.embeddings) == sorted(card.template.embeddings)
    for model, vector in card.template.embeddings.items():
        assert np.array_equal(held.template.embeddings[model], vector)
    selfie = comparer.template(images.example_b)
    assert (
        comparer.compare_templates(held.template, selfie).score
        == comparer.compare_templates(card.template, selfie).score
    )
    assert state.cards.get("ses_1", other) is None
    salt, nonce = raw[1:17], raw[17:29]
    with pytest.raises(InvalidTag):
        AESGCM(card_key(other, "ses_1", salt)).decrypt(nonce, raw[29:], b"ses_1")
    state.client.set(f"{state.prefix}card:ses_2", raw)  # copied to another session
    assert state.cards.get("ses_2", token) is None
    state.client.set(key, raw[:-1] + bytes([raw[-1] ^ 1]))
    assert state.cards.get("ses_1", token) is None

    state.cards.put("ses_3", token, card, _now() + timedelta(seconds=60))
    state.cards.touch("ses_3", _now() + timedelta(seconds=300))  # the token was extended
    assert 60_000 < state.client.pttl(f"{state.prefix}card:ses_3") <= 300_000
    assert len(state.cards) == 3
    state.cards.drop("ses_3")
    assert state.client.get(f"{state.prefix}card:ses_3") is None
    state.cards.put("ses_4", token, card, _now() - timedelta(seconds=1))  # already expired
    assert state.client.get(f"{state.prefix}card:ses_4") is None


def test_a_challenge_is_used_once_across_concurrent_workers(state: RedisState) -> None:
    until = _now() + timedelta(seconds=120)
    winners: list[bool] = []
    barrier = threading.Barrier(8)

    def race() -> None:
        barrier.wait()
        winners.append(state.consume_once("challenge:ses_1:nonce", until))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(winners) == [False] * 7 + [True]
    assert state.was_used("challenge:ses_1:nonce")
    assert not state.was_used("challenge:ses_2:nonce")  # a look claims nothing:
    assert state.consume_once("challenge:ses_2:nonce", until)
    keys = [k.decode() for k in state.client.scan_iter(match=f"{state.prefix}used:*")]
    assert len(keys) == 2
    assert all("nonce" not in k and "ses_" not in k for k in keys)  # hashed
    assert 120_000 < state.client.pttl(keys[0]) <= 122_000  # until expiry, a second to spare
    memory = MemoryState(_now)
    assert not memory.was_used("k")
    assert memory.consume_once("k", until)
    assert memory.was_used("k")
    assert not memory.consume_once("k", until)


def test_redis_token_buckets_do_the_same_arithmetic_as_memory(state: RedisState) -> None:
    memory = MemoryBuckets()
    t0 = 1_780_000_000.0
    for dt in (0, 0.1, 0.2, 0.3, 0.4, 2.0, 4.9, 5.0, 5.1, 30.0, 30.01, 30.02, 30.03, 30.04):
        expected = memory.take("tenant:a", 3.0, 0.2, t0 + dt)
        assert state.buckets.take("tenant:a", 3.0, 0.2, t0 + dt) == pytest.approx(expected)
    assert state.buckets.take("tenant:b", 3.0, 0.2, t0) == 0.0  # its own bucket

    clock = [datetime(2026, 5, 1, tzinfo=UTC)]
    limiter = RateLimiter(2, lambda: clock[0], state.buckets, scope="client")
    limiter.hit("10.0.0.1")
    limiter.hit("10.0.0.1")
    with pytest.raises(ApiError) as refused:
        limiter.hit("10.0.0.1")
    assert refused.value.code is ReasonCode.RATE_LIMITED
    assert refused.value.headers == {"Retry-After": "30"}
    keys = [k.decode() for k in state.client.scan_iter(match=f"{state.prefix}rl:*")]
    assert keys
    assert all("10.0.0.1" not in k for k in keys)  # no client address in the clear


def test_redis_down_is_a_503_problem_not_a_hang() -> None:
    port = free_port()  # nothing listens there
    shared = RedisState.from_url(f"redis://127.0.0.1:{port}/0", _now)
    start = time.monotonic()
    with pytest.raises(ServiceError) as down:
        shared.consume_once("k", _now() + timedelta(seconds=5))
    assert down.value.code is ReasonCode.SHARED_STATE_UNAVAILABLE
    assert down.value.http_status == 503
    assert time.monotonic() - start < 5.0
    shared.close()


def test_the_challenge_seed_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="FACEPROOF_CHALLENGE_SEED is for development"):
        Settings(environment=Environment.PRODUCTION, challenge_seed=CHALLENGE_SEED)


# --- two workers, one session -------------------------------------------------------------------


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A new, empty schema in the PostgreSQL test database, dropped afterwards."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} not set: the two-worker test runs on PostgreSQL")
    with postgres_schema(url, "scale_out") as schema_url:
        yield schema_url


def test_one_session_moves_between_two_workers(
    tmp_path: Path,
    redis_url: str,
    postgres_schema_url: str,
    head_turn_mp4: bytes,
) -> None:
    # The workers run on the real clock: a specimen card valid today in Korea.
    card = make_card(today=(datetime.now(UTC) + timedelta(hours=9)).date())
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEPROOF_")}
    key_path = tmp_path / "receipt-ed25519.pem"
    load_or_create_signing_key(key_path, create=True)  # one key for both, made before either
    env.update(
        {
            "ORT_DISABLE_TELEMETRY": "1",
            "FACEPROOF_DATA_DIR": str(tmp_path / "data"),
            "FACEPROOF_DATABASE_URL": postgres_schema_url,
            "FACEPROOF_RECEIPT_KEY_PATH": str(key_path),
            "FACEPROOF_REDIS_URL": redis_url,
            "FACEPROOF_REDIS_PREFIX": "two-workers:",
            "FACEPROOF_CHALLENGE_SEED": str(CHALLENGE_SEED),
            "FACEPROOF_RUN_MIGRATIONS_ON_START": "false",
            "FACEPROOF_RATE_LIMIT_TENANT_PER_MINUTE": "10",
        }
    )
    _cli(env, tmp_path, "db", "upgrade")
    keys = {}
    for name in ("carrier", "burst"):
        tenant = json.loads(_cli(env, tmp_path, "tenants", "create", name, "--json"))
        made = _cli(env, tmp_path, "keys", "create", "--tenant", tenant["id"], "--json")
        keys[name] = json.loads(made)["key"]
    ports = (free_port(), free_port())
    workers = [_start(env, tmp_path, port) for port in ports]
    logs: list[str] = []
    store = redis.Redis.from_url(redis_url)
    try:
        a, b = (f"http://127.0.0.1:{port}" for port in ports)
        auth = {"Authorization": f"Bearer {keys['carrier']}"}
        body = {"store_id": "s1", "channel": "in_store", "purpose": "new_line"}
        photo = {"image": ("card.jpg", card.jpeg, "image/jpeg")}
        with httpx.Client(timeout=120.0) as http:
            # 1. Consent on A, the card on B, the challenge on A, the clip on B: decided.
            created = http.post(f"{a}/v1/sessions", headers=auth, json=body)
            assert created.status_code == 201, created.text
            sid, token = created.json()["id"], created.json()["capture_url"].rsplit("/", 1)[1]
            cap = "/v1/capture/" + token
            assert http.post(a + cap + "/consent", json={"choice": "accept"}).status_code == 200
            doc = http.post(b + cap + "/document", files=photo)
            assert doc.status_code == 200, doc.text
            assert doc.json()["outcome"] == "document_accepted"
            held = store.get(f"two-workers:card:{sid}")  # the card, sealed, in Redis
            assert held is not None
            assert card.fields["number"].encode() not in held
            challenge = http.post(a + cap + "/challenge")  # A never saw the card
            assert challenge.status_code == 200, challenge.text
            assert tuple(x["action"] for x in challenge.json()["actions"]) == CHALLENGE_ACTIONS
            spec = challenge.json()["challenge"]
            step = http.post(
                b + cap + "/clip",
                files={"clip": ("clip.mp4", head_turn_mp4, "video/mp4")},
                data={"challenge": spec},
            )
            assert step.status_code == 200, step.text
            assert step.json()["outcome"] == "pass", step.json()
            assert store.get(f"two-workers:card:{sid}") is None  # dropped at the decision
            polled = http.get(f"{a}/v1/sessions/{sid}", headers=auth).json()
            assert polled["decision"]["decision"] == "pass"
            jwks = http.get(f"{b}/.well-known/jwks.json").json()
            claims = verify_receipt(polled["decision"]["receipt"], jwks)
            assert claims["sid"] == sid

            # 2. A challenge used on A is a replay on B (and costs no attempt there).
            created = http.post(f"{b}/v1/sessions", headers=auth, json=body)
            token2 = created.json()["capture_url"].rsplit("/", 1)[1]
            cap2 = "/v1/capture/" + token2
            assert http.post(b + cap2 + "/consent", json={"choice": "accept"}).status_code == 200
            doc = http.post(a + cap2 + "/document", files=photo)
            assert doc.status_code == 200, doc.text
            spec2 = http.post(b + cap2 + "/challenge").json()["challenge"]
            broken = head_turn_mp4[:2000]  # an unusable clip: an attempt, the challenge used
            used = http.post(
                a + cap2 + "/clip",
                files={"clip": ("clip.mp4", broken, "video/mp4")},
                data={"challenge": spec2},
            )
            assert used.status_code == 200, used.text
            assert used.json()["outcome"] == "retry"
            assert used.json()["attempts_used"] == 1
            replay = http.post(
                b + cap2 + "/clip",
                files={"clip": ("clip.mp4", head_turn_mp4, "video/mp4")},
                data={"challenge": spec2},
            )
            assert_problem(replay, 409, "challenge_unknown")
            state = http.get(b + cap2 + "/state").json()
            assert state["attempts_used"] == 1

            # 3. One rate limit across both workers: 10 calls a minute for this tenant.
            burst = {"Authorization": f"Bearer {keys['burst']}"}
            start = time.monotonic()
            statuses = [
                http.get(f"{(a, b)[i % 2]}/v1/whoami", headers=burst).status_code for i in range(16)
            ]
            refill = int((time.monotonic() - start) * 10 / 60) + 1
            ok = statuses.count(200)
            assert statuses[:10] == [200] * 10, statuses
            assert ok <= 10 + refill, statuses  # per-worker budgets would allow all 16
            assert statuses.count(429) == 16 - ok
    finally:
        store.close()
        logs = [_stop(w) for w in workers]
    for log in logs:
        assert token not in log
        assert "Traceback" not in log


# --- one worker: the held card follows the capture token's extension -------------------------


def test_extending_the_token_keeps_the_held_card(
    tmp_path: Path, comparer: FaceComparer, card: Card
) -> None:
    gen = _make_env(tmp_path, database_url("sqlite", tmp_path), comparer)
    env = next(gen)
    try:
        path = env.capture_path(env.new_session())
        assert env.client.post(f"{path}/consent", json={"choice": "accept"}).status_code == 200
        assert env.upload(f"{path}/document", card.jpeg).status_code == 200
        env.clock.advance(500)  # the token (600 s) is about to run out: the page extends it
        assert env.client.post(f"{path}/extend").status_code == 200
        env.clock.advance(200)  # past the first expiry, inside the extended one
        assert env.client.post(f"{path}/challenge").status_code == 200, "card no longer held"
    finally:
        for _ in gen:
            pass
