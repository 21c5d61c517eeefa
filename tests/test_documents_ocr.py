"""End to end on photographed specimens: locate -> rectify -> OCR the number -> validate.

Specimens are generated at run time (bundled example portrait, fonts-nanum); Tesseract runs
through tesserocr with Debian's tessdata. The engine's absence is a setup error, not a skip.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageFilter

from faceproof.cli.documents import add_parsers
from faceproof.documents import DocumentError, DocumentType, validate_document
from faceproof.documents.locate import ID1_SIZE, TD3_SIZE, locate_card, rectify
from faceproof.documents.ocr import TesseractOcr, read_number
from faceproof.documents.read import read_document
from faceproof.documents.specimen import photograph, render_specimen
from faceproof.faces.detector import YuNetDetector
from faceproof.reasons import ReasonCode

TODAY = date(2026, 11, 27)
KOREAN_CARDS = [t for t in DocumentType if t is not DocumentType.PASSPORT]


@pytest.fixture(scope="module")
def ocr() -> Iterator[TesseractOcr]:
    with TesseractOcr("eng") as engine:
        yield engine


def _rectified(doc_type: DocumentType, seed: int) -> tuple[npt.NDArray[np.uint8], dict[str, str]]:
    photo = photograph(render_specimen(doc_type, seed=seed, today=TODAY), seed=seed + 7)
    pixels = np.asarray(photo.image)
    size = TD3_SIZE if doc_type is DocumentType.PASSPORT else ID1_SIZE
    return rectify(pixels, locate_card(pixels).corners, size=size), photo.specimen.fields


@pytest.mark.parametrize("doc_type", KOREAN_CARDS)
def test_registration_number_reads_exactly_from_a_photographed_card(
    doc_type: DocumentType, ocr: TesseractOcr
) -> None:
    for seed in (0, 1):
        card, truth = _rectified(doc_type, seed)
        number = read_number(card, doc_type, ocr)
        assert number == truth["number"]
        read = validate_document(doc_type, {**truth, "number": number}, today=TODAY)
        assert read.accepted


def test_passport_number_reads_from_a_photographed_page(ocr: TesseractOcr) -> None:
    card, truth = _rectified(DocumentType.PASSPORT, 5)
    assert read_number(card, DocumentType.PASSPORT, ocr) == truth["number"]


def test_blank_region_is_field_unreadable(ocr: TesseractOcr) -> None:
    blank = Image.new("RGB", ID1_SIZE, (235, 235, 240))
    with pytest.raises(DocumentError) as info:
        read_number(blank, DocumentType.KR_RESIDENT_CARD, ocr)
    assert info.value.code is ReasonCode.FIELD_UNREADABLE


# --- the whole read: photo -> DocumentRead -------------------------------------------------


@pytest.fixture(scope="module")
def kor() -> Iterator[TesseractOcr]:
    with TesseractOcr("kor+eng") as engine:
        yield engine


@pytest.fixture(scope="module")
def detector() -> YuNetDetector:
    return YuNetDetector()


@pytest.mark.parametrize("doc_type", list(DocumentType))
def test_read_document_end_to_end(
    doc_type: DocumentType, kor: TesseractOcr, ocr: TesseractOcr, detector: YuNetDetector
) -> None:
    photo = photograph(render_specimen(doc_type, seed=3, today=TODAY), seed=30)
    result = read_document(
        np.asarray(photo.image), today=TODAY, kor=kor, eng=ocr, detector=detector
    )
    doc = result.document
    assert doc.type is doc_type
    assert doc.fields["number"] == photo.specimen.fields["number"]
    assert doc.portrait == photo.specimen.portrait
    if doc_type is not DocumentType.PASSPORT:
        assert doc.fields["birth_date"] == photo.specimen.fields["birth_date"]
        assert doc.fields["sex"] == photo.specimen.fields["sex"]
    truth = photo.specimen.fields
    for name in ("name_ko", "issue_date", "expiry_date", "license_number"):
        if name in truth and doc_type is not DocumentType.KR_RESIDENCE_CARD:
            assert doc.fields.get(name) == truth[name], name
    checks = {c.name: c for c in doc.checks}
    assert checks["portrait_face"].ok
    assert doc.accepted
    if doc_type is DocumentType.PASSPORT:
        # The MRZ is read (OCR-B glyphs) and checked; it gives what the page did not.
        assert doc.fields["mrz"] == truth["mrz"]
        assert doc.fields["name_latin"] == truth["name_latin"]
        assert doc.fields["nationality"] == truth["nationality"]
        assert doc.complete
    elif doc_type is not DocumentType.KR_RESIDENCE_CARD:
        assert doc.complete
    assert result.portrait.shape[0] >= doc.portrait.height  # type: ignore[union-attr]
    np.testing.assert_allclose(result.corners, photo.corners, atol=8)


def test_read_document_rejects_a_card_without_a_face_in_its_portrait(
    kor: TesseractOcr, ocr: TesseractOcr, detector: YuNetDetector
) -> None:
    plain = Image.new("RGB", (300, 400), (180, 190, 200))
    spec = render_specimen(DocumentType.KR_RESIDENT_CARD, seed=2, today=TODAY, portrait=plain)
    photo = photograph(spec, seed=2)
    doc = read_document(
        np.asarray(photo.image), today=TODAY, kor=kor, eng=ocr, detector=detector
    ).document
    assert ReasonCode.PORTRAIT_NO_FACE in doc.reasons
    assert not doc.accepted


def test_expired_card_is_rejected_from_the_photo(kor: TesseractOcr, ocr: TesseractOcr) -> None:
    spec = render_specimen(DocumentType.KR_DRIVER_LICENSE, seed=4, today=TODAY, expired=True)
    doc = read_document(np.asarray(photograph(spec, seed=4).image), today=TODAY, kor=kor, eng=ocr)
    assert doc.document.fields["expiry_date"] == spec.fields["expiry_date"]
    assert ReasonCode.DOCUMENT_EXPIRED in doc.document.reasons
    assert not doc.document.accepted


def test_unknown_document_and_no_card(
    kor: TesseractOcr, ocr: TesseractOcr, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A card-shaped blank: found, but no title to classify it.
    photo = photograph(render_specimen(DocumentType.KR_MERIT_CARD, seed=1, today=TODAY), seed=1)
    pixels = np.asarray(photo.image).copy()
    quad = np.array(photo.corners, dtype=np.int32)
    cv2.fillConvexPoly(pixels, quad, (236, 236, 236))
    with pytest.raises(DocumentError) as info:
        read_document(pixels, today=TODAY, kor=kor, eng=ocr)
    assert info.value.code is ReasonCode.DOCUMENT_TYPE_UNKNOWN
    # CLI: no card -> exit 3 with card_not_found
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (800, 600), (120, 110, 100)).save(blank, format="JPEG")
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["document", "read", str(blank), "--json"])
    assert args.handler(args) == 3
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "card_not_found"


def test_cli_read_prints_the_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = photograph(render_specimen(DocumentType.KR_RESIDENT_CARD, seed=8, today=TODAY), seed=8)
    path = tmp_path / "card.jpg"
    photo.image.save(path, format="JPEG", quality=92)
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["document", "read", str(path), "--json", "--today", "2026-11-27"])
    assert args.handler(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"type", "fields", "checks", "portrait"}
    assert out["type"] == "kr_resident_card"
    assert out["fields"]["number"] == photo.specimen.fields["number"][:8] + "******"
    assert out["portrait"]["box"] == photo.specimen.portrait.as_list()


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_rotated_photo_reads_the_same(
    turns: int, kor: TesseractOcr, ocr: TesseractOcr, detector: YuNetDetector
) -> None:
    """A card photographed sideways (90/270 degrees) or upside down (180) still reads."""
    photo = photograph(render_specimen(DocumentType.KR_DRIVER_LICENSE, seed=6, today=TODAY), seed=6)
    pixels = np.ascontiguousarray(np.rot90(np.asarray(photo.image), turns))
    doc = read_document(pixels, today=TODAY, kor=kor, eng=ocr, detector=detector).document
    assert doc.type is DocumentType.KR_DRIVER_LICENSE
    assert doc.fields["number"] == photo.specimen.fields["number"]
    assert doc.fields["license_number"] == photo.specimen.fields["license_number"]
    assert doc.accepted


def test_blurred_photo_is_card_blurry(kor: TesseractOcr, ocr: TesseractOcr) -> None:
    photo = photograph(render_specimen(DocumentType.KR_RESIDENT_CARD, seed=9, today=TODAY), seed=9)
    # mild blur (Gaussian radius 2) still reads exactly
    mild = np.asarray(photo.image.filter(ImageFilter.GaussianBlur(2)))
    doc = read_document(mild, today=TODAY, kor=kor, eng=ocr).document
    assert doc.fields["number"] == photo.specimen.fields["number"]
    assert doc.accepted
    # heavy blur (radius 4) is refused before anything is read
    heavy = np.asarray(photo.image.filter(ImageFilter.GaussianBlur(4)))
    with pytest.raises(DocumentError) as info:
        read_document(heavy, today=TODAY, kor=kor, eng=ocr)
    assert info.value.code is ReasonCode.CARD_BLURRY
