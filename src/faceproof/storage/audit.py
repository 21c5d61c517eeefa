"""The append-only audit log, chained by SHA-256.

Each entry's hash is `sha256(prev_hash || canonical_json(entry))`, where the canonical JSON has
sorted keys, no spaces and UTF-8 text. The first entry's `prev_hash` is 64 zeros. Altering,
removing or reordering any entry breaks every hash after it; `verify_chain` finds the first.
Entries hold event names, ids and reason codes only: no personal data, no biometrics.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session as DbSession

from faceproof.storage.models import AuditEntry

__all__ = ["GENESIS_HASH", "append_audit", "canonical_json", "entry_hash", "verify_chain"]

GENESIS_HASH = "0" * 64
_CHAIN_LOCK_KEY = 0x46505F41554454  # PostgreSQL advisory lock id for the one chain


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(
    prev_hash: str,
    ts: str,
    tenant_id: str | None,
    session_id: str | None,
    event: str,
    data: dict[str, Any],
) -> str:
    body = {"ts": ts, "tenant": tenant_id, "session": session_id, "event": event, "data": data}
    return hashlib.sha256(prev_hash.encode() + canonical_json(body)).hexdigest()


def append_audit(
    db: DbSession,
    event: str,
    *,
    now: datetime,
    tenant_id: str | None = None,
    session_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry inside the caller's transaction (serialised per database)."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK_KEY})
    last = db.scalars(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)).first()
    prev = last or GENESIS_HASH
    ts = now.isoformat()
    payload = dict(data or {})
    entry = AuditEntry(
        ts=ts,
        tenant_id=tenant_id,
        session_id=session_id,
        event=event,
        data=payload,
        prev_hash=prev,
        hash=entry_hash(prev, ts, tenant_id, session_id, event, payload),
    )
    db.add(entry)
    db.flush()
    return entry


def verify_chain(db: DbSession) -> int | None:
    """The id of the first entry that breaks the chain, or None when the whole log is intact."""
    prev = GENESIS_HASH
    for entry in db.scalars(select(AuditEntry).order_by(AuditEntry.id)):
        expected = entry_hash(
            prev, entry.ts, entry.tenant_id, entry.session_id, entry.event, entry.data
        )
        if entry.prev_hash != prev or entry.hash != expected:
            return entry.id
        prev = entry.hash
    return None
