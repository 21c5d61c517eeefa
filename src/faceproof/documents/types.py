"""The documents package's frozen types: the document type codes and one validated result.

`DocumentRead` is the single result type that leaves `documents/`: the document type, the fields
under their stable names (ISO 8601 dates), the outcome of every check with its reason code, and
the portrait box. Its repr and, by default, its `to_dict()` mask the registration and licence
numbers; the raw number lives in memory only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from faceproof.documents.privacy import mask_number
from faceproof.reasons import ReasonCode, Severity, describe

__all__ = [
    "DATE_FIELDS",
    "FIELD_NAMES",
    "Check",
    "DocumentRead",
    "DocumentType",
    "PortraitBox",
]


# Month abbreviations as printed on passports and foreign residence cards (e.g. "01 JAN 2026").
MONTHS: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


class DocumentType(StrEnum):
    """Stable document type codes (public contract: only added, never renamed)."""

    KR_RESIDENT_CARD = "kr_resident_card"  # 주민등록증
    KR_DRIVER_LICENSE = "kr_driver_license"  # 자동차운전면허증
    KR_RESIDENCE_CARD = "kr_residence_card"  # 외국인등록증 / 영주증
    KR_MERIT_CARD = "kr_merit_card"  # 국가유공자증
    KR_DISABILITY_CARD = "kr_disability_card"  # 장애인등록증
    PASSPORT = "passport"  # ICAO 9303 TD3


#: Stable field names (public contract).
FIELD_NAMES: Final = (
    "name_ko",
    "name_latin",
    "number",
    "birth_date",
    "sex",
    "issue_date",
    "expiry_date",
    "nationality",
    "license_number",
    "license_class",
    "address",
    "issuer",
    "mrz",
)
DATE_FIELDS: Final = frozenset({"birth_date", "issue_date", "expiry_date"})
#: Fields masked in repr and in `to_dict()` unless the caller asks for the raw values.
SENSITIVE_FIELDS: Final = frozenset({"number", "license_number", "mrz"})
_SEXES: Final = frozenset({"M", "F", "X"})
_ISO_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Check:
    """One validation rule's outcome.

    `code` is the reason code the rule raises when it fails (reported even when `ok`, so a
    consumer can see which rules ran); `detail` names what failed, never the raw number.
    """

    name: str
    ok: bool
    code: ReasonCode
    detail: str = ""

    @property
    def severity(self) -> Severity:
        return describe(self.code).severity

    @property
    def rejects(self) -> bool:
        return not self.ok and self.severity is Severity.REJECT

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "ok": self.ok,
            "code": self.code.value,
            "severity": self.severity.value,
        }
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True, slots=True)
class PortraitBox:
    """The portrait's box in the (rectified) document image, in pixels."""

    x: int
    y: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.x < 0 or self.y < 0:
            raise ValueError(
                f"PortraitBox needs x, y >= 0 and a positive size, got "
                f"({self.x}, {self.y}, {self.width}, {self.height})"
            )

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.width, self.height]


@dataclass(frozen=True, slots=True)
class DocumentRead:
    """A document's type, fields (stable names, ISO dates), checks and portrait box."""

    type: DocumentType
    fields: Mapping[str, str] = field(repr=False)
    checks: tuple[Check, ...] = ()
    portrait: PortraitBox | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.type, DocumentType):
            raise ValueError(f"DocumentRead.type must be a DocumentType, got {self.type!r}")
        unknown = sorted(set(self.fields) - set(FIELD_NAMES))
        if unknown:
            raise ValueError(f"DocumentRead.fields: unknown field names {unknown}")
        for name, value in self.fields.items():
            if not isinstance(value, str):
                raise ValueError(f"DocumentRead.fields[{name!r}] must be str")
            if name in DATE_FIELDS and not _is_iso_date(value):
                raise ValueError(f"DocumentRead.fields[{name!r}] must be an ISO date YYYY-MM-DD")
            if name == "sex" and value not in _SEXES:
                raise ValueError("DocumentRead.fields['sex'] must be M, F or X")
        # A read-only copy: the caller's dict can change without changing this result.
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))
        object.__setattr__(self, "checks", tuple(self.checks))

    @property
    def accepted(self) -> bool:
        """No check failed with a REJECT severity (warnings do not block).

        A missing field is only a warning (`field_unreadable`): see `complete`, which a policy
        should require too.
        """
        return not any(c.rejects for c in self.checks)

    @property
    def complete(self) -> bool:
        """Every required field was present (no failed `field_*` check)."""
        return not any(c.name.startswith("field_") and not c.ok for c in self.checks)

    @property
    def reasons(self) -> tuple[ReasonCode, ...]:
        """Reason codes of the failed checks, in check order, without repeats."""
        return tuple(dict.fromkeys(c.code for c in self.checks if not c.ok))

    def masked_fields(self) -> dict[str, str]:
        out = dict(self.fields)
        for name in SENSITIVE_FIELDS & out.keys():
            out[name] = "<redacted>" if name == "mrz" else mask_number(out[name])
        return out

    def __repr__(self) -> str:
        return (
            f"DocumentRead(type={self.type.value!r}, fields={self.masked_fields()!r}, "
            f"checks={self.checks!r}, portrait={self.portrait!r})"
        )

    def to_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        """JSON-ready dict; `reveal=True` includes the raw numbers and MRZ (caller's choice)."""
        return {
            "type": self.type.value,
            "accepted": self.accepted,
            "complete": self.complete,
            "fields": dict(self.fields) if reveal else self.masked_fields(),
            "checks": [c.to_dict() for c in self.checks],
            "reasons": [r.value for r in self.reasons],
            "portrait": {"box": self.portrait.as_list()} if self.portrait else None,
        }


def _is_iso_date(value: str) -> bool:
    if not _ISO_DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True
