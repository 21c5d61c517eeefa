"""Token-bucket rate limits, per tenant (API calls) and per client address (capture calls).

In process memory: with several workers each enforces its own share (a shared Redis limiter is
not built yet). The clock is injected so tests are deterministic.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import datetime

from faceproof.reasons import ReasonCode

from .problems import ApiError

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(
        self, per_minute: int, clock: Callable[[], datetime], max_keys: int = 100_000
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> None:
        """Take one token for `key`, or raise 429 `rate_limited` with a Retry-After."""
        if self.capacity <= 0:
            return
        now = self._clock().timestamp()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + max(0.0, now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                retry = max(1, math.ceil((1.0 - tokens) / self.rate))
                raise ApiError(ReasonCode.RATE_LIMITED, headers={"Retry-After": str(retry)})
            if len(self._buckets) >= self._max_keys and key not in self._buckets:
                self._buckets.clear()  # crude bound on memory; full buckets lose nothing
            self._buckets[key] = (tokens - 1.0, now)
