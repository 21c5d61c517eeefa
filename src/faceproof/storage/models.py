"""Tables for non-biometric records. Nothing here can hold an image, a frame or an embedding.

Timestamps are stored as naive UTC and returned as aware UTC (`UTCDateTime`), so SQLite and
PostgreSQL behave alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ApiKey",
    "Attempt",
    "AuditEntry",
    "Base",
    "Decision",
    "Session",
    "Tenant",
    "UTCDateTime",
    "Webhook",
    "WebhookDelivery",
]


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ApiKey(Base):
    """An API key is `fpk_<prefix>_<secret>`; only the SHA-256 of the whole key is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(200))  # space separated
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # A store's key (the clerk console) opens and sees only that store's sessions.
    store_id: Mapped[str | None] = mapped_column(String(64), default=None)


class Session(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    store_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(16))
    locale: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(index=True)
    expires_at: Mapped[datetime]
    attempts_used: Mapped[int] = mapped_column(Integer, default=0)
    attempts_limit: Mapped[int] = mapped_column(Integer)
    capture_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    capture_token_expires_at: Mapped[datetime]
    capture_token_used: Mapped[bool] = mapped_column(Boolean, default=False)
    consent: Mapped[str | None] = mapped_column(String(16), default=None)
    consent_at: Mapped[datetime | None] = mapped_column(default=None)


class Attempt(Base):
    """One face comparison: its outcome, reasons and score. No template, no image."""

    __tablename__ = "attempts"
    __table_args__ = (UniqueConstraint("session_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))
    reasons: Mapped[list[str]] = mapped_column(JSON)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[datetime]


class Decision(Base):
    """The final decision of a session (one per session) and its signed receipt."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), unique=True
    )
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    decision: Mapped[str] = mapped_column(String(32))
    reasons: Mapped[list[str]] = mapped_column(JSON)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    model_versions: Mapped[list[str]] = mapped_column(JSON)
    threshold: Mapped[float | None] = mapped_column(Float, default=None)
    fmr_target: Mapped[float | None] = mapped_column(Float, default=None)
    subject_id: Mapped[str | None] = mapped_column(String(64), default=None)
    receipt: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)


class AuditEntry(Base):
    """Append-only, hash-chained: `hash = sha256(prev_hash + canonical JSON of the entry)`."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[str] = mapped_column(String(40))  # ISO 8601 UTC, hashed exactly as stored
    tenant_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    session_id: Mapped[str | None] = mapped_column(String(40), default=None)
    event: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class Webhook(Base):
    """A tenant's endpoint for signed event deliveries (api/webhooks.py).

    The signing secret is needed to sign, so it cannot be stored as a hash only: it is sealed
    (AES-256-GCM under the service's webhook key, bound to this row's tenant and id) in
    `secret_sealed`; `secret_hash` is its SHA-256, to recognise a secret without revealing it.
    """

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret_sealed: Mapped[str | None] = mapped_column(String(200), default=None)


class WebhookDelivery(Base):
    """The outbox: one event for one webhook, written in the transaction that made the event.

    `body` is the JSON sent, the same bytes on every try: ids, the decision, reason codes and
    the signed receipt. No image, no template, no registration number.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[str] = mapped_column(String(40))
    # Purged with its session (retention), like the decision whose receipt it carries.
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending, delivering, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    last_status: Mapped[int | None] = mapped_column(Integer, default=None)  # HTTP status
    last_error: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
