"""The cross-carrier line registry, seen from one carrier: a Protocol and an in-memory registry.

Identities are pseudonymous: an HMAC of the registration number under a key only the registry
holds. Carriers get counts and flags, never other carriers' records. The HTTP registry service
(`faceproof registry serve`) implements the same contract; `InMemoryLineRegistry` serves
development and tests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["Activation", "FailedCheck", "InMemoryLineRegistry", "LineRegistry"]


@dataclass(frozen=True, slots=True)
class Activation:
    identity: str
    carrier: str
    store: str
    line_id: str
    at: datetime
    channel: str = "in_store"


@dataclass(frozen=True, slots=True)
class FailedCheck:
    identity: str
    carrier: str
    store: str
    at: datetime


class LineRegistry(Protocol):
    def record_activation(self, activation: Activation) -> None: ...
    def count_activations(self, identity: str, since: datetime) -> int: ...
    def record_failed_check(self, failed: FailedCheck) -> None: ...
    def failed_checks(self, identity: str, since: datetime) -> tuple[int, int]:
        """(failed checks, distinct stores) for an identity since a time."""
        ...

    def store_activity(self, carrier: str, store: str, since: datetime) -> tuple[int, int]:
        """(activations, failed checks) at one store since a time."""
        ...

    def is_blocked(self, identity: str) -> bool: ...
    def set_blocked(self, identity: str, blocked: bool) -> None: ...
    def barred_until(self, identity: str) -> datetime | None: ...
    def set_barred_until(self, identity: str, until: datetime | None) -> None: ...


class InMemoryLineRegistry:
    """A thread-safe registry in process memory: development and tests only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._activations: list[Activation] = []
        self._failed: list[FailedCheck] = []
        self._blocked: set[str] = set()
        self._barred: dict[str, datetime] = {}

    def record_activation(self, activation: Activation) -> None:
        with self._lock:
            # A line is counted once, however often the carrier confirms it.
            if any(
                a.line_id == activation.line_id and a.carrier == activation.carrier
                for a in self._activations
            ):
                return
            self._activations.append(activation)

    def count_activations(self, identity: str, since: datetime) -> int:
        with self._lock:
            return sum(1 for a in self._activations if a.identity == identity and a.at >= since)

    def record_failed_check(self, failed: FailedCheck) -> None:
        with self._lock:
            self._failed.append(failed)

    def failed_checks(self, identity: str, since: datetime) -> tuple[int, int]:
        with self._lock:
            hits = [f for f in self._failed if f.identity == identity and f.at >= since]
            return len(hits), len({(f.carrier, f.store) for f in hits})

    def store_activity(self, carrier: str, store: str, since: datetime) -> tuple[int, int]:
        with self._lock:
            lines = sum(
                1
                for a in self._activations
                if a.carrier == carrier and a.store == store and a.at >= since
            )
            failures = sum(
                1
                for f in self._failed
                if f.carrier == carrier and f.store == store and f.at >= since
            )
            return lines, failures

    def is_blocked(self, identity: str) -> bool:
        with self._lock:
            return identity in self._blocked

    def set_blocked(self, identity: str, blocked: bool) -> None:
        with self._lock:
            (self._blocked.add if blocked else self._blocked.discard)(identity)

    def barred_until(self, identity: str) -> datetime | None:
        with self._lock:
            return self._barred.get(identity)

    def set_barred_until(self, identity: str, until: datetime | None) -> None:
        with self._lock:
            if until is None:
                self._barred.pop(identity, None)
            else:
                self._barred[identity] = until
