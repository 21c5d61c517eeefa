"""Every validation rule for one document, by type: fields in, one `DocumentRead` out.

Required fields per type (a missing one is a `field_unreadable` warning check named
`field_<name>`):

| type | required |
| --- | --- |
| kr_resident_card, kr_merit_card, kr_disability_card | name_ko, number, issue_date |
| kr_driver_license | name_ko, number, license_number, issue_date, expiry_date |
| kr_residence_card | name_latin, number, nationality, issue_date |
| passport | name_latin, number, nationality, birth_date, expiry_date, mrz |

Then: registration number rules (citizen digits on Korean cards, foreigner digits 5-8 on the
residence card), licence number, passport number, MRZ check digits and MRZ vs printed fields,
issue and expiry dates. See `validators.py` and `mrz.py` for the rules and their sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Final

from faceproof.documents.errors import DocumentError
from faceproof.documents.mrz import cross_check, parse_td3
from faceproof.documents.types import Check, DocumentRead, DocumentType, PortraitBox
from faceproof.documents.validators import (
    check_dates,
    check_licence_number,
    check_passport_number,
    check_registration_number,
    parse_registration_number,
)
from faceproof.reasons import ReasonCode

__all__ = ["REQUIRED_FIELDS", "validate_document"]

_T = DocumentType
REQUIRED_FIELDS: Final[dict[DocumentType, tuple[str, ...]]] = {
    _T.KR_RESIDENT_CARD: ("name_ko", "number", "issue_date"),
    _T.KR_DRIVER_LICENSE: ("name_ko", "number", "license_number", "issue_date", "expiry_date"),
    _T.KR_RESIDENCE_CARD: ("name_latin", "number", "nationality", "issue_date"),
    _T.KR_MERIT_CARD: ("name_ko", "number", "issue_date"),
    _T.KR_DISABILITY_CARD: ("name_ko", "number", "issue_date"),
    _T.PASSPORT: ("name_latin", "number", "nationality", "birth_date", "expiry_date", "mrz"),
}


def validate_document(
    doc_type: DocumentType,
    fields: Mapping[str, str],
    *,
    today: date,
    portrait: PortraitBox | None = None,
) -> DocumentRead:
    """Run every rule that applies to `doc_type` on `fields` (stable names, ISO dates)."""
    values = {k: v for k, v in fields.items() if v}
    checks: list[Check] = [
        Check(f"field_{name}", name in values, ReasonCode.FIELD_UNREADABLE)
        for name in REQUIRED_FIELDS[doc_type]
    ]
    number = values.get("number")
    if doc_type is DocumentType.PASSPORT:
        if number:
            checks += check_passport_number(number, nationality=values.get("nationality"))
        if "mrz" in values:
            try:
                mrz = parse_td3(values["mrz"], today=today)
            except DocumentError as exc:
                checks.append(Check("mrz_structure", False, ReasonCode.MRZ_INVALID, exc.detail))
            else:
                checks += mrz.checks
                checks.append(cross_check(mrz, values))
    elif number:
        foreigner = doc_type is DocumentType.KR_RESIDENCE_CARD
        checks += check_registration_number(number, today=today, foreigner=foreigner)
        if doc_type is DocumentType.KR_DRIVER_LICENSE and "license_number" in values:
            try:
                birth: date | None = parse_registration_number(number, today=today).birth_date
            except DocumentError:
                birth = None
            checks += check_licence_number(values["license_number"], today=today, birth_date=birth)
    checks += check_dates(
        today=today,
        issue_date=_iso(values.get("issue_date")),
        expiry_date=_iso(values.get("expiry_date")),
    )
    try:
        return DocumentRead(doc_type, values, tuple(checks), portrait)
    except ValueError as exc:  # unknown field name, malformed date or sex
        raise DocumentError(ReasonCode.FIELD_UNREADABLE, str(exc)) from exc


def _iso(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise DocumentError(
            ReasonCode.FIELD_UNREADABLE, "dates must be ISO 8601 (YYYY-MM-DD)"
        ) from exc
