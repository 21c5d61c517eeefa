"""Degraded dependencies: bounded retries with backoff, the circuit breaker, the issuer client.

The breaker and retries run on a fake clock with no sleeping. The issuer client talks to the real
issuer simulator on loopback (conftest `issuer_sim`, or one started here on a fixed port so it
can come back), through a transport that counts the requests actually sent; a silent socket
stands in for an issuer that accepts connections and never answers. The service test stops the
simulator in the middle of a flow.
"""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

import httpx
import pytest

from conftest import CHALLENGE_SEED, Card, IssuerFactory, free_port
from faceproof.comparison import FaceComparer
from faceproof.documents import DocumentType
from faceproof.documents.issuer import (
    HttpIssuerCheck,
    IssuerQuery,
    IssuerRegistry,
    make_server,
    serve_in_thread,
)
from faceproof.liveness import LivenessEngine
from faceproof.reasons import ReasonCode
from faceproof.resilience import (
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    RetryPolicy,
    call,
)
from test_api import _consent, _make_env
from test_storage import database_url


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Down(Exception):
    pass


class Flaky:
    """Fails `failures` times, then answers "ok"; counts its calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise Down
        return "ok"


# --- the breaker --------------------------------------------------------------------------------


def test_breaker_opens_after_n_consecutive_failures_and_half_opens_after_the_cool_down() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("dep", failure_threshold=3, reset_timeout_s=10.0, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    breaker.record_success()  # a success in between: the count starts again
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the one probe
    assert not breaker.allow()  # no second call while the probe is out
    breaker.record_failure()  # the probe failed: open for another cool-down
    assert breaker.state is BreakerState.OPEN
    clock.now += 5.0
    assert not breaker.allow()
    clock.now += 5.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    assert breaker.allow()


def test_breaker_and_policy_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker("x", failure_threshold=0)
    with pytest.raises(ValueError, match="reset_timeout_s"):
        CircuitBreaker("x", reset_timeout_s=0)
    with pytest.raises(ValueError, match="at least one attempt"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="multiplier"):
        RetryPolicy(multiplier=0.5)


# --- retries ------------------------------------------------------------------------------------


def test_retries_back_off_exponentially_with_full_jitter() -> None:
    sleeps: list[float] = []
    flaky = Flaky(failures=3)
    policy = RetryPolicy(attempts=4, base_delay_s=0.1, max_delay_s=0.3, multiplier=2.0)
    out = call(flaky, retry_on=(Down,), policy=policy, sleep=sleeps.append, rng=random.Random(5))
    assert out == "ok"
    assert flaky.calls == 4
    assert len(sleeps) == 3
    for pause, ceiling in zip(sleeps, (0.1, 0.2, 0.3), strict=True):  # capped at max_delay_s
        assert 0.0 <= pause <= ceiling
    # Jitter: the pauses are drawn, not fixed (two seeds give different schedules).
    other: list[float] = []
    call(Flaky(3), retry_on=(Down,), policy=policy, sleep=other.append, rng=random.Random(6))
    assert other != sleeps


def test_retries_are_bounded_and_other_errors_are_not_retried() -> None:
    flaky = Flaky(failures=10)
    with pytest.raises(Down):
        call(flaky, retry_on=(Down,), policy=RetryPolicy(attempts=3), sleep=lambda _: None)
    assert flaky.calls == 3

    def broken() -> str:
        raise KeyError("answer")

    breaker = CircuitBreaker("dep", failure_threshold=1)
    with pytest.raises(KeyError):
        call(broken, retry_on=(Down,), breaker=breaker, sleep=lambda _: None)
    assert breaker.state is BreakerState.CLOSED  # it answered: not a failure of the dependency


def test_the_time_budget_stops_retrying() -> None:
    clock = FakeClock()

    def slow_failure() -> str:
        clock.now += 1.0  # each try times out after 1 s
        raise Down

    tries: list[float] = []
    policy = RetryPolicy(attempts=10, base_delay_s=0.0, budget_s=2.5)
    with pytest.raises(Down):
        call(
            lambda: (tries.append(clock.now), slow_failure())[1],
            retry_on=(Down,),
            policy=policy,
            clock=clock,
            sleep=lambda _: None,
        )
    assert len(tries) == 3  # 0 s, 1 s, 2 s; a fourth would start past the budget


def test_an_open_breaker_fails_fast_without_calling() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("dep", failure_threshold=2, reset_timeout_s=30.0, clock=clock)
    flaky = Flaky(failures=100)
    policy = RetryPolicy(attempts=5)
    with pytest.raises(CircuitOpenError):  # two failures open it, the third try is refused
        call(flaky, retry_on=(Down,), policy=policy, breaker=breaker, sleep=lambda _: None)
    assert flaky.calls == 2
    with pytest.raises(CircuitOpenError):
        call(flaky, retry_on=(Down,), policy=policy, breaker=breaker, sleep=lambda _: None)
    assert flaky.calls == 2  # no call at all while open
    clock.now += 30.0
    healthy = Flaky(failures=0)
    assert call(healthy, retry_on=(Down,), breaker=breaker) == "ok"  # the half-open probe
    assert breaker.state is BreakerState.CLOSED


# --- the issuer client --------------------------------------------------------------------------


class CountingTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return super().handle_request(request)


def _query(card: Card) -> IssuerQuery:
    return IssuerQuery(
        type=DocumentType(card.type),
        name=card.fields["name_ko"],
        number=card.fields["number"],
        issue_date=card.fields["issue_date"],
    )


def test_issuer_down_then_breaker_open_then_half_open_probe_closes_it(card: Card) -> None:
    registry = IssuerRegistry.from_json({"cards": [card.registry_entry("valid")]})
    port = free_port()
    server = make_server(registry, port=port)
    serve_in_thread(server)
    clock = FakeClock()
    transport = CountingTransport()
    sleeps: list[float] = []
    issuer = HttpIssuerCheck(
        f"http://127.0.0.1:{port}",
        timeout=1.0,
        retry=RetryPolicy(attempts=2, base_delay_s=0.05),
        breaker=CircuitBreaker("issuer", failure_threshold=4, reset_timeout_s=30.0, clock=clock),
        transport=transport,
        sleep=sleeps.append,
    )
    with issuer:
        assert issuer.check(_query(card)).code is ReasonCode.ISSUER_CONFIRMED
        assert transport.sent == 1
        server.shutdown()
        server.server_close()  # the issuer goes away

        start = time.monotonic()
        check = issuer.check(_query(card))
        assert check.code is ReasonCode.ISSUER_UNAVAILABLE
        assert not check.ok
        assert transport.sent == 3  # one retry after the failure
        assert len(sleeps) == 1
        assert 0.0 <= sleeps[0] <= 0.05
        assert issuer.breaker.state is BreakerState.CLOSED  # 2 of 4 failures
        assert issuer.check(_query(card)).code is ReasonCode.ISSUER_UNAVAILABLE
        assert transport.sent == 5
        assert issuer.breaker.state is BreakerState.OPEN  # 4 consecutive failures

        for _ in range(20):  # open: no request leaves, the answer is immediate
            fast = issuer.check(_query(card))
            assert fast.code is ReasonCode.ISSUER_UNAVAILABLE
            assert "circuit open" in fast.detail
        assert transport.sent == 5
        assert time.monotonic() - start < 2.0

        server = make_server(registry, port=port)  # the issuer is back on the same address
        serve_in_thread(server)
        try:
            assert issuer.check(_query(card)).code is ReasonCode.ISSUER_UNAVAILABLE
            assert transport.sent == 5  # still cooling down: not even asked
            clock.now += 30.0
            assert issuer.breaker.state is BreakerState.HALF_OPEN
            assert issuer.check(_query(card)).code is ReasonCode.ISSUER_CONFIRMED  # the probe
            assert transport.sent == 6
            assert issuer.breaker.state is BreakerState.CLOSED
            assert issuer.check(_query(card)).code is ReasonCode.ISSUER_CONFIRMED
        finally:
            server.shutdown()
            server.server_close()


def test_an_issuer_that_never_answers_costs_a_bounded_time(card: Card) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with HttpIssuerCheck(url, timeout=0.2) as issuer:  # default: 3 tries, 0.4 s budget
            start = time.monotonic()
            check = issuer.check(_query(card))
            elapsed = time.monotonic() - start
    assert check.code is ReasonCode.ISSUER_UNAVAILABLE
    assert "ReadTimeout" in check.detail
    assert 0.2 <= elapsed < 1.5


def test_a_broken_answer_is_unavailable_without_retry(
    issuer_sim: IssuerFactory, card: Card
) -> None:
    sim = issuer_sim([card.registry_entry("valid")])
    transport = CountingTransport()
    with HttpIssuerCheck(sim.url + "/nowhere", transport=transport) as issuer:
        check = issuer.check(_query(card))  # 404: the service is up but this is not it
    assert check.code is ReasonCode.ISSUER_UNAVAILABLE
    assert transport.sent == 1
    assert issuer.breaker.state is BreakerState.CLOSED


# --- in the service: the simulator stopped in the middle of a flow ------------------------------


def test_issuer_stopped_mid_flow_gives_review_quickly_and_opens_the_breaker(
    tmp_path: Path,
    comparer: FaceComparer,
    liveness_engine: LivenessEngine,
    issuer_sim: IssuerFactory,
    card: Card,
    head_turn_mp4: bytes,
) -> None:
    sim = issuer_sim([card.registry_entry("valid")])
    gen = _make_env(
        tmp_path,
        database_url("sqlite", tmp_path),
        comparer,
        liveness=liveness_engine,
        issuer_url=sim.url,
        issuer_retries=1,
        breaker_failures=2,
    )
    env = next(gen)
    try:
        env.client.app.state.service.challenges.rng = random.Random(CHALLENGE_SEED)  # type: ignore[attr-defined]

        def gauge() -> str:
            metrics = env.client.get("/metrics").text
            line = next(x for x in metrics.splitlines() if x.startswith("faceproof_circuit_state{"))
            return line.split()[-1]

        assert gauge() == "0.0"
        path = env.capture_path(env.new_session())
        assert _consent(env, path).status_code == 200
        sim.stop()  # the issuer goes away between consent and the card
        start = time.monotonic()
        doc = env.upload(f"{path}/document", card.jpeg)
        assert time.monotonic() - start < 10.0  # card reading included; never the hang
        assert doc.status_code == 200, doc.text
        assert doc.json()["document"]["status"] == "unverified"
        assert "issuer_unavailable" in doc.json()["reasons"]
        assert gauge() == "2.0"  # two tries, two failures: open

        spec = env.client.post(f"{path}/challenge").json()["challenge"]
        step = env.client.post(
            f"{path}/clip",
            files={"clip": ("clip.mp4", head_turn_mp4, "video/mp4")},
            data={"challenge": spec},
        ).json()
        assert step["outcome"] == "review", step
        reasons = step["decision"]["reasons"]
        assert {"liveness_passed", "match_accepted", "issuer_unavailable"} <= set(reasons)
        assert reasons[-1] == "document_not_verified"
    finally:
        for _ in gen:
            pass
