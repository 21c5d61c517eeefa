"""Token-bucket rate limits, per tenant (API calls) and per client address (capture calls).

A bucket holds at most `per_minute` tokens and refills at `per_minute / 60` per second; a call
takes one, or gets 429 `rate_limited` with a Retry-After. The buckets live in a `TokenBuckets`
store: `MemoryBuckets` (process memory, the default: each worker enforces its own budget) or the
Redis one of `shared_state.RedisState` (one budget across all workers, same arithmetic, in one
atomic Lua script). The clock is injected so tests are deterministic.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from faceproof.reasons import ReasonCode

from .problems import ApiError

__all__ = ["MemoryBuckets", "RateLimiter", "TokenBuckets"]


class TokenBuckets(Protocol):
    def take(self, key: str, capacity: float, rate: float, now: float) -> float:
        """Take one token from `key`'s bucket at time `now` (Unix seconds): 0.0 when taken,
        else how many tokens are missing (> 0)."""
        ...


class MemoryBuckets:
    def __init__(self, max_keys: int = 100_000) -> None:
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, capacity: float, rate: float, now: float) -> float:
        with self._lock:
            tokens, last = self._buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + max(0.0, now - last) * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return 1.0 - tokens
            if len(self._buckets) >= self._max_keys and key not in self._buckets:
                self._buckets.clear()  # crude bound on memory; full buckets lose nothing
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0


class RateLimiter:
    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], datetime],
        buckets: TokenBuckets | None = None,
        *,
        scope: str = "default",
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self._clock = clock
        self._buckets = buckets if buckets is not None else MemoryBuckets()
        self._scope = scope  # keeps the tenant and client buckets apart in a shared store

    def hit(self, key: str) -> None:
        """Take one token for `key`, or raise 429 `rate_limited` with a Retry-After."""
        if self.capacity <= 0:
            return
        now = self._clock().timestamp()
        missing = self._buckets.take(f"{self._scope}:{key}", self.capacity, self.rate, now)
        if missing > 0:
            retry = max(1, math.ceil(missing / self.rate))
            raise ApiError(ReasonCode.RATE_LIMITED, headers={"Retry-After": str(retry)})
