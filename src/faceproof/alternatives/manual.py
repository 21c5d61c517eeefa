"""The manual path: a clerk checks a same-day resident-registration abstract (주민등록표 초본).

Records who checked, which document (its serial), when, and the outcome. No biometrics. The
abstract must be issued on the day of the check (Korean time), because a same-day abstract is
what the regulation accepts as fresh proof of identity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from faceproof.errors import InputError
from faceproof.reasons import ReasonCode

__all__ = ["ManualCheck", "ManualCheckError", "record_manual_check"]

KOREA = ZoneInfo("Asia/Seoul")
_CLERK = re.compile(r"^[A-Za-z0-9._-]{2,64}$")
_SERIAL = re.compile(r"^[0-9A-Z-]{6,32}$")  # the issue number printed on the abstract


class ManualCheckError(InputError):
    pass


@dataclass(frozen=True, slots=True)
class ManualCheck:
    clerk_id: str
    document_serial: str
    abstract_issued_on: str  # ISO date
    checked_at: str  # ISO timestamp, UTC
    outcome: str  # "confirmed" | "rejected"
    reasons: tuple[ReasonCode, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": "manual_abstract",
            "clerk_id": self.clerk_id,
            "document_serial": self.document_serial,
            "abstract_issued_on": self.abstract_issued_on,
            "checked_at": self.checked_at,
            "outcome": self.outcome,
            "reasons": [code.value for code in self.reasons],
        }


def record_manual_check(
    *,
    clerk_id: str,
    document_serial: str,
    abstract_issued_on: date,
    holder_matches: bool,
    now: datetime,
) -> ManualCheck:
    """Validate a clerk's entry; a stale abstract or a mismatch is recorded as rejected."""
    if not _CLERK.match(clerk_id or ""):
        raise ManualCheckError(ReasonCode.MANUAL_CHECK_INVALID, "clerk id is missing or malformed")
    serial = (document_serial or "").strip().upper()
    if not _SERIAL.match(serial):
        raise ManualCheckError(ReasonCode.MANUAL_CHECK_INVALID, "document serial is malformed")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    today_in_korea = now.astimezone(KOREA).date()
    reasons: tuple[ReasonCode, ...]
    if abstract_issued_on != today_in_korea:
        outcome, reasons = "rejected", (ReasonCode.MANUAL_ABSTRACT_NOT_SAME_DAY,)
    elif not holder_matches:
        outcome, reasons = "rejected", (ReasonCode.MANUAL_CHECK_INVALID,)
    else:
        outcome, reasons = "confirmed", (ReasonCode.MANUAL_CHECK_RECORDED,)
    return ManualCheck(
        clerk_id=clerk_id,
        document_serial=serial,
        abstract_issued_on=abstract_issued_on.isoformat(),
        checked_at=now.astimezone(ZoneInfo("UTC")).isoformat(timespec="seconds"),
        outcome=outcome,
        reasons=reasons,
    )
