"""Registration, licence and passport number rules and document dates.

Test vectors (hand-computed here, so they do not depend on the code under test):

- Citizen `900101-1234568`: digits 9,0,0,1,0,1,1,2,3,4,5,6 times weights 2,3,4,5,6,7,8,9,2,3,4,5
  = 18+0+0+5+0+7+8+18+6+12+20+30 = 124; 124 mod 11 = 3; (11 - 3) mod 10 = 8.
- Foreigner `900101-5234561`: 18+0+0+5+0+7+40+18+6+12+20+30 = 156; 156 mod 11 = 2;
  (13 - 2) mod 10 = 1.
- Citizen born 2000s `050505-3000001`: 0+15+0+25+0+35+24+0+0+0+0+0 = 99 = 9 x 11, residue 0;
  (11 - 0) mod 10 = 1. (Residue 10 also gives 1: see `test_residues_0_and_10_collide`.)
The weights and the citizen/foreigner formulas are the published scheme of the 주민등록번호
check digit (Resident Registration Act enforcement rules, pre-October-2020 numbers).
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faceproof.documents import (
    Check,
    DocumentError,
    check_dates,
    check_licence_number,
    check_passport_number,
    check_registration_number,
    parse_licence_number,
    parse_registration_number,
    rrn_check_digit,
)
from faceproof.documents.validators import RRN_WEIGHTS
from faceproof.reasons import ReasonCode

TODAY = date(2026, 11, 27)


def _by_name(checks: tuple[Check, ...]) -> dict[str, Check]:
    return {c.name: c for c in checks}


@pytest.mark.parametrize(
    ("number", "birth", "sex", "foreigner"),
    [
        ("900101-1234568", date(1990, 1, 1), "M", False),
        ("9001011234568", date(1990, 1, 1), "M", False),
        ("900101-5234561", date(1990, 1, 1), "M", True),
        ("050505-3000001", date(2005, 5, 5), "M", False),
    ],
)
def test_hand_computed_vectors(number: str, birth: date, sex: str, foreigner: bool) -> None:
    parsed = parse_registration_number(number, today=TODAY)
    assert parsed.birth_date == birth
    assert parsed.sex == sex
    assert parsed.foreigner is foreigner
    assert parsed.check_digit_ok
    assert parsed.formatted == number if "-" in number else True


def test_check_digit_function_matches_hand_vectors() -> None:
    assert rrn_check_digit("900101123456", foreigner=False) == 8
    assert rrn_check_digit("900101523456", foreigner=True) == 1
    assert rrn_check_digit("050505300000", foreigner=False) == 1
    with pytest.raises(ValueError, match="12 digits"):
        rrn_check_digit("12345", foreigner=False)


@pytest.mark.parametrize(
    ("digit", "century", "sex", "foreigner"),
    [
        ("9", 1800, "M", False),
        ("0", 1800, "F", False),
        ("1", 1900, "M", False),
        ("2", 1900, "F", False),
        ("3", 2000, "M", False),
        ("4", 2000, "F", False),
        ("5", 1900, "M", True),
        ("6", 1900, "F", True),
        ("7", 2000, "M", True),
        ("8", 2000, "F", True),
    ],
)
def test_gender_century_digit(digit: str, century: int, sex: str, foreigner: bool) -> None:
    parsed = parse_registration_number(f"010203-{digit}000000", today=TODAY)
    assert parsed.birth_date == date(century + 1, 2, 3)
    assert (parsed.sex, parsed.foreigner) == (sex, foreigner)


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("900230-1234567", "30 February"),
        ("901301-1234567", "month 13"),
        ("990101-3234567", "2099: in the future"),
        ("900101-123456", "12 digits"),
        ("900101-12345678", "14 digits"),
        ("9O0101-1234567", "a letter"),
        ("", "empty"),
    ],
)
def test_invalid_numbers_reject(number: str, why: str) -> None:
    with pytest.raises(DocumentError) as info:
        parse_registration_number(number, today=TODAY)
    assert info.value.code is ReasonCode.RRN_INVALID, why
    checks = check_registration_number(number, today=TODAY)
    assert [(c.name, c.ok, c.code) for c in checks] == [
        ("rrn_format", False, ReasonCode.RRN_INVALID)
    ]
    assert checks[0].rejects


def test_failed_check_digit_is_a_warning_not_a_rejection() -> None:
    checks = _by_name(check_registration_number("900101-1234567", today=TODAY))
    fmt, cd = checks["rrn_format"], checks["rrn_check_digit"]
    assert fmt.ok
    assert not cd.ok
    assert cd.code is ReasonCode.RRN_CHECK_DIGIT
    assert not cd.rejects  # a WARNING: post-2020 numbers


def test_citizen_or_foreigner_group_is_enforced_when_asked() -> None:
    assert check_registration_number("900101-5234561", today=TODAY, foreigner=True)[0].ok
    wrong = check_registration_number("900101-5234561", today=TODAY, foreigner=False)
    assert not wrong[0].ok
    assert "citizen" in wrong[0].detail
    assert not check_registration_number("900101-1234568", today=TODAY, foreigner=True)[0].ok


def test_residues_0_and_10_collide() -> None:
    # Documented weakness of the (11 - S mod 11) mod 10 scheme: residues 0 and 10 both give 1.
    assert (11 - 0) % 10 == (11 - 10) % 10 == 1


# --- properties --------------------------------------------------------------------------

birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)


def _make(birth: date, serial: str, *, female: bool, foreigner: bool) -> str:
    base = (5 if foreigner else 1) + (2 if birth.year >= 2000 else 0)
    first12 = birth.strftime("%y%m%d") + str(base + female) + serial
    return first12 + str(rrn_check_digit(first12, foreigner=foreigner))


@given(birth_dates, st.text("0123456789", min_size=5, max_size=5), st.booleans(), st.booleans())
def test_generated_valid_numbers_validate(
    birth: date, serial: str, female: bool, foreigner: bool
) -> None:
    number = _make(birth, serial, female=female, foreigner=foreigner)
    parsed = parse_registration_number(number, today=TODAY)
    assert parsed.check_digit_ok
    assert parsed.birth_date == birth
    assert parsed.foreigner is foreigner
    assert parsed.sex == ("F" if female else "M")


@given(
    birth_dates,
    st.text("0123456789", min_size=5, max_size=5),
    st.booleans(),
    st.integers(min_value=7, max_value=12),
    st.integers(min_value=1, max_value=9),
)
def test_single_digit_corruption_breaks_the_check_digit(
    birth: date, serial: str, foreigner: bool, position: int, delta: int
) -> None:
    """Changing one serial digit (positions 8-12) or the check digit is caught, except for the
    documented residue 0/10 collision."""
    number = _make(birth, serial, female=False, foreigner=foreigner)
    digits = list(number)
    digits[position] = str((int(digits[position]) + delta) % 10)
    corrupted = "".join(digits)
    parsed = parse_registration_number(corrupted, today=TODAY)
    if position == 12:
        assert not parsed.check_digit_ok
        return

    def residue(s: str) -> int:
        return sum(w * int(d) for w, d in zip(RRN_WEIGHTS, s[:12], strict=True)) % 11

    collision = {residue(number), residue(corrupted)} == {0, 10}
    assert parsed.check_digit_ok is collision


# --- driver's licence --------------------------------------------------------------------


@pytest.mark.parametrize("number", ["11-90-123456-01", "119012345601", "28-05-000001-99"])
def test_valid_licence_numbers(number: str) -> None:
    assert check_licence_number(number, today=TODAY)[0].ok


def test_licence_year_window() -> None:
    assert parse_licence_number("11-90-123456-01", today=TODAY).year == 1990
    assert parse_licence_number("11-24-123456-01", today=TODAY).year == 2024


@pytest.mark.parametrize(
    ("number", "birth", "why"),
    [
        ("27-90-123456-01", None, "region 27 does not exist"),
        ("10-90-123456-01", None, "region 10"),
        ("29-90-123456-01", None, "region 29"),
        ("11-55-123456-01", None, "1955: before 1960"),
        ("11-20-123456-01", date(2010, 1, 1), "licensed at 10"),
        ("11-90-12345-01", None, "5-digit serial"),
        ("서울-90-123456-01", None, "old region names are not accepted"),
    ],
)
def test_invalid_licence_numbers(number: str, birth: date | None, why: str) -> None:
    checks = check_licence_number(number, today=TODAY, birth_date=birth)
    assert not checks[0].ok, why
    assert checks[0].code is ReasonCode.LICENCE_NUMBER_INVALID


# --- passports ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "nationality", "ok"),
    [
        ("M123A4567", "KOR", True),  # since December 2021
        ("M12345678", "KOR", True),  # older Korean format
        ("m123a4567", "KOR", True),  # case-insensitive
        ("M1234567", "KOR", False),
        ("MM2345678", "KOR", False),
        ("1234A5678", "KOR", False),
        ("L898902C3", "UTO", True),  # ICAO 9303 specimen number
        ("L898902C3", "KOR", False),
        ("ABCDEFGHIJ", "USA", False),  # 10 characters
        ("AB-12", None, False),
    ],
)
def test_passport_numbers(number: str, nationality: str | None, ok: bool) -> None:
    check = check_passport_number(number, nationality=nationality)[0]
    assert check.ok is ok
    assert check.code is ReasonCode.PASSPORT_NUMBER_INVALID


# --- dates -------------------------------------------------------------------------------


def test_dates_with_injected_clock() -> None:
    # Issued today, expiring today: both still fine (expiry is the last valid day).
    ok = _by_name(check_dates(today=TODAY, issue_date=date(2020, 1, 1), expiry_date=TODAY))
    assert set(ok) == {"issue_date", "expiry"}
    assert all(c.ok for c in ok.values())
    assert _by_name(check_dates(today=TODAY, issue_date=TODAY))["issue_date"].ok
    expired = _by_name(check_dates(today=TODAY, expiry_date=TODAY - timedelta(days=1)))
    assert not expired["expiry"].ok
    assert expired["expiry"].code is ReasonCode.DOCUMENT_EXPIRED
    future = _by_name(check_dates(today=TODAY, issue_date=TODAY + timedelta(days=1)))
    assert not future["issue_date"].ok
    assert future["issue_date"].code is ReasonCode.ISSUE_DATE_IN_FUTURE
    bad = _by_name(check_dates(today=TODAY, issue_date=TODAY, expiry_date=TODAY))
    assert not bad["expiry"].ok
    assert "not after the issue date" in bad["expiry"].detail
    assert check_dates(today=TODAY) == ()
