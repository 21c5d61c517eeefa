"""The registry's own storage: activations, failed checks and flags keyed by pseudonym.

Raw registration numbers never reach this layer: the HTTP service turns them into an HMAC under
the registry's key first. SQLite by default, PostgreSQL by URL (`storage.Database`).
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    String,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from faceproof.policy.registry import Activation, FailedCheck
from faceproof.storage.db import Database
from faceproof.storage.tenants import hash_secret

__all__ = ["RegistryBase", "SqlLineRegistry"]

_AUTH_CACHE_SECONDS = 30.0


class RegistryBase(DeclarativeBase):
    pass


class RegistryCarrier(RegistryBase):
    __tablename__ = "registry_carriers"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    authority: Mapped[bool] = mapped_column(Boolean, default=False)  # may set blocks and bars


class RegistryActivation(RegistryBase):
    __tablename__ = "registry_activations"
    __table_args__ = (UniqueConstraint("carrier", "line_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity: Mapped[str] = mapped_column(String(64), index=True)
    carrier: Mapped[str] = mapped_column(String(64))
    store: Mapped[str] = mapped_column(String(64))
    line_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class RegistryFailedCheck(RegistryBase):
    __tablename__ = "registry_failed_checks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity: Mapped[str] = mapped_column(String(64), index=True)
    carrier: Mapped[str] = mapped_column(String(64))
    store: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class RegistryFlag(RegistryBase):
    __tablename__ = "registry_flags"
    identity: Mapped[str] = mapped_column(String(64), primary_key=True)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    barred_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time here is UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class SqlLineRegistry:
    """`LineRegistry` over SQL. Identities are the registry's pseudonyms."""

    def __init__(self, database: Database) -> None:
        self.db = database
        self._carriers: dict[str, tuple[RegistryCarrier, float]] = {}
        RegistryBase.metadata.create_all(database.engine)

    # --- carriers
    def create_carrier(self, name: str, *, authority: bool = False) -> str:
        key = "fpr_" + secrets.token_urlsafe(32)
        with self.db.session() as s:
            s.add(RegistryCarrier(name=name, key_hash=hash_secret(key), authority=authority))
        return key

    def authenticate(self, presented: str) -> RegistryCarrier | None:
        digest = hash_secret(presented)
        now = time.monotonic()
        cached = self._carriers.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        with self.db.session() as s:
            # The lookup is by hash of a high-entropy key: no secret is compared in Python.
            carrier = s.scalar(select(RegistryCarrier).where(RegistryCarrier.key_hash == digest))
        if carrier is not None:
            # Every carrier call authenticates; a short cache keeps that off the database.
            self._carriers[digest] = (carrier, now + _AUTH_CACHE_SECONDS)
        return carrier

    # --- LineRegistry
    def record_activation(self, activation: Activation) -> None:
        try:
            with self.db.session() as s:
                s.add(
                    RegistryActivation(
                        identity=activation.identity,
                        carrier=activation.carrier,
                        store=activation.store,
                        line_id=activation.line_id,
                        channel=activation.channel,
                        at=activation.at,
                    )
                )
        except IntegrityError:
            pass  # the same line confirmed twice counts once

    def count_activations(self, identity: str, since: datetime) -> int:
        with self.db.session() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(RegistryActivation)
                    .where(RegistryActivation.identity == identity, RegistryActivation.at >= since)
                )
                or 0
            )

    def record_failed_check(self, failed: FailedCheck) -> None:
        with self.db.session() as s:
            s.add(
                RegistryFailedCheck(
                    identity=failed.identity,
                    carrier=failed.carrier,
                    store=failed.store,
                    at=failed.at,
                )
            )

    def failed_checks(self, identity: str, since: datetime) -> tuple[int, int]:
        with self.db.session() as s:
            rows = s.execute(
                select(RegistryFailedCheck.carrier, RegistryFailedCheck.store).where(
                    RegistryFailedCheck.identity == identity, RegistryFailedCheck.at >= since
                )
            ).all()
        return len(rows), len({(c, st) for c, st in rows})

    def store_activity(self, carrier: str, store: str, since: datetime) -> tuple[int, int]:
        with self.db.session() as s:
            lines = s.scalar(
                select(func.count())
                .select_from(RegistryActivation)
                .where(
                    RegistryActivation.carrier == carrier,
                    RegistryActivation.store == store,
                    RegistryActivation.at >= since,
                )
            )
            failed = s.scalar(
                select(func.count())
                .select_from(RegistryFailedCheck)
                .where(
                    RegistryFailedCheck.carrier == carrier,
                    RegistryFailedCheck.store == store,
                    RegistryFailedCheck.at >= since,
                )
            )
        return int(lines or 0), int(failed or 0)

    def status(
        self, identity: str, lines_since: datetime, failed_since: datetime
    ) -> tuple[int, bool, datetime | None, int, int]:
        """(new lines, blocked, barred until, failed checks, distinct stores) in one unit of
        work: the registry's hot path, asked by every carrier before every line."""
        with self.db.session() as s:
            lines = s.scalar(
                select(func.count())
                .select_from(RegistryActivation)
                .where(
                    RegistryActivation.identity == identity, RegistryActivation.at >= lines_since
                )
            )
            failed = s.execute(
                select(RegistryFailedCheck.carrier, RegistryFailedCheck.store).where(
                    RegistryFailedCheck.identity == identity, RegistryFailedCheck.at >= failed_since
                )
            ).all()
            flag = s.get(RegistryFlag, identity)
            blocked, barred = (flag.blocked, _aware(flag.barred_until)) if flag else (False, None)
        return int(lines or 0), blocked, barred, len(failed), len(set(failed))

    def _flag(self, identity: str) -> tuple[bool, datetime | None]:
        with self.db.session() as s:
            flag = s.get(RegistryFlag, identity)
            return (flag.blocked, _aware(flag.barred_until)) if flag else (False, None)

    def is_blocked(self, identity: str) -> bool:
        return self._flag(identity)[0]

    def barred_until(self, identity: str) -> datetime | None:
        return self._flag(identity)[1]

    def _set(self, identity: str, **values: object) -> None:
        with self.db.session() as s:
            flag = s.get(RegistryFlag, identity) or RegistryFlag(
                identity=identity, blocked=False, barred_until=None
            )
            for name, value in values.items():
                setattr(flag, name, value)
            s.add(flag)

    def set_blocked(self, identity: str, blocked: bool) -> None:
        self._set(identity, blocked=blocked)

    def set_barred_until(self, identity: str, until: datetime | None) -> None:
        self._set(identity, barred_until=until)
