"""ICAO 9303 TD3 MRZ: check digits, parsing, OCR repairs, generation and cross-checks.

Test vectors:
- ICAO Doc 9303 Part 4 (TD3 specimen, Appendix A), the fictional Utopian passport of
  Anna Maria Eriksson:
      P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<
      L898902C36UTO7408122F1204159ZE184226B<<<<<10
  Published check digits: document number 6, birth date 2, expiry 9, optional data 1,
  composite 0.
- ICAO Doc 9303 Part 3, 4.9 worked example: the date field `520727` has check digit 3
  (5*7 + 2*3 + 0*1 + 7*7 + 2*3 + 7*1 = 103 -> 3).
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faceproof.documents import DocumentError, check_digit, cross_check, generate_td3, parse_td3
from faceproof.reasons import ReasonCode

TODAY = date(2026, 11, 27)
LINE1 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
LINE2 = "L898902C36UTO7408122F1204159ZE184226B<<<<<10"
SPECIMEN = f"{LINE1}\n{LINE2}"


@pytest.mark.parametrize(
    ("field", "digit"),
    [
        ("520727", "3"),  # 9303 Part 3 worked example
        ("L898902C3", "6"),
        ("740812", "2"),
        ("120415", "9"),
        ("ZE184226B<<<<<", "1"),
        ("L898902C36" + "7408122" + "120415" + "9" + "ZE184226B<<<<<" + "1", "0"),
        ("<<<<<<<<<", "0"),
    ],
)
def test_check_digit_vectors(field: str, digit: str) -> None:
    assert check_digit(field) == digit


def test_check_digit_rejects_foreign_characters() -> None:
    with pytest.raises(ValueError, match="not allowed"):
        check_digit("AB-1")


def test_icao_specimen_parses_with_every_check() -> None:
    mrz = parse_td3(SPECIMEN, today=TODAY)
    assert mrz.valid
    assert [c.name for c in mrz.checks] == [
        "mrz_document_number",
        "mrz_birth_date",
        "mrz_expiry_date",
        "mrz_optional_data",
        "mrz_composite",
    ]
    assert mrz.document_code == "P"
    assert mrz.issuing_state == "UTO"
    assert mrz.nationality == "UTO"
    assert mrz.primary_identifier == "ERIKSSON"
    assert mrz.secondary_identifier == "ANNA MARIA"
    assert mrz.document_number == "L898902C3"
    assert mrz.birth_date == date(1974, 8, 12)
    assert mrz.expiry_date == date(2012, 4, 15)
    assert mrz.sex == "F"
    assert mrz.optional_data == "ZE184226B"
    assert mrz.repairs == ()
    assert "L898902C3" not in repr(mrz)


@pytest.mark.parametrize(
    ("index", "char", "failing"),
    [
        (0, "M", {"mrz_document_number", "mrz_composite"}),
        (9, "7", {"mrz_document_number", "mrz_composite"}),
        (14, "5", {"mrz_birth_date", "mrz_composite"}),
        (23, "5", {"mrz_expiry_date", "mrz_composite"}),
        (30, "F", {"mrz_optional_data", "mrz_composite"}),
        (43, "1", {"mrz_composite"}),
        (20, "M", set()),  # sex is not covered by any check digit
    ],
)
def test_single_corruption_fails_the_right_checks(index: int, char: str, failing: set[str]) -> None:
    line2 = LINE2[:index] + char + LINE2[index + 1 :]
    assert line2 != LINE2
    mrz = parse_td3(f"{LINE1}\n{line2}", today=TODAY)
    assert {c.name for c in mrz.checks if not c.ok} == failing
    assert all(c.code is ReasonCode.MRZ_INVALID for c in mrz.checks)


def test_ocr_repairs_only_where_unambiguous() -> None:
    # O for 0 in the birth date, I for 1 in the expiry date, 0 for O in the nationality,
    # lower case and stray spaces.
    noisy2 = "L898902C36UT07408I22F12O4159ZE184226B<<<<<10"
    noisy = f"  {LINE1.lower()}  \n{noisy2[:10]} {noisy2[10:]}"
    mrz = parse_td3(noisy, today=TODAY)
    assert mrz.valid
    assert mrz.birth_date == date(1974, 8, 12)
    assert mrz.nationality == "UTO"
    assert set(mrz.repairs) == {"nationality", "birth_date", "expiry_date"}
    # Without repair the same text fails its checks.
    raw = parse_td3(noisy, today=TODAY, repair=False)
    assert not raw.valid


def test_document_number_is_never_repaired() -> None:
    # An O in the alphanumeric document number stays an O, so its check digit fails.
    line2 = "L8989O2C3" + LINE2[9:]
    mrz = parse_td3(f"{LINE1}\n{line2}", today=TODAY)
    assert mrz.document_number == "L8989O2C3"
    assert not mrz.valid
    assert "document_number" not in " ".join(mrz.repairs)


@pytest.mark.parametrize(
    "text",
    [
        LINE1,  # one line
        f"{LINE1}\n{LINE2[:-1]}",  # 43 characters
        f"{LINE1}\n{LINE2}\n{LINE2}",  # three lines
        f"{LINE1}\n{LINE2[:-1]}*",  # foreign character
        f"I{LINE1[1:]}\n{LINE2}",  # not a passport (I = ID card code)
    ],
)
def test_structural_errors_raise_mrz_invalid(text: str) -> None:
    with pytest.raises(DocumentError) as info:
        parse_td3(text, today=TODAY)
    assert info.value.code is ReasonCode.MRZ_INVALID


def test_generate_reproduces_the_icao_specimen() -> None:
    lines = generate_td3(
        issuing_state="UTO",
        surname="Eriksson",
        given_names="Anna Maria",
        document_number="L898902C3",
        nationality="UTO",
        birth_date=date(1974, 8, 12),
        sex="F",
        expiry_date=date(2012, 4, 15),
        optional_data="ZE184226B",
    )
    assert lines == (LINE1, LINE2)


def test_generate_rejects_bad_input() -> None:
    base = {
        "issuing_state": "KOR",
        "surname": "HONG",
        "given_names": "GILDONG",
        "document_number": "M123A4567",
        "nationality": "KOR",
        "birth_date": date(1990, 1, 1),
        "sex": "M",
        "expiry_date": date(2030, 1, 1),
    }
    for key, bad in [
        ("document_number", "M123-4567"),
        ("document_number", "M123A45678"),
        ("sex", "Q"),
        ("nationality", "KOREA"),
        ("optional_data", "X" * 15),
    ]:
        with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
            generate_td3(**{**base, key: bad})  # type: ignore[arg-type]


names = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12)


@given(
    surname=names,
    given=st.lists(names, min_size=1, max_size=3),
    number=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=9),
    birth=st.dates(min_value=date(1927, 12, 1), max_value=TODAY),
    expiry=st.dates(min_value=date(2000, 1, 1), max_value=date(2076, 11, 27)),
    sex=st.sampled_from(["M", "F", "X"]),
    optional=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", max_size=14),
)
def test_generate_parse_round_trip(
    surname: str,
    given: list[str],
    number: str,
    birth: date,
    expiry: date,
    sex: str,
    optional: str,
) -> None:
    l1, l2 = generate_td3(
        issuing_state="KOR",
        surname=surname,
        given_names=" ".join(given),
        document_number=number,
        nationality="KOR",
        birth_date=birth,
        sex=sex,
        expiry_date=expiry,
        optional_data=optional,
    )
    mrz = parse_td3(f"{l1}\n{l2}", today=TODAY, repair=False)
    assert mrz.valid
    assert mrz.document_number == number
    assert mrz.birth_date == birth
    assert mrz.expiry_date == expiry
    assert mrz.sex == sex
    assert mrz.optional_data == optional
    full = f"{surname}<<{'<'.join(given)}"
    if len(full) <= 39:
        assert mrz.primary_identifier == surname
        assert mrz.secondary_identifier == " ".join(given)


def test_cross_check_against_printed_fields() -> None:
    mrz = parse_td3(SPECIMEN, today=TODAY)
    printed = {
        "number": "L898902C3",
        "birth_date": "1974-08-12",
        "expiry_date": "2012-04-15",
        "sex": "F",
        "nationality": "UTO",
        "name_latin": "Eriksson Anna-Maria",
    }
    check = cross_check(mrz, printed)
    assert check.ok
    assert check.code is ReasonCode.MRZ_MISMATCH
    bad = cross_check(mrz, {**printed, "birth_date": "1974-08-13", "sex": "M"})
    assert not bad.ok
    assert bad.detail == "differs: birth_date, sex"
    assert bad.rejects
    assert not cross_check(mrz, {**printed, "name_latin": "ERIKSON ANNA MARIA"}).ok
