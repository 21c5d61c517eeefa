"""Calling a dependency that can go away: bounded retries with backoff, and a circuit breaker.

Used by the clients of remote services (the issuer check, the line registry) so that a session
never hangs when one of them is down:

- `RetryPolicy`: at most `attempts` tries; between two tries a pause drawn with "full jitter"
  (uniform in ``[0, min(max_delay_s, base_delay_s * multiplier**n)]``), and never more retries
  once `budget_s` (wall time of the whole call, pauses included, per the clock) is spent.
- `CircuitBreaker`: closed (calls go through) -> open after `failure_threshold` consecutive
  failures (calls fail at once, no network call) -> half-open once `reset_timeout_s` has passed
  (one probe call goes through; its success closes the breaker, its failure opens it again for
  another cool-down).
- `call(fn, ...)`: runs `fn` under both; a failure is an exception of one of the `retry_on`
  types; any other exception means the dependency answered (the breaker counts it as a
  success) and propagates untouched.

Clock, sleep and randomness are injected so tests are deterministic (a fake clock, no sleeping).
Thread-safe: one breaker is shared by all the requests of a worker. State is per process; each
worker finds out on its own that a dependency is down (after `failure_threshold` failures).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "RetryPolicy",
    "call",
]

T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"

    @property
    def level(self) -> int:
        """For a gauge: 0 closed, 1 half-open, 2 open."""
        return {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}[self]


class CircuitOpenError(Exception):
    """The breaker is open (or its half-open probe is already out): no call was made."""

    def __init__(self, name: str) -> None:
        super().__init__(f"circuit {name!r} is open")
        self.name = name


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3  # tries in all, the first included
    base_delay_s: float = 0.1
    max_delay_s: float = 1.0
    multiplier: float = 2.0
    budget_s: float | None = None  # no retry starts after this much time since the first try

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy: at least one attempt")
        if self.base_delay_s < 0 or self.max_delay_s < 0 or self.multiplier < 1:
            raise ValueError("RetryPolicy: delays >= 0 and multiplier >= 1")

    def delay(self, retry: int, rng: random.Random) -> float:
        """The pause before retry number `retry` (0 for the first retry): full jitter."""
        ceiling = min(self.max_delay_s, self.base_delay_s * self.multiplier**retry)
        return rng.uniform(0.0, ceiling)


@dataclass
class CircuitBreaker:
    """Closed -> open after `failure_threshold` consecutive failures -> half-open after
    `reset_timeout_s` (one probe) -> closed on the probe's success, open again on its failure."""

    name: str
    failure_threshold: int = 5
    reset_timeout_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _state: BreakerState = field(default=BreakerState.CLOSED, init=False)
    _failures: int = field(default=0, init=False)
    _opened_at: float = field(default=0.0, init=False)
    _probing: bool = field(default=False, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.reset_timeout_s <= 0:
            raise ValueError("CircuitBreaker: failure_threshold >= 1, reset_timeout_s > 0")

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._current()

    def _current(self) -> BreakerState:
        if (
            self._state is BreakerState.OPEN
            and self.clock() - self._opened_at >= self.reset_timeout_s
        ):
            self._state = BreakerState.HALF_OPEN
            self._probing = False
        return self._state

    def allow(self) -> bool:
        """Whether a call may go out now (half-open: only the one probe)."""
        with self._lock:
            state = self._current()
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.HALF_OPEN and not self._probing:
                self._probing = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._probing = False

    def record_failure(self) -> None:
        with self._lock:
            state = self._current()
            self._failures += 1
            if state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
                self._state = BreakerState.OPEN
                self._opened_at = self.clock()
                self._probing = False


def call(
    fn: Callable[[], T],
    *,
    retry_on: tuple[type[BaseException], ...],
    policy: RetryPolicy | None = None,
    breaker: CircuitBreaker | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """`fn()` with retries on `retry_on` failures, behind `breaker` when given. Raises
    `CircuitOpenError` when the breaker refuses (no call made), else the last failure."""
    policy = policy or RetryPolicy()
    rng = rng or random.Random()  # noqa: S311 (jitter, not a secret)
    start = clock()
    for attempt in range(policy.attempts):
        if breaker is not None and not breaker.allow():
            raise CircuitOpenError(breaker.name)
        try:
            result = fn()
        except retry_on:
            if breaker is not None:
                breaker.record_failure()
            pause = policy.delay(attempt, rng)
            last = attempt == policy.attempts - 1
            over = policy.budget_s is not None and clock() - start + pause >= policy.budget_s
            if last or over:
                raise
            sleep(pause)
            continue
        except Exception:
            if breaker is not None:
                breaker.record_success()  # it answered: up, even if the answer is an error
            raise
        if breaker is not None:
            breaker.record_success()
        return result
    raise AssertionError("unreachable")  # pragma: no cover
