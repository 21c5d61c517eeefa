"""A carrier's client for the line registry service: `LineRegistry` over HTTP.

Here an identity is the registration number itself: it travels over TLS to the registry, which
alone turns it into its pseudonym. Calls have a bounded timeout; an unreachable registry raises
a ServiceError (`registry_unavailable`) that the service turns into a `review`, never a hang.
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

__all__ = ["HttpLineRegistry"]


class HttpLineRegistry:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_s,
            transport=transport,
        )
        self._clock = clock

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ServiceError(ReasonCode.REGISTRY_UNAVAILABLE, type(exc).__name__) from exc
        if response.status_code >= 500:
            raise ServiceError(ReasonCode.REGISTRY_UNAVAILABLE, f"HTTP {response.status_code}")
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
        self._call("POST", "/v1/failed-checks", {"number": failed.identity, "store": failed.store})

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
