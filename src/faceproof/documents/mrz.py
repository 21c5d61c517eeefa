"""ICAO 9303 TD3 (passport, 2 x 44 characters) machine-readable zone: parse, check, generate.

Written in-house from ICAO Doc 9303 Part 3 (check digits, 4.9) and Part 4 (TD3 layout); the PyPI
`mrz` (GPLv3) and `fastmrz` (AGPLv3) packages are not used.

Check digit (Part 3, 4.9): characters map to values `0-9` -> 0-9, `A-Z` -> 10-35, `<` -> 0;
multiply by the repeating weights 7, 3, 1, sum, and take the sum mod 10.

TD3 layout (1-based positions):

    line 1:  1 document code `P` | 2 type or `<` | 3-5 issuing state | 6-44 name
             (primary identifier `<<` secondary identifier, words joined by `<`)
    line 2:  1-9 document number | 10 check | 11-13 nationality | 14-19 birth date YYMMDD |
             20 check | 21 sex (M, F, < or X) | 22-27 expiry YYMMDD | 28 check |
             29-42 optional data | 43 check (`<` allowed when optional data is all `<`) |
             44 composite check over 1-10, 14-20 and 22-43

OCR tolerance (`parse_td3(..., repair=True)`): only where the field's type makes the reading
unambiguous. In digit-only positions (birth date, expiry date, every check digit) the letters
`O Q D -> 0`, `I L -> 1`, `Z -> 2`, `S -> 5`, `G -> 6`, `B -> 8` are replaced by digits; in
letter-only positions (document code, issuing state, nationality, names) the digits
`0 -> O`, `1 -> I`, `2 -> Z`, `5 -> S`, `6 -> G`, `8 -> B` are replaced by letters. The document
number and optional data mix letters and digits, so they are never changed. Lowercase letters
are upper-cased and spaces inside a line are removed; every repair is listed in
`TD3.repairs` (field names only). The check digits then confirm or refute the repaired reading.

Two-digit years: birth dates take the latest century that is not after `today`; expiry dates
are 20YY unless that is more than 50 years after `today` (then 19YY).
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
    "MRZ_FORMATS",
    "TD3",
    "TD3_LENGTH",
    "check_digit",
    "cross_check",
    "generate_td3",
    "mrz_name",
    "parse_mrz",
    "parse_td3",
]

TD3_LENGTH: Final = 44
_WEIGHTS: Final = (7, 3, 1)
_TO_DIGIT: Final = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1",
                                  "Z": "2", "S": "5", "G": "6", "B": "8"})  # fmt: skip
_TO_LETTER: Final = str.maketrans({"0": "O", "1": "I", "2": "Z", "5": "S", "6": "G", "8": "B"})
_VALID: Final = re.compile(r"^[A-Z0-9<]+$")
_SEXES: Final = {"M": "M", "F": "F", "X": "X", "<": "X"}


def _value(ch: str) -> int:
    if "0" <= ch <= "9":  # not isdigit(): "²" and "٣" are digits too (found by fuzzing)
        return ord(ch) - 48
    if "A" <= ch <= "Z":
        return ord(ch) - 55
    if ch == "<":
        return 0
    raise ValueError(f"character {ch!r} is not allowed in an MRZ")


def check_digit(field: str) -> str:
    """ICAO 9303 Part 3 check digit (7-3-1 weights, mod 10) of an MRZ field."""
    return str(sum(_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(field)) % 10)


@dataclass(frozen=True, slots=True, repr=False)
class TD3:
    """A parsed TD3 MRZ. `checks` holds one Check per check digit (all `mrz_invalid`)."""

    line1: str
    line2: str
    document_code: str
    issuing_state: str
    primary_identifier: str
    secondary_identifier: str
    document_number: str
    nationality: str
    birth_date: date | None
    sex: str
    expiry_date: date | None
    optional_data: str
    checks: tuple[Check, ...]
    repairs: tuple[str, ...] = ()
    #: "TD3" (passport, 2 x 44), "TD1" (ID card, 3 x 30), "TD2" (2 x 36), "MRV-A" (visa,
    #: 2 x 44) or "MRV-B" (visa, 2 x 36): one result type for every ICAO 9303 format.
    format: str = "TD3"
    line3: str = ""

    def __repr__(self) -> str:  # the MRZ carries the document number: keep it out of logs
        return f"TD3(format={self.format!r}, valid={self.valid}, repairs={self.repairs!r})"

    @property
    def valid(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def text(self) -> str:
        return "\n".join(ln for ln in (self.line1, self.line2, self.line3) if ln)

    @property
    def name_latin(self) -> str:
        return f"{self.primary_identifier} {self.secondary_identifier}".strip()


def parse_td3(text: str, *, today: date, repair: bool = True) -> TD3:
    """Parse two 44-character lines (separated by a newline).

    Raises DocumentError(mrz_invalid) when the structure is unusable (line count or length,
    characters outside `A-Z0-9<`, not a `P` document). Failed check digits do not raise: they
    are `checks` with `ok=False`, so a caller can report every one of them.
    """
    lines = [ln.replace(" ", "").upper() for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) != 2 or any(len(ln) != TD3_LENGTH for ln in lines):
        raise DocumentError(ReasonCode.MRZ_INVALID, "a TD3 MRZ is 2 lines of 44 characters")
    l1, l2 = lines
    if not (_VALID.match(l1) and _VALID.match(l2)):
        raise DocumentError(ReasonCode.MRZ_INVALID, "MRZ characters must be A-Z, 0-9 or <")
    repairs: list[str] = []
    if repair:
        l1, l2 = _repair(l1, l2, repairs)
    if l1[0] != "P":
        raise DocumentError(ReasonCode.MRZ_INVALID, "a TD3 passport MRZ starts with P")

    names = l1[5:].rstrip("<")
    primary, _, secondary = names.partition("<<")
    checks = (
        _check("mrz_document_number", l2[0:9], l2[9]),
        _check("mrz_birth_date", l2[13:19], l2[19]),
        _check("mrz_expiry_date", l2[21:27], l2[27]),
        _optional_check(l2[28:42], l2[42]),
        _check("mrz_composite", l2[0:10] + l2[13:20] + l2[21:43], l2[43]),
    )
    return TD3(
        line1=l1,
        line2=l2,
        document_code=l1[0:2].rstrip("<"),
        issuing_state=l1[2:5].rstrip("<"),
        primary_identifier=primary.replace("<", " ").strip(),
        secondary_identifier=secondary.replace("<", " ").strip(),
        document_number=l2[0:9].rstrip("<"),
        nationality=l2[10:13].rstrip("<"),
        birth_date=_date(l2[13:19], today=today, birth=True),
        sex=_SEXES.get(l2[20], "X"),
        expiry_date=_date(l2[21:27], today=today, birth=False),
        optional_data=l2[28:42].rstrip("<"),
        checks=checks,
        repairs=tuple(repairs),
    )


def _repair(l1: str, l2: str, repairs: list[str]) -> tuple[str, str]:
    def fix(line: str, start: int, end: int, table: dict[int, str], name: str) -> str:
        part = line[start:end]
        fixed = part.translate(table)
        if fixed != part:
            repairs.append(name)
        return line[:start] + fixed + line[end:]

    l1 = fix(l1, 0, 1, _TO_LETTER, "document_code")
    l1 = fix(l1, 2, 5, _TO_LETTER, "issuing_state")
    l1 = fix(l1, 5, 44, _TO_LETTER, "name")
    l2 = fix(l2, 9, 10, _TO_DIGIT, "document_number_check")
    l2 = fix(l2, 10, 13, _TO_LETTER, "nationality")
    l2 = fix(l2, 13, 20, _TO_DIGIT, "birth_date")
    l2 = fix(l2, 21, 28, _TO_DIGIT, "expiry_date")
    if l2[42] != "<":
        l2 = fix(l2, 42, 43, _TO_DIGIT, "optional_data_check")
    l2 = fix(l2, 43, 44, _TO_DIGIT, "composite_check")
    if l1[2:5] == "KOR":
        # Korean passport numbers: a letter, 3 digits, a letter or digit, 4 digits (M12A3456
        # since 2021, M12345678 before): the positions say which of O/0, S/5, ... was printed.
        l2 = fix(l2, 0, 1, _TO_LETTER, "document_number")
        l2 = fix(l2, 1, 4, _TO_DIGIT, "document_number")
        l2 = fix(l2, 5, 9, _TO_DIGIT, "document_number")
    return l1, l2


def _check(name: str, field: str, digit: str) -> Check:
    ok = digit.isdigit() and check_digit(field) == digit
    return Check(name, ok, ReasonCode.MRZ_INVALID, "" if ok else f"{name} check digit fails")


def _optional_check(field: str, digit: str) -> Check:
    if digit == "<" and set(field) <= {"<"}:
        return Check("mrz_optional_data", True, ReasonCode.MRZ_INVALID)
    return _check("mrz_optional_data", field, digit)


def _date(yymmdd: str, *, today: date, birth: bool) -> date | None:
    if not yymmdd.isdigit():
        return None
    yy, mm, dd = int(yymmdd[0:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    if birth:
        year = 2000 + yy if 2000 + yy <= today.year else 1900 + yy
    else:
        year = 2000 + yy if 2000 + yy <= today.year + 50 else 1900 + yy
    try:
        d = date(year, mm, dd)
    except ValueError:
        return None
    if birth and d > today:
        try:
            d = date(year - 100, mm, dd)
        except ValueError:
            return None
    return d


def mrz_name(text: str) -> str:
    """Transliterate a Latin name to MRZ characters: upper case, separators -> `<`.

    Only ASCII letters survive (ICAO 9303 Part 3, 6.A has full tables for accented letters;
    not implemented: such letters are dropped).
    """
    out: list[str] = []
    for ch in text.upper():
        if "A" <= ch <= "Z":
            out.append(ch)
        elif ch in " -,'.<":
            out.append("<")
    return re.sub("<+", "<", "".join(out)).strip("<")


def generate_td3(
    *,
    issuing_state: str,
    surname: str,
    given_names: str,
    document_number: str,
    nationality: str,
    birth_date: date,
    sex: str,
    expiry_date: date,
    optional_data: str = "",
    document_type: str = "P",
) -> tuple[str, str]:
    """Build the two TD3 lines with every check digit, for specimens and tests."""
    number = document_number.upper()
    if not re.fullmatch(r"[A-Z0-9]{1,9}", number):
        raise ValueError("document number must be 1-9 characters A-Z, 0-9")
    for code_name, code_value in (("issuing_state", issuing_state), ("nationality", nationality)):
        if not re.fullmatch(r"[A-Z<]{1,3}", code_value.upper()):
            raise ValueError(f"{code_name} must be a 1-3 letter ICAO code")
    if sex not in ("M", "F", "X", "<"):
        raise ValueError("sex must be M, F, X or <")
    optional = optional_data.upper().replace(" ", "<")
    if not re.fullmatch(r"[A-Z0-9<]{0,14}", optional):
        raise ValueError("optional data has at most 14 characters A-Z, 0-9, <")
    code = (document_type.upper() + "<")[:2]
    name = f"{mrz_name(surname)}<<{mrz_name(given_names)}"[:39]
    line1 = f"{code}{issuing_state.upper():<3}{name}".replace(" ", "<").ljust(TD3_LENGTH, "<")
    num = number.ljust(9, "<")
    birth = birth_date.strftime("%y%m%d")
    expiry = expiry_date.strftime("%y%m%d")
    opt = optional.ljust(14, "<")
    opt_check = "<" if not optional else check_digit(opt)
    sex_char = "<" if sex == "X" else sex
    part1 = num + check_digit(num)
    part2 = birth + check_digit(birth)
    part3 = expiry + check_digit(expiry) + opt + opt_check
    composite = check_digit(part1 + part2 + part3)
    line2 = f"{part1}{nationality.upper():<3}{part2}{sex_char}{part3}{composite}".replace(" ", "<")
    return line1, line2


def cross_check(mrz: TD3, fields: dict[str, str]) -> Check:
    """Compare the MRZ with the printed fields that are present: `mrz_mismatch` if any differ.

    Compared: `number` (passport number), `birth_date`, `expiry_date`, `sex`, `nationality` and
    `name_latin` (after MRZ transliteration; the MRZ may truncate long names, so a printed name
    that starts with the MRZ name counts as equal when the MRZ name fills all 39 positions).
    """
    differ: list[str] = []
    if "number" in fields and fields["number"].strip().upper() != mrz.document_number:
        differ.append("number")
    for name, value in (("birth_date", mrz.birth_date), ("expiry_date", mrz.expiry_date)):
        if name in fields and (value is None or fields[name] != value.isoformat()):
            differ.append(name)
    if "sex" in fields and fields["sex"] != mrz.sex:
        differ.append("sex")
    if "nationality" in fields and fields["nationality"].strip().upper() != mrz.nationality:
        differ.append("nationality")
    if "name_latin" in fields:
        printed = mrz_name(fields["name_latin"])
        in_mrz = mrz_name(mrz.name_latin)
        full = len(mrz.line1[5:].rstrip("<")) >= 39
        if printed != in_mrz and not (full and printed.startswith(in_mrz)):
            differ.append("name_latin")
    detail = f"differs: {', '.join(differ)}" if differ else ""
    return Check("mrz_cross_check", not differ, ReasonCode.MRZ_MISMATCH, detail)


# --- TD1, TD2 and visas (ICAO 9303 Parts 5, 6 and 7) -------------------------------------------

#: (lines, characters per line) of each format `parse_mrz` knows.
MRZ_FORMATS: Final = {"TD3": (2, 44), "TD1": (3, 30), "TD2": (2, 36), "MRV-A": (2, 44),
                      "MRV-B": (2, 36)}  # fmt: skip


def parse_mrz(text: str, *, today: date, repair: bool = True) -> TD3:
    """Parse any ICAO 9303 MRZ by its shape: 3 x 30 is TD1 (ID cards), 2 x 36 TD2 (or MRV-B
    when it starts with `V`), 2 x 44 TD3 (or MRV-A when it starts with `V`).

    Same contract as `parse_td3` (structural errors raise `mrz_invalid`, failed check digits
    are `checks`), with the same check-digit function and positional repairs. Visas have no
    composite check digit (Part 7); TD1 and TD2 have one.
    """
    lines = [ln.replace(" ", "").upper() for ln in text.strip().splitlines() if ln.strip()]
    shape = (len(lines), len(lines[0]) if lines else 0)
    if any(len(ln) != shape[1] for ln in lines) or shape not in MRZ_FORMATS.values():
        raise DocumentError(ReasonCode.MRZ_INVALID, "an MRZ is 2 x 44, 2 x 36 or 3 x 30")
    if not all(_VALID.match(ln) for ln in lines):
        raise DocumentError(ReasonCode.MRZ_INVALID, "MRZ characters must be A-Z, 0-9 or <")
    visa = lines[0][0] in "V"
    if shape == (2, 44) and not visa:
        return parse_td3(text, today=today, repair=repair)
    if shape == (3, 30):
        return _parse_td1(lines, today=today, repair=repair)
    return _parse_two_line(lines, today=today, repair=repair, visa=visa)


def _fix(
    line: str, start: int, end: int, table: dict[int, str], name: str, repairs: list[str]
) -> str:
    part = line[start:end]
    fixed = part.translate(table)
    if fixed != part:
        repairs.append(name)
    return line[:start] + fixed + line[end:]


def _names(field: str) -> tuple[str, str]:
    primary, _, secondary = field.rstrip("<").partition("<<")
    return primary.replace("<", " ").strip(), secondary.replace("<", " ").strip()


def _parse_td1(lines: list[str], *, today: date, repair: bool) -> TD3:
    """TD1 (Part 5): line 1 code, state, number + check, optional data; line 2 birth + check,
    sex, expiry + check, nationality, optional data, composite; line 3 the name."""
    l1, l2, l3 = lines
    repairs: list[str] = []
    if repair:
        l1 = _fix(l1, 0, 1, _TO_LETTER, "document_code", repairs)
        l1 = _fix(l1, 2, 5, _TO_LETTER, "issuing_state", repairs)
        l2 = _fix(l2, 0, 7, _TO_DIGIT, "birth_date", repairs)
        l2 = _fix(l2, 8, 15, _TO_DIGIT, "expiry_date", repairs)
        l2 = _fix(l2, 15, 18, _TO_LETTER, "nationality", repairs)
        l2 = _fix(l2, 29, 30, _TO_DIGIT, "composite_check", repairs)
        l3 = _fix(l3, 0, 30, _TO_LETTER, "name", repairs)
    number, number_check = l1[5:14], l1[14]
    if number_check == "<" and l1[15:30].strip("<"):
        # A number longer than 9 characters goes on in the optional data, its check digit
        # last (Part 5, note j).
        rest = l1[15:30].split("<", 1)[0]
        number, number_check = number + rest[:-1], rest[-1]
    primary, secondary = _names(l3)
    checks = (
        _check("mrz_document_number", number, number_check),
        _check("mrz_birth_date", l2[0:6], l2[6]),
        _check("mrz_expiry_date", l2[8:14], l2[14]),
        _check("mrz_composite", l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29], l2[29]),
    )
    return TD3(
        line1=l1,
        line2=l2,
        line3=l3,
        format="TD1",
        document_code=l1[0:2].rstrip("<"),
        issuing_state=l1[2:5].rstrip("<"),
        primary_identifier=primary,
        secondary_identifier=secondary,
        document_number=number.rstrip("<"),
        nationality=l2[15:18].rstrip("<"),
        birth_date=_date(l2[0:6], today=today, birth=True),
        sex=_SEXES.get(l2[7], "X"),
        expiry_date=_date(l2[8:14], today=today, birth=False),
        optional_data=(l1[15:30] + l2[18:29]).strip("<"),
        checks=checks,
        repairs=tuple(repairs),
    )


def _parse_two_line(lines: list[str], *, today: date, repair: bool, visa: bool) -> TD3:
    """TD2 (Part 6) and visas (Part 7): line 1 as in TD3; line 2 as in TD3 up to the expiry
    check digit, then optional data and (TD2 only) the composite check digit."""
    l1, l2 = lines
    width = len(l1)
    repairs: list[str] = []
    if repair:
        l1 = _fix(l1, 0, 1, _TO_LETTER, "document_code", repairs)
        l1 = _fix(l1, 2, 5, _TO_LETTER, "issuing_state", repairs)
        l1 = _fix(l1, 5, width, _TO_LETTER, "name", repairs)
        l2 = _fix(l2, 9, 10, _TO_DIGIT, "document_number_check", repairs)
        l2 = _fix(l2, 10, 13, _TO_LETTER, "nationality", repairs)
        l2 = _fix(l2, 13, 20, _TO_DIGIT, "birth_date", repairs)
        l2 = _fix(l2, 21, 28, _TO_DIGIT, "expiry_date", repairs)
        if not visa:
            l2 = _fix(l2, width - 1, width, _TO_DIGIT, "composite_check", repairs)
    primary, secondary = _names(l1[5:])
    checks = [
        _check("mrz_document_number", l2[0:9], l2[9]),
        _check("mrz_birth_date", l2[13:19], l2[19]),
        _check("mrz_expiry_date", l2[21:27], l2[27]),
    ]
    if not visa:
        checks.append(_check("mrz_composite", l2[0:10] + l2[13:20] + l2[21:35], l2[35]))
    end = width if visa else width - 1
    return TD3(
        line1=l1,
        line2=l2,
        format=("MRV-A" if width == 44 else "MRV-B") if visa else "TD2",
        document_code=l1[0:2].rstrip("<"),
        issuing_state=l1[2:5].rstrip("<"),
        primary_identifier=primary,
        secondary_identifier=secondary,
        document_number=l2[0:9].rstrip("<"),
        nationality=l2[10:13].rstrip("<"),
        birth_date=_date(l2[13:19], today=today, birth=True),
        sex=_SEXES.get(l2[20], "X"),
        expiry_date=_date(l2[21:27], today=today, birth=False),
        optional_data=l2[28:end].rstrip("<"),
        checks=tuple(checks),
        repairs=tuple(repairs),
    )
