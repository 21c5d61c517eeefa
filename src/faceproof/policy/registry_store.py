"""The registry's own storage: activations, failed checks and flags keyed by pseudonym.

Raw registration numbers never reach this layer: the HTTP service turns them into an HMAC under
the registry's key first. SQLite by default, PostgreSQL by URL (`storage.Database`). The tables
are created and upgraded by the registry's own Alembic migrations (`registry_migrations/`,
`faceproof registry db upgrade`), never by `create_all`.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Index,
    Integer,
    String,
    UniqueConstraint,
    bindparam,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql import Select

from faceproof.policy.registry import Activation, FailedCheck
from faceproof.storage.db import Database
from faceproof.storage.tenants import hash_secret

__all__ = ["CarrierIdentity", "RegistryBase", "SqlLineRegistry"]

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
    __table_args__ = (
        UniqueConstraint("carrier", "line_id"),
        # (identity, at) answers the status count from the index alone; (carrier, store, at)
        # answers store velocity.
        Index("ix_registry_activations_identity_at", "identity", "at"),
        Index("ix_registry_activations_store_at", "carrier", "store", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity: Mapped[str] = mapped_column(String(64))
    carrier: Mapped[str] = mapped_column(String(64))
    store: Mapped[str] = mapped_column(String(64))
    line_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class RegistryFailedCheck(RegistryBase):
    __tablename__ = "registry_failed_checks"
    __table_args__ = (
        Index("ix_registry_failed_checks_identity_at", "identity", "at"),
        Index("ix_registry_failed_checks_store_at", "carrier", "store", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity: Mapped[str] = mapped_column(String(64))
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


@dataclass(frozen=True, slots=True)
class CarrierIdentity:
    """An authenticated caller: what the request handlers need, detached from any session."""

    name: str
    authority: bool


def _status_statement() -> Select[Any]:
    """Every answer of a status query in one SQL statement: one round trip, one snapshot."""
    activation, failed, flag = RegistryActivation, RegistryFailedCheck, RegistryFlag
    identity = bindparam("identity", type_=String())
    lines_since = bindparam("lines_since", type_=DateTime(timezone=True))
    failed_since = bindparam("failed_since", type_=DateTime(timezone=True))
    failed_rows = select(failed.carrier, failed.store).where(
        failed.identity == identity, failed.at >= failed_since
    )
    return select(
        select(func.count())
        .select_from(activation)
        .where(activation.identity == identity, activation.at >= lines_since)
        .scalar_subquery(),
        select(func.count()).select_from(failed_rows.subquery()).scalar_subquery(),
        # DISTINCT over (carrier, store) in a subquery: SQLite has no count(DISTINCT (a, b)).
        select(func.count()).select_from(failed_rows.distinct().subquery()).scalar_subquery(),
        select(flag.blocked).where(flag.identity == identity).scalar_subquery(),
        select(flag.barred_until).where(flag.identity == identity).scalar_subquery(),
    )


_STATUS = _status_statement()


class SqlLineRegistry:
    """`LineRegistry` over SQL. Identities are the registry's pseudonyms."""

    def __init__(self, database: Database) -> None:
        self.db = database
        self._carriers: dict[str, tuple[CarrierIdentity, float]] = {}
        # Reads are single statements: autocommit spares the BEGIN and ROLLBACK round trips
        # of a transaction around them (same pool, same connections).
        self._reader = database.engine.execution_options(isolation_level="AUTOCOMMIT")

    # --- carriers
    def create_carrier(self, name: str, *, authority: bool = False) -> str:
        key = "fpr_" + secrets.token_urlsafe(32)
        with self.db.session() as s:
            s.add(RegistryCarrier(name=name, key_hash=hash_secret(key), authority=authority))
        return key

    def cached_carrier(self, presented: str) -> CarrierIdentity | None:
        """The caller from the in-memory cache, or None (unknown, or not looked up lately)."""
        cached = self._carriers.get(hash_secret(presented))
        return cached[0] if cached is not None and cached[1] > time.monotonic() else None

    def authenticate(self, presented: str) -> CarrierIdentity | None:
        digest = hash_secret(presented)
        now = time.monotonic()
        cached = self._carriers.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        with self._reader.connect() as conn:
            # The lookup is by hash of a high-entropy key: no secret is compared in Python.
            row = conn.execute(
                select(RegistryCarrier.name, RegistryCarrier.authority).where(
                    RegistryCarrier.key_hash == digest
                )
            ).first()
        if row is None:
            return None
        carrier = CarrierIdentity(row.name, bool(row.authority))
        # Every carrier call authenticates; a short cache keeps that off the database (a
        # removed key keeps working for at most this long in each worker).
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
        """(new lines, blocked, barred until, failed checks, distinct stores): the registry's
        hot path, asked by every carrier before every line, in one statement."""
        params = {"identity": identity, "lines_since": lines_since, "failed_since": failed_since}
        with self._reader.connect() as conn:
            row = tuple(conn.execute(_STATUS, params).one())
        lines, failed, stores, blocked, barred = row
        return int(lines), bool(blocked), _aware(barred), int(failed), int(stores)

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
