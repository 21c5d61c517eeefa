"""Fuzzing the MRZ parser and check digits (`documents/mrz.py`) and the registration-number,
licence and passport validators (`documents/validators.py`).

These read OCR output, so any text may arrive. Properties: a result or `DocumentError` with the
field's reason code (`mrz_invalid`, `rrn_invalid`, `licence_number_invalid`); the `check_*`
functions never raise; a parsed MRZ is internally consistent (a check passes exactly when its
digit recomputes); and only ASCII digits make a registration number.
"""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from faceproof.documents.errors import DocumentError
from faceproof.documents.mrz import TD3, TD3_LENGTH, check_digit, generate_td3, parse_td3
from faceproof.documents.validators import (
    RegistrationNumber,
    check_licence_number,
    check_passport_number,
    check_registration_number,
    parse_licence_number,
    parse_registration_number,
    rrn_check_digit,
)
from test_fuzz_support import fuzz_settings, outcome

TODAY = date(2026, 5, 1)
MRZ_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
#: What OCR and hostile input may add: lower case, confusables, spaces, line breaks of every
#: kind `str.splitlines` knows, full-width and other Unicode digits, letters that change length
#: when upper-cased.
NOISE = st.sampled_from(
    [*"abcxyz <\t\r\n\x0b\x0c\x1c\x85\u2028", "０", "٣", "߁", "²", "ß", "ﬁ", "ı", "İ", "\ud800"]
)
CHARS = st.one_of(st.sampled_from(MRZ_ALPHABET), NOISE)

_VALID = generate_td3(
    issuing_state="KOR",
    surname="HONG",
    given_names="GIL DONG",
    document_number="M12345678",
    nationality="KOR",
    birth_date=date(1990, 1, 1),
    sex="M",
    expiry_date=date(2031, 2, 3),
    optional_data="1234567",
)
VALID_MRZ = "\n".join(_VALID)

dates = st.dates(date(1930, 1, 1), date(2060, 12, 31))


@st.composite
def generated_mrz(draw: st.DrawFn) -> str:
    letters = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12)
    line1, line2 = generate_td3(
        issuing_state=draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3)),
        surname=draw(letters),
        given_names=draw(letters),
        document_number=draw(st.text(MRZ_ALPHABET[:-1], min_size=1, max_size=9)),
        nationality=draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3)),
        birth_date=draw(dates),
        sex=draw(st.sampled_from("MFX<")),
        expiry_date=draw(dates),
        optional_data=draw(st.text(MRZ_ALPHABET, max_size=14)),
    )
    return f"{line1}\n{line2}"


@st.composite
def mutated_mrz(draw: st.DrawFn) -> str:
    text = list(draw(st.one_of(st.just(VALID_MRZ), generated_mrz())))
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(text) - 1))
        op = draw(st.sampled_from(["sub", "sub", "ins", "del", "swap"]))
        if op == "sub":
            text[at] = draw(CHARS)
        elif op == "ins":
            text.insert(at, draw(CHARS))
        elif op == "del" and len(text) > 1:
            del text[at]
        else:
            other = draw(st.integers(0, len(text) - 1))
            text[at], text[other] = text[other], text[at]
    return "".join(text)


def _consistent(td3: TD3) -> None:
    assert len(td3.line1) == len(td3.line2) == TD3_LENGTH
    assert td3.line1[0] == "P"
    for line in (td3.line1, td3.line2):
        assert set(line) <= set(MRZ_ALPHABET)
    by_name = {c.name: c for c in td3.checks}
    l2 = td3.line2
    expected = {
        "mrz_document_number": check_digit(l2[0:9]) == l2[9],
        "mrz_birth_date": check_digit(l2[13:19]) == l2[19],
        "mrz_expiry_date": check_digit(l2[21:27]) == l2[27],
        "mrz_composite": check_digit(l2[0:10] + l2[13:20] + l2[21:43]) == l2[43],
    }
    for name, ok in expected.items():
        assert by_name[name].ok == ok, name
    assert td3.valid == all(c.ok for c in td3.checks)


@fuzz_settings(400)
@given(st.one_of(mutated_mrz(), st.text(CHARS, max_size=100), st.text(max_size=100)))
def test_mrz_parser(text: str) -> None:
    for repair in (True, False):
        result = outcome(lambda: parse_td3(text, today=TODAY, repair=repair), DocumentError)  # noqa: B023
        if isinstance(result, DocumentError):
            assert result.code.value == "mrz_invalid"
        else:
            _consistent(result)


@fuzz_settings(150)
@given(generated_mrz())
def test_generated_mrz_parses_valid(text: str) -> None:
    td3 = parse_td3(text, today=TODAY, repair=False)
    assert td3.valid
    _consistent(td3)


@fuzz_settings(200)
@given(st.text(max_size=60))
def test_check_digit(field: str) -> None:
    """A digit for MRZ characters; ValueError (its documented error) for anything else."""
    if set(field) <= set(MRZ_ALPHABET):
        digit = check_digit(field)
        assert len(digit) == 1
        assert digit.isdigit()
    else:
        try:
            check_digit(field)
        except ValueError:
            return
        raise AssertionError(f"check_digit accepted {field!r}")


# --- registration numbers, licence and passport numbers ----------------------------------------

GENDER_CENTURY = {"1": 1900, "2": 1900, "3": 2000, "4": 2000, "5": 1900, "6": 1900}


@st.composite
def valid_rrn(draw: st.DrawFn) -> str:
    gender = draw(st.sampled_from(sorted(GENDER_CENTURY)))
    century = GENDER_CENTURY[gender]
    born = draw(st.dates(date(century, 1, 1), min(date(century + 99, 12, 31), TODAY)))
    first12 = born.strftime("%y%m%d") + gender + draw(st.text("0123456789", min_size=5, max_size=5))
    check = rrn_check_digit(first12, foreigner=gender in "5678")
    return f"{first12[:6]}-{first12[6:]}{check}"


NUMBER_CHARS = st.one_of(st.sampled_from("0123456789-"), NOISE, st.sampled_from("１２٣߁𝟗"))


@st.composite
def mutated_number(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    text = list(draw(base))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, max(len(text) - 1, 0)))
        op = draw(st.sampled_from(["sub", "ins", "del"]))
        if op == "sub" and text:
            text[at] = draw(NUMBER_CHARS)
        elif op == "ins":
            text.insert(at, draw(NUMBER_CHARS))
        elif text:
            del text[at]
    return "".join(text)


numbers = st.one_of(
    mutated_number(valid_rrn()), st.text(NUMBER_CHARS, max_size=20), st.text(max_size=20)
)


@fuzz_settings(400)
@given(numbers, st.sampled_from([None, True, False]))
def test_registration_numbers(number: str, foreigner: bool | None) -> None:
    result = outcome(lambda: parse_registration_number(number, today=TODAY), DocumentError)
    if isinstance(result, DocumentError):
        assert result.code.value == "rrn_invalid"
        if len(number.strip()) >= 6:  # the message names the rule, never the number
            assert number.strip() not in result.detail
    else:
        assert isinstance(result, RegistrationNumber)
        assert result.digits.isascii()
        assert result.digits.isdigit()
        assert len(result.digits) == 13
        assert result.birth_date <= TODAY
    checks = check_registration_number(number, today=TODAY, foreigner=foreigner)
    assert checks[0].name == "rrn_format"
    assert checks[0].ok == (
        isinstance(result, RegistrationNumber)
        and (foreigner is None or result.foreigner == foreigner)
    )


def test_unicode_digits_are_not_a_registration_number() -> None:
    """Found by the fuzzer: `\\d` matched full-width and other Unicode digits, so `９００１０１-…`
    parsed as a registration number whose pseudonym (documents.pseudonymise hashes ASCII only)
    differs from the same number typed in ASCII: one person, two subjects for the line limit."""
    ascii_number = "900101-1234568"
    fullwidth = ascii_number.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert isinstance(parse_registration_number(ascii_number, today=TODAY), RegistrationNumber)
    result = outcome(lambda: parse_registration_number(fullwidth, today=TODAY), DocumentError)
    assert isinstance(result, DocumentError)
    result = outcome(
        lambda: parse_licence_number("１１-９０-１２３４５６-０１", today=TODAY), DocumentError
    )
    assert isinstance(result, DocumentError)


licence_numbers = st.one_of(
    mutated_number(
        st.builds(
            "{:02d}-{:02d}-{:06d}-{:02d}".format,
            st.integers(0, 99),
            st.integers(0, 99),
            st.integers(0, 999_999),
            st.integers(0, 99),
        )
    ),
    st.text(NUMBER_CHARS, max_size=20),
)


@fuzz_settings(200)
@given(licence_numbers, st.one_of(st.none(), dates))
def test_licence_numbers(number: str, birth: date | None) -> None:
    result = outcome(
        lambda: parse_licence_number(number, today=TODAY, birth_date=birth), DocumentError
    )
    if isinstance(result, DocumentError):
        assert result.code.value == "licence_number_invalid"
    else:
        assert result.formatted.isascii()
        assert result.year <= TODAY.year
    (check,) = check_licence_number(number, today=TODAY, birth_date=birth)
    assert check.ok == (not isinstance(result, DocumentError))


@fuzz_settings(150)
@given(
    st.one_of(st.text(max_size=12), st.text(MRZ_ALPHABET, max_size=12)),
    st.sampled_from([None, "KOR", "USA"]),
)
def test_passport_numbers(number: str, nationality: str | None) -> None:
    (check,) = check_passport_number(number, nationality=nationality)
    if check.ok:
        assert number.strip().upper().isascii()
