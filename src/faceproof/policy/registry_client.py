"""A carrier's client for the line registry service: `LineRegistry` over HTTP.

Here an identity is the registration number itself: it travels over TLS to the registry, which
alone turns it into its pseudonym. Calls have a bounded timeout, idempotent ones are retried
with backoff, and all go through a circuit breaker (faceproof.resilience): an unreachable
registry raises a ServiceError (`registry_unavailable`) that the service turns into a `review`,
never a hang, and while the breaker is open no request is sent at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from faceproof.errors import ServiceError
from faceproof.policy.registry import Activation, FailedCheck
from faceproof.reasons import ReasonCode
from faceproof.resilience import CircuitBreaker, CircuitOpenError, RetryPolicy, call

__all__ = ["HttpLineRegistry"]

_ONCE = RetryPolicy(attempts=1)


class _RegistryDownError(Exception):
    """The registry did not answer, or answered 5xx: worth a retry."""


class HttpLineRegistry:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_s,
            transport=transport,
        )
        self._clock = clock
        self.retry = retry or RetryPolicy(attempts=2, budget_s=2 * timeout_s)
        self.breaker = breaker or CircuitBreaker("registry")

    def close(self) -> None:
        self._client.close()

    def _send(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            response = self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise _RegistryDownError(type(exc).__name__) from exc
        if response.status_code >= 500:
            raise _RegistryDownError(f"HTTP {response.status_code}")
        return response

    def _call(
        self, method: str, path: str, body: dict[str, Any], *, idempotent: bool = True
    ) -> dict[str, Any]:
        try:
            response = call(
                lambda: self._send(method, path, body),
                retry_on=(_RegistryDownError,),
                policy=self.retry if idempotent else _ONCE,
                breaker=self.breaker,
            )
        except CircuitOpenError as exc:
            raise ServiceError(ReasonCode.REGISTRY_UNAVAILABLE, "circuit open") from exc
        except _RegistryDownError as exc:
            raise ServiceError(ReasonCode.REGISTRY_UNAVAILABLE, str(exc)) from exc
        if response.status_code >= 400:
            code = response.json().get("code", ReasonCode.MALFORMED_REQUEST.value)
            raise ServiceError(ReasonCode(code), f"registry refused: HTTP {response.status_code}")
        result: dict[str, Any] = response.json()
        return result

    def _days(self, since: datetime) -> int:
        return max(1, math.ceil((self._clock() - since).total_seconds() / 86400))

    def _hours(self, since: datetime) -> int:
        return max(1, math.ceil((self._clock() - since).total_seconds() / 3600))

    def record_activation(self, activation: Activation) -> None:
        self._call(
            "POST",
            "/v1/activations",
            {
                "number": activation.identity,
                "line_id": activation.line_id,
                "store": activation.store,
                "channel": activation.channel,
            },
        )

    def count_activations(self, identity: str, since: datetime) -> int:
        body = {"number": identity, "window_days": self._days(since)}
        return int(self._call("POST", "/v1/identities/status", body)["new_lines"])

    def record_failed_check(self, failed: FailedCheck) -> None:
        # Not idempotent (each report counts): behind the breaker, never retried.
        body = {"number": failed.identity, "store": failed.store}
        self._call("POST", "/v1/failed-checks", body, idempotent=False)

    def failed_checks(self, identity: str, since: datetime) -> tuple[int, int]:
        body = {"number": identity, "failed_window_hours": self._hours(since)}
        status = self._call("POST", "/v1/identities/status", body)
        return int(status["failed_checks"]), int(status["failed_distinct_stores"])

    def store_activity(self, carrier: str, store: str, since: datetime) -> tuple[int, int]:
        del carrier  # the registry answers for the calling carrier's own stores only
        minutes = max(1, math.ceil((self._clock() - since).total_seconds() / 60))
        out = self._call("POST", "/v1/stores/activity", {"store": store, "minutes": minutes})
        return int(out["activations"]), int(out["failed_checks"])

    def is_blocked(self, identity: str) -> bool:
        return bool(self._call("POST", "/v1/identities/status", {"number": identity})["blocked"])

    def set_blocked(self, identity: str, blocked: bool) -> None:
        self._call("PUT", "/v1/identities/block", {"number": identity, "blocked": blocked})

    def barred_until(self, identity: str) -> datetime | None:
        value = self._call("POST", "/v1/identities/status", {"number": identity})["barred_until"]
        return datetime.fromisoformat(value) if value else None

    def set_barred_until(self, identity: str, until: datetime | None) -> None:
        body = {"number": identity, "until": until.isoformat() if until else None}
        self._call("PUT", "/v1/identities/bar", body)
