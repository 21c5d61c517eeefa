"""DocumentRead, privacy helpers (pseudonym, masking) and validate_document per type.

HMAC vector: RFC 4231 test case 2 (key "Jefe", data "what do ya want for nothing?") checks that
`pseudonymise` is plain HMAC-SHA256 over the normalised number; the key there is too short for
production, so the vector goes through `hmac` directly and the property tests use 32-byte keys.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import date

import pytest

from faceproof.documents import (
    FIELD_NAMES,
    Check,
    DocumentError,
    DocumentRead,
    DocumentType,
    PortraitBox,
    generate_td3,
    mask_number,
    mask_rrn,
    pseudonymise,
    validate_document,
)
from faceproof.errors import InputError
from faceproof.reasons import ReasonCode

TODAY = date(2026, 11, 27)
KEY = bytes(range(32))
RRN = "900101-1234568"  # hand-computed valid check digit (see test_documents_validators.py)


def test_six_stable_type_codes() -> None:
    assert [t.value for t in DocumentType] == [
        "kr_resident_card",
        "kr_driver_license",
        "kr_residence_card",
        "kr_merit_card",
        "kr_disability_card",
        "passport",
    ]
    assert len(FIELD_NAMES) == 13
    assert "license_number" in FIELD_NAMES


def test_hmac_is_rfc4231_compatible() -> None:
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert hmac.new(b"Jefe", b"what do ya want for nothing?", hashlib.sha256).hexdigest() == (
        expected
    )
    assert pseudonymise("9001011234568", KEY) == (
        hmac.new(KEY, b"9001011234568", hashlib.sha256).hexdigest()
    )


def test_pseudonym_properties() -> None:
    p = pseudonymise(RRN, KEY)
    assert len(p) == 64
    assert int(p, 16) >= 0
    assert "9001011234568" not in p
    assert pseudonymise("9001011234568", KEY) == p  # separators do not matter
    assert pseudonymise(" 900101 1234568 ", KEY) == p
    assert pseudonymise(RRN, bytes(32)) != p  # another key, another pseudonym
    assert pseudonymise("900101-1234567", KEY) != p
    assert pseudonymise("m123a4567", KEY) == pseudonymise("M123A4567", KEY)


def test_pseudonym_refuses_short_keys_and_empty_numbers() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        pseudonymise(RRN, b"short")
    with pytest.raises(DocumentError) as info:
        pseudonymise(" - ", KEY)
    assert info.value.code is ReasonCode.FIELD_UNREADABLE


def test_masks() -> None:
    assert mask_rrn("900101-1234568") == "900101-1******"
    assert mask_rrn("9001011234568") == "900101-1******"
    assert mask_number("11-90-123456-01") == "11-9*-******-**"
    assert mask_number("M123A4567") == "M12******"
    with pytest.raises(DocumentError) as info:
        mask_rrn("90010-11234568")
    assert info.value.code is ReasonCode.RRN_INVALID
    assert isinstance(info.value, InputError)


def test_document_read_validates_and_freezes() -> None:
    fields = {"name_ko": "홍길동", "number": RRN, "issue_date": "2020-01-02"}
    read = DocumentRead(DocumentType.KR_RESIDENT_CARD, fields, (), PortraitBox(1, 2, 3, 4))
    fields["number"] = "changed"
    assert read.fields["number"] == RRN  # a copy
    with pytest.raises(TypeError):
        read.fields["number"] = "x"  # type: ignore[index]
    for bad in (
        {"nickname": "x"},
        {"birth_date": "1990/01/01"},
        {"birth_date": "1990-02-30"},
        {"sex": "male"},
    ):
        with pytest.raises(ValueError, match=r"fields"):
            DocumentRead(DocumentType.PASSPORT, bad)
    with pytest.raises(ValueError, match="DocumentType"):
        DocumentRead("passport", {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="PortraitBox"):
        PortraitBox(0, 0, 0, 10)


def test_raw_number_never_in_repr_logs_or_default_dict(caplog: pytest.LogCaptureFixture) -> None:
    read = validate_document(
        DocumentType.KR_RESIDENT_CARD,
        {"name_ko": "홍길동", "number": RRN, "issue_date": "2020-01-02"},
        today=TODAY,
    )
    with caplog.at_level(logging.INFO):
        logging.getLogger("faceproof.test").info("read %r", read)
    assert "1234568" not in caplog.text
    assert "900101-1******" in caplog.text
    out = read.to_dict()
    assert out["fields"]["number"] == "900101-1******"
    assert read.to_dict(reveal=True)["fields"]["number"] == RRN


def test_resident_card_accepted_with_all_checks() -> None:
    read = validate_document(
        DocumentType.KR_RESIDENT_CARD,
        {"name_ko": "홍길동", "number": RRN, "issue_date": "2020-01-02"},
        today=TODAY,
        portrait=PortraitBox(730, 150, 230, 296),
    )
    assert read.accepted
    assert read.reasons == ()
    out = read.to_dict()
    assert out["type"] == "kr_resident_card"
    assert out["portrait"] == {"box": [730, 150, 230, 296]}
    assert {c["name"] for c in out["checks"]} >= {"rrn_format", "rrn_check_digit", "issue_date"}
    assert all(set(c) >= {"name", "ok", "code", "severity"} for c in out["checks"])


def test_missing_field_and_warning_do_not_reject_but_expiry_does() -> None:
    read = validate_document(
        DocumentType.KR_DRIVER_LICENSE,
        {
            "name_ko": "홍길동",
            "number": "900101-1234567",  # check digit off: a warning
            "issue_date": "2018-03-04",
            "expiry_date": "2026-11-26",  # yesterday
        },
        today=TODAY,
    )
    assert read.reasons == (
        ReasonCode.FIELD_UNREADABLE,
        ReasonCode.RRN_CHECK_DIGIT,
        ReasonCode.DOCUMENT_EXPIRED,
    )
    assert not read.accepted
    rejecting = [c.name for c in read.checks if c.rejects]
    assert rejecting == ["expiry"]


def test_licence_number_checked_against_birth_date() -> None:
    base = {
        "name_ko": "홍길동",
        "number": RRN,
        "issue_date": "2018-03-04",
        "expiry_date": "2028-12-31",
    }
    ok = validate_document(
        DocumentType.KR_DRIVER_LICENSE, {**base, "license_number": "11-10-123456-01"}, today=TODAY
    )
    assert ok.accepted
    young = validate_document(
        DocumentType.KR_DRIVER_LICENSE, {**base, "license_number": "11-95-123456-01"}, today=TODAY
    )
    assert young.reasons == (ReasonCode.LICENCE_NUMBER_INVALID,)


def test_residence_card_needs_a_foreigner_number() -> None:
    fields = {
        "name_latin": "NGUYEN VAN AN",
        "nationality": "VNM",
        "issue_date": "2024-01-02",
    }
    ok = validate_document(
        DocumentType.KR_RESIDENCE_CARD, {**fields, "number": "900101-5234561"}, today=TODAY
    )
    assert ok.accepted
    citizen = validate_document(
        DocumentType.KR_RESIDENCE_CARD, {**fields, "number": RRN}, today=TODAY
    )
    assert citizen.reasons == (ReasonCode.RRN_INVALID,)


def _passport_fields(**over: str) -> dict[str, str]:
    l1, l2 = generate_td3(
        issuing_state="KOR",
        surname="HONG",
        given_names="GILDONG",
        document_number="M123A4567",
        nationality="KOR",
        birth_date=date(1990, 1, 1),
        sex="M",
        expiry_date=date(2030, 5, 6),
    )
    fields = {
        "name_latin": "HONG GILDONG",
        "number": "M123A4567",
        "nationality": "KOR",
        "birth_date": "1990-01-01",
        "sex": "M",
        "issue_date": "2020-05-07",
        "expiry_date": "2030-05-06",
        "mrz": f"{l1}\n{l2}",
    }
    return {**fields, **over}


def test_passport_with_valid_mrz_is_accepted() -> None:
    read = validate_document(DocumentType.PASSPORT, _passport_fields(), today=TODAY)
    assert read.accepted, read.to_dict()
    names = [c.name for c in read.checks]
    assert "mrz_composite" in names
    assert "mrz_cross_check" in names
    assert read.to_dict()["fields"]["mrz"] == "<redacted>"


def test_passport_mrz_mismatch_and_bad_mrz() -> None:
    mismatch = validate_document(
        DocumentType.PASSPORT, _passport_fields(birth_date="1990-01-02"), today=TODAY
    )
    assert mismatch.reasons == (ReasonCode.MRZ_MISMATCH,)
    broken = _passport_fields()
    broken["mrz"] = broken["mrz"][:-1] + "9"
    bad = validate_document(DocumentType.PASSPORT, broken, today=TODAY)
    assert bad.reasons == (ReasonCode.MRZ_INVALID,)
    short = validate_document(DocumentType.PASSPORT, _passport_fields(mrz="P<KOR"), today=TODAY)
    assert [c.name for c in short.checks if not c.ok] == ["mrz_structure"]


def test_bad_iso_date_raises_document_error() -> None:
    with pytest.raises(DocumentError) as info:
        validate_document(
            DocumentType.KR_MERIT_CARD,
            {"name_ko": "홍길동", "number": RRN, "issue_date": "2020.01.02."},
            today=TODAY,
        )
    assert info.value.code is ReasonCode.FIELD_UNREADABLE


def test_check_severity_follows_the_reason_catalogue() -> None:
    assert Check("x", False, ReasonCode.RRN_CHECK_DIGIT).severity.value == "warning"
    assert Check("x", False, ReasonCode.RRN_INVALID).rejects
    assert not Check("x", True, ReasonCode.RRN_INVALID).rejects


def test_malformed_field_values_raise_document_error() -> None:
    for bad in ({"birth_date": "1990/01/01"}, {"sex": "male"}, {"nickname": "x"}):
        with pytest.raises(DocumentError) as info:
            validate_document(
                DocumentType.KR_MERIT_CARD,
                {"name_ko": "홍길동", "number": RRN, "issue_date": "2020-01-02", **bad},
                today=TODAY,
            )
        assert info.value.code is ReasonCode.FIELD_UNREADABLE


# --- OCR field parsing through a fake engine (the OcrEngine Protocol seam) -------------------


class _FakeOcr:
    """Returns canned readings in order; records the whitelists it was given."""

    def __init__(self, readings: list[str]) -> None:
        self.readings = readings
        self.whitelists: list[str | None] = []

    def read_line(self, image: object, whitelist: str | None = None) -> str:
        self.whitelists.append(whitelist)
        return self.readings.pop(0)


def test_read_fields_parses_each_kind() -> None:
    from PIL import Image

    from faceproof.documents.ocr import read_fields

    card = Image.new("RGB", (1012, 638), "white")
    # driver's licence regions in order: name_ko (kor), license_number, issue, expiry (eng)
    kor = _FakeOcr(["홍 길동"])
    eng = _FakeOcr(["119012345601", "2019.03.05.", "2029.12.31"])
    fields = read_fields(card, DocumentType.KR_DRIVER_LICENSE, kor=kor, eng=eng)
    assert fields == {
        "name_ko": "홍길동",
        "license_number": "11-90-123456-01",
        "issue_date": "2019-03-05",
        "expiry_date": "2029-12-31",
    }
    assert kor.whitelists == [None]
    assert eng.whitelists[1] == "0123456789."
    # unparseable readings are left out (so field_* checks report field_unreadable)
    kor = _FakeOcr(["hong"])
    eng = _FakeOcr(["11901234560", "2019.13.05.", "31 DEC 2029"])
    assert read_fields(card, DocumentType.KR_DRIVER_LICENSE, kor=kor, eng=eng) == {}
    page = Image.new("RGB", (1012, 712), "white")
    kor = _FakeOcr(["홍길동"])
    eng = _FakeOcr(["01 JAN 1990", "F", "5 MAY 2020", "04 MAY 2030"])
    assert read_fields(page, DocumentType.PASSPORT, kor=kor, eng=eng) == {
        "name_ko": "홍길동",
        "birth_date": "1990-01-01",
        "sex": "F",
        "issue_date": "2020-05-05",
        "expiry_date": "2030-05-04",
    }
