"""Validation rules for Korean ID numbers, passport numbers and document dates.

Every rule returns `Check`s (see `types.py`); parsing functions raise `DocumentError` with a
reason code when a value is unusable. The clock is injected (`today`), never read here.

Resident / foreign registration number (주민등록번호 / 외국인등록번호), `YYMMDD-GNNNNNC`:

- `YYMMDD` is the birth date; `G` is the gender/century digit:
  9/0 = male/female born 1800-1899, 1/2 = citizens born 1900-1999, 3/4 = citizens born
  2000-2099, 5/6 = foreigners born 1900-1999, 7/8 = foreigners born 2000-2099 (odd = male).
  The birth date must exist and must not lie after `today`.
- `C` is a check digit over the first 12 digits with weights 2,3,4,5,6,7,8,9,2,3,4,5:
  citizens `(11 - S mod 11) mod 10`, foreigners `(13 - S mod 11) mod 10`. Because of the final
  `mod 10`, residues 0 and 10 give the same check digit, so a single changed digit is missed
  when the two sums' residues are exactly 0 and 10.
- Since October 2020 the digits after `G` are random for new numbers, so a failed check digit is
  the WARNING `rrn_check_digit`, never a rejection. A bad date or gender digit is `rrn_invalid`.

Driver's licence number (운전면허번호) `RR-YY-NNNNNN-CC`: region code 11-26 or 28 (the numeric
codes used since 2011 for the regional police agencies), `YY` the two-digit year of first
issue, which must be plausible (not after `today`, not before 1960, and when the birth date
is known, at least 16 years after birth: the minimum age for any licence class). The last two
digits are not validated (their scheme is not public).

Passport numbers: Korean passports are a letter, 3 digits, a letter and 4 digits (since
December 2021, e.g. `M123A4567`) or, older, a letter and 8 digits (e.g. `M12345678`). Other
countries' numbers follow ICAO 9303: up to 9 characters of `A-Z0-9`.

Dates: an expiry date before `today` is `document_expired`; an issue date after `today` is
`issue_date_in_future`; an expiry date on or before the issue date is `document_expired`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final

from faceproof.documents.errors import DocumentError
from faceproof.documents.types import Check
from faceproof.reasons import ReasonCode

__all__ = [
    "RRN_WEIGHTS",
    "LicenceNumber",
    "RegistrationNumber",
    "check_dates",
    "check_licence_number",
    "check_passport_number",
    "check_registration_number",
    "parse_licence_number",
    "parse_registration_number",
    "rrn_check_digit",
]

RRN_WEIGHTS: Final = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
#: Gender/century digit -> (century base, sex, foreigner)
_GENDER_DIGIT: Final[dict[int, tuple[int, str, bool]]] = {
    9: (1800, "M", False),
    0: (1800, "F", False),
    1: (1900, "M", False),
    2: (1900, "F", False),
    3: (2000, "M", False),
    4: (2000, "F", False),
    5: (1900, "M", True),
    6: (1900, "F", True),
    7: (2000, "M", True),
    8: (2000, "F", True),
}
# re.ASCII: `\d` would also match full-width and other Unicode digits (found by fuzzing).
_RRN: Final = re.compile(r"^(\d{6})-?(\d{7})$", re.ASCII)
LICENCE_REGIONS: Final = frozenset({*range(11, 27), 28})
_LICENCE: Final = re.compile(r"^(\d{2})-?(\d{2})-?(\d{6})-?(\d{2})$", re.ASCII)
_PASSPORT_KR_NEW: Final = re.compile(r"^[A-Z]\d{3}[A-Z]\d{4}$", re.ASCII)
_PASSPORT_KR_OLD: Final = re.compile(r"^[A-Z]\d{8}$", re.ASCII)
_PASSPORT_ICAO: Final = re.compile(r"^[A-Z0-9]{1,9}$")
MIN_LICENCE_AGE: Final = 16
EARLIEST_LICENCE_YEAR: Final = 1960


def rrn_check_digit(first12: str, *, foreigner: bool) -> int:
    """Check digit of a registration number from its first 12 digits."""
    if len(first12) != 12 or not first12.isdigit():
        raise ValueError("rrn_check_digit needs exactly 12 digits")
    total = sum(w * int(d) for w, d in zip(RRN_WEIGHTS, first12, strict=True))
    return ((13 if foreigner else 11) - total % 11) % 10


@dataclass(frozen=True, slots=True, repr=False)
class RegistrationNumber:
    """A parsed registration number. `digits` is the raw number: memory only, never logged."""

    digits: str
    birth_date: date
    sex: str
    foreigner: bool
    check_digit_ok: bool

    def __repr__(self) -> str:
        return (
            f"RegistrationNumber(birth_date={self.birth_date}, sex={self.sex!r}, "
            f"foreigner={self.foreigner}, check_digit_ok={self.check_digit_ok})"
        )

    @property
    def formatted(self) -> str:
        return f"{self.digits[:6]}-{self.digits[6:]}"


def parse_registration_number(number: str, *, today: date) -> RegistrationNumber:
    """Parse `YYMMDD-NNNNNNN` (hyphen optional) or raise DocumentError(rrn_invalid)."""
    m = _RRN.match(number.strip())
    if m is None:
        raise DocumentError(ReasonCode.RRN_INVALID, "expected 13 digits as YYMMDD-NNNNNNN")
    digits = m.group(1) + m.group(2)
    century, sex, foreigner = _GENDER_DIGIT[int(digits[6])]
    try:
        birth = date(century + int(digits[0:2]), int(digits[2:4]), int(digits[4:6]))
    except ValueError as exc:
        raise DocumentError(
            ReasonCode.RRN_INVALID, "the birth date in the registration number does not exist"
        ) from exc
    if birth > today:
        raise DocumentError(
            ReasonCode.RRN_INVALID,
            "the gender/century digit puts the birth date in the future",
        )
    ok = rrn_check_digit(digits[:12], foreigner=foreigner) == int(digits[12])
    return RegistrationNumber(digits, birth, sex, foreigner, ok)


def check_registration_number(
    number: str, *, today: date, foreigner: bool | None = None
) -> tuple[Check, ...]:
    """`rrn_format` (reject) and `rrn_check_digit` (warning) checks.

    `foreigner=True/False` also requires the gender digit's group (5-8 on a foreign
    registration card, 9/0/1-4 on a citizen's card).
    """
    try:
        parsed = parse_registration_number(number, today=today)
    except DocumentError as exc:
        return (Check("rrn_format", False, ReasonCode.RRN_INVALID, exc.detail),)
    if foreigner is not None and parsed.foreigner != foreigner:
        want = "5-8 (foreigner)" if foreigner else "9, 0 or 1-4 (citizen)"
        return (
            Check("rrn_format", False, ReasonCode.RRN_INVALID, f"gender digit should be {want}"),
        )
    detail = "" if parsed.check_digit_ok else "check digit differs (random since Oct 2020)"
    return (
        Check("rrn_format", True, ReasonCode.RRN_INVALID),
        Check("rrn_check_digit", parsed.check_digit_ok, ReasonCode.RRN_CHECK_DIGIT, detail),
    )


@dataclass(frozen=True, slots=True)
class LicenceNumber:
    region: int
    year: int
    serial: str
    suffix: str

    @property
    def formatted(self) -> str:
        return f"{self.region:02d}-{self.year % 100:02d}-{self.serial}-{self.suffix}"


def parse_licence_number(
    number: str, *, today: date, birth_date: date | None = None
) -> LicenceNumber:
    """Parse `RR-YY-NNNNNN-CC` (hyphens optional) or raise DocumentError."""
    m = _LICENCE.match(number.strip())
    if m is None:
        raise DocumentError(ReasonCode.LICENCE_NUMBER_INVALID, "expected RR-YY-NNNNNN-CC")
    region, yy = int(m.group(1)), int(m.group(2))
    if region not in LICENCE_REGIONS:
        raise DocumentError(ReasonCode.LICENCE_NUMBER_INVALID, "region code must be 11-26 or 28")
    year = 2000 + yy if 2000 + yy <= today.year else 1900 + yy
    if year < EARLIEST_LICENCE_YEAR:
        raise DocumentError(ReasonCode.LICENCE_NUMBER_INVALID, "licence year is implausible")
    if birth_date is not None and year < birth_date.year + MIN_LICENCE_AGE:
        raise DocumentError(
            ReasonCode.LICENCE_NUMBER_INVALID,
            f"licence year is less than {MIN_LICENCE_AGE} years after the birth date",
        )
    return LicenceNumber(region, year, m.group(3), m.group(4))


def check_licence_number(
    number: str, *, today: date, birth_date: date | None = None
) -> tuple[Check, ...]:
    try:
        parse_licence_number(number, today=today, birth_date=birth_date)
    except DocumentError as exc:
        return (Check("license_number", False, ReasonCode.LICENCE_NUMBER_INVALID, exc.detail),)
    return (Check("license_number", True, ReasonCode.LICENCE_NUMBER_INVALID),)


def check_passport_number(number: str, *, nationality: str | None = None) -> tuple[Check, ...]:
    """Korean format when `nationality == "KOR"`, else the ICAO 9303 character rule."""
    value = number.strip().upper()
    if nationality == "KOR":
        ok = bool(_PASSPORT_KR_NEW.match(value) or _PASSPORT_KR_OLD.match(value))
        detail = "" if ok else "Korean passports: A999A9999 or A99999999"
    else:
        ok = bool(_PASSPORT_ICAO.match(value))
        detail = "" if ok else "expected 1-9 characters A-Z, 0-9"
    return (Check("passport_number", ok, ReasonCode.PASSPORT_NUMBER_INVALID, detail),)


def check_dates(
    *, today: date, issue_date: date | None = None, expiry_date: date | None = None
) -> tuple[Check, ...]:
    """`issue_date` (not in the future) and `expiry` (not past, after issue) checks."""
    checks: list[Check] = []
    if issue_date is not None:
        ok = issue_date <= today
        detail = "" if ok else "issue date is after today"
        checks.append(Check("issue_date", ok, ReasonCode.ISSUE_DATE_IN_FUTURE, detail))
    if expiry_date is not None:
        detail = ""
        if expiry_date < today:
            detail = "expiry date is before today"
        elif issue_date is not None and expiry_date <= issue_date:
            detail = "expiry date is not after the issue date"
        checks.append(Check("expiry", not detail, ReasonCode.DOCUMENT_EXPIRED, detail))
    return tuple(checks)
