"""Retention: sessions older than the retention period are deleted with their attempts and
decisions. The audit log is kept (it holds event names, ids and reason codes only) so its hash
chain stays verifiable; a purge is itself an audit entry."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session as DbSession

from faceproof.storage.audit import append_audit
from faceproof.storage.models import Attempt, Decision, Session

__all__ = ["purge_expired"]


def purge_expired(
    db: DbSession, *, now: datetime, retention_days: int, dry_run: bool = False
) -> int:
    """Delete sessions created before `now - retention_days`; the number of sessions removed."""
    cutoff = now - timedelta(days=retention_days)
    old = select(Session.id).where(Session.created_at < cutoff)
    count = db.scalar(select(func.count()).select_from(old.subquery())) or 0
    if dry_run or count == 0:
        return count
    db.execute(delete(Attempt).where(Attempt.session_id.in_(old)))
    db.execute(delete(Decision).where(Decision.session_id.in_(old)))
    db.execute(delete(Session).where(Session.created_at < cutoff))
    append_audit(
        db,
        "retention.purged",
        now=now,
        data={"sessions": count, "cutoff": cutoff.isoformat(), "retention_days": retention_days},
    )
    return count
