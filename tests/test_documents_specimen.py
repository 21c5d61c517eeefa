"""Specimen generator, card location and rectification, and the documents CLI.

All images are made at run time from the bundled public-domain example portrait (NASA's
astronaut photo in scikit-image) and the fonts-nanum fonts; nothing is read from ../shared.
"""

from __future__ import annotations

import argparse
import io
import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceproof.cli.documents import add_parsers
from faceproof.documents import DocumentError, DocumentType, parse_td3, validate_document
from faceproof.documents.locate import ID1_SIZE, TD3_SIZE, locate_card, order_corners, rectify
from faceproof.documents.specimen import (
    CARD_SIZE,
    PASSPORT_SIZE,
    Photo,
    photograph,
    render_specimen,
)
from faceproof.reasons import ReasonCode

TODAY = date(2026, 11, 27)
ALL_TYPES = list(DocumentType)


@pytest.mark.parametrize("doc_type", ALL_TYPES)
def test_every_type_renders_with_ground_truth_that_validates(doc_type: DocumentType) -> None:
    for seed in range(3):
        spec = render_specimen(doc_type, seed=seed, today=TODAY)
        expected = PASSPORT_SIZE if doc_type is DocumentType.PASSPORT else CARD_SIZE
        assert spec.image.size == expected
        assert spec.image.mode == "RGB"
        read = validate_document(doc_type, spec.fields, today=TODAY, portrait=spec.portrait)
        assert read.accepted, read.to_dict(reveal=True)
        assert not [c for c in read.checks if not c.ok], read.to_dict(reveal=True)
        # every printed field named in the ground truth has a box inside the card
        w, h = spec.image.size
        for name, (x, y, bw, bh) in spec.field_boxes.items():
            assert 0 <= x < x + bw <= w, name
            assert 0 <= y < y + bh <= h, name
        assert "number" in spec.field_boxes


def test_ground_truth_dates_are_iso_and_consistent() -> None:
    spec = render_specimen(DocumentType.KR_DRIVER_LICENSE, seed=7, today=TODAY)
    f = spec.fields
    birth = date.fromisoformat(f["birth_date"])
    assert f["number"].startswith(birth.strftime("%y%m%d"))
    assert date.fromisoformat(f["issue_date"]) <= TODAY < date.fromisoformat(f["expiry_date"])
    truth = spec.ground_truth()
    assert truth["synthetic"] is True
    assert truth["type"] == "kr_driver_license"
    json.dumps(truth, ensure_ascii=False)  # serialisable


def test_passport_specimen_has_a_valid_mrz_matching_its_fields() -> None:
    spec = render_specimen(DocumentType.PASSPORT, seed=1, today=TODAY)
    mrz = parse_td3(spec.fields["mrz"], today=TODAY)
    assert mrz.valid
    assert mrz.document_number == spec.fields["number"]
    assert mrz.birth_date == date.fromisoformat(spec.fields["birth_date"])
    assert mrz.name_latin == spec.fields["name_latin"]
    assert {"mrz_line1", "mrz_line2"} <= spec.field_boxes.keys()


def test_same_seed_same_card_and_different_seed_different_card() -> None:
    a = render_specimen(DocumentType.KR_RESIDENT_CARD, seed=5, today=TODAY)
    b = render_specimen(DocumentType.KR_RESIDENT_CARD, seed=5, today=TODAY)
    c = render_specimen(DocumentType.KR_RESIDENT_CARD, seed=6, today=TODAY)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert a.fields == b.fields
    assert a.fields != c.fields


def test_portrait_is_pasted_into_the_portrait_box() -> None:
    red = Image.new("RGB", (300, 400), (220, 10, 10))
    spec = render_specimen(DocumentType.KR_MERIT_CARD, seed=2, today=TODAY, portrait=red)
    box = spec.portrait
    inner = np.asarray(spec.image)[
        box.y + 5 : box.y + box.height - 5, box.x + 5 : box.x + box.width - 5
    ].astype(int)
    assert np.abs(inner - np.array([220, 10, 10])).max() <= 2
    # and nowhere else is that red
    outside = np.asarray(spec.image).astype(int).copy()
    outside[box.y - 3 : box.y + box.height + 3, box.x - 3 : box.x + box.width + 3] = 0
    assert not (np.abs(outside - np.array([220, 10, 10])).max(axis=2) <= 2).any()


def test_expired_and_post_2020_options() -> None:
    exp = render_specimen(DocumentType.PASSPORT, seed=3, today=TODAY, expired=True)
    read = validate_document(DocumentType.PASSPORT, exp.fields, today=TODAY)
    assert ReasonCode.DOCUMENT_EXPIRED in read.reasons
    assert not read.accepted
    new = render_specimen(DocumentType.KR_RESIDENT_CARD, seed=3, today=TODAY, post_2020=True)
    read = validate_document(DocumentType.KR_RESIDENT_CARD, new.fields, today=TODAY)
    assert read.reasons == (ReasonCode.RRN_CHECK_DIGIT,)
    assert read.accepted  # a warning only


# --- photographed mode, locate and rectify --------------------------------------------------


def _photos() -> list[tuple[DocumentType, Photo]]:
    return [
        (t, photograph(render_specimen(t, seed=10 + i, today=TODAY), seed=i))
        for i, t in enumerate(ALL_TYPES)
    ]


@pytest.fixture(scope="module")
def photos() -> list[tuple[DocumentType, Photo]]:
    return _photos()


def test_photograph_is_seeded_and_returns_corners(
    photos: list[tuple[DocumentType, Photo]],
) -> None:
    spec = render_specimen(DocumentType.KR_RESIDENT_CARD, seed=1, today=TODAY)
    a = photograph(spec, seed=3)
    b = photograph(spec, seed=3)
    c = photograph(spec, seed=4)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert a.corners == b.corners
    assert a.corners != c.corners
    w, h = a.image.size
    assert (w, h) == (1600, 1200)
    assert all(0 < x < w and 0 < y < h for x, y in a.corners)
    assert a.ground_truth()["photo"]["corners"][0] == [round(v, 2) for v in a.corners[0]]  # type: ignore[index]


def test_locate_finds_corners_within_a_few_pixels(
    photos: list[tuple[DocumentType, Photo]],
) -> None:
    for doc_type, photo in photos:
        quad = locate_card(np.asarray(photo.image))
        error = np.linalg.norm(np.array(quad.corners) - np.array(photo.corners), axis=1)
        assert error.max() < 8.0, (doc_type, error)
        assert 0.2 < quad.area_fraction < 0.7


def test_rectified_card_matches_the_flat_specimen(
    photos: list[tuple[DocumentType, Photo]],
) -> None:
    for doc_type, photo in photos:
        size = TD3_SIZE if doc_type is DocumentType.PASSPORT else ID1_SIZE
        quad = locate_card(np.asarray(photo.image))
        card = rectify(np.asarray(photo.image), quad.corners, size=size)
        flat = np.asarray(photo.specimen.image).astype(float)
        assert card.shape == (*size[::-1], 3)
        # Structure agrees (lighting and blur differ): correlation of the grey images.
        g1 = card.astype(float).mean(axis=2).ravel()
        g2 = flat.mean(axis=2).ravel()
        corr = float(np.corrcoef(g1, g2)[0, 1])
        flipped = float(np.corrcoef(card[::-1, ::-1].astype(float).mean(axis=2).ravel(), g2)[0, 1])
        assert corr > 0.8, (doc_type, corr)
        assert corr > flipped + 0.3


def test_card_rotated_90_degrees_is_found_with_its_long_side_on_top(
    photos: list[tuple[DocumentType, Photo]],
) -> None:
    _, photo = photos[0]
    rotated = np.ascontiguousarray(np.rot90(np.asarray(photo.image)))
    quad = locate_card(rotated)
    (x0, y0), (x1, y1), (x2, y2), _ = quad.corners
    assert np.hypot(x1 - x0, y1 - y0) > np.hypot(x2 - x1, y2 - y1)
    card = rectify(rotated, quad.corners)
    flat = np.asarray(photo.specimen.image).astype(float).mean(axis=2).ravel()
    corr = max(
        float(np.corrcoef(c.astype(float).mean(axis=2).ravel(), flat)[0, 1])
        for c in (card, card[::-1, ::-1])
    )
    assert corr > 0.8  # upright or upside down: the 180-degree case is not resolved here


def test_no_card_cut_off_and_too_small(photos: list[tuple[DocumentType, Photo]]) -> None:
    _, photo = photos[1]
    img = np.asarray(photo.image)
    cases = {
        ReasonCode.CARD_NOT_FOUND: np.full((600, 800, 3), 90, np.uint8),
        ReasonCode.CARD_CUT_OFF: np.ascontiguousarray(img[:, : int(photo.corners[1][0]) - 200]),
        ReasonCode.CARD_TOO_SMALL: np.asarray(photo.image.resize((400, 300))),
    }
    for code, pixels in cases.items():
        with pytest.raises(DocumentError) as info:
            locate_card(pixels)
        assert info.value.code is code


def test_order_corners() -> None:
    pts = [(100, 300), (500, 80), (520, 320), (90, 60)]
    assert order_corners(pts) == ((90.0, 60.0), (500.0, 80.0), (520.0, 320.0), (100.0, 300.0))
    upright = [(0, 0), (200, 0), (200, 400), (0, 400)]
    a, b, _, _ = order_corners(upright)
    assert np.hypot(b[0] - a[0], b[1] - a[1]) == 400


# --- CLI -------------------------------------------------------------------------------------


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="faceproof")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def test_cli_specimen_then_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "card.png"
    assert _run(["specimen", "--type", "kr_resident_card", "--seed", "4",
                 "--today", "2026-11-27", "--out", str(out)]) == 0  # fmt: skip
    with Image.open(out) as im:
        assert im.size == CARD_SIZE
    truth = json.loads((tmp_path / "card.json").read_text("utf-8"))
    assert truth["type"] == "kr_resident_card"
    assert truth["fields"]["number"][:6] == truth["fields"]["birth_date"][2:].replace("-", "")
    capsys.readouterr()
    assert _run(["document", "validate", str(tmp_path / "card.json"),
                 "--today", "2026-11-27", "--json"]) == 0  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert printed["type"] == "kr_resident_card"
    assert printed["accepted"] is True
    assert printed["fields"]["number"].endswith("******")  # masked by default
    assert truth["fields"]["number"] not in json.dumps(printed)


def test_cli_expired_passport_exits_1_with_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pp.png"
    assert _run(["specimen", "--type", "passport", "--expired", "--photographed",
                 "--today", "2026-11-27", "--out", str(out)]) == 0  # fmt: skip
    truth = json.loads(out.with_suffix(".json").read_text("utf-8"))
    assert len(truth["photo"]["corners"]) == 4
    capsys.readouterr()
    rc = _run(["document", "validate", str(out.with_suffix(".json")),
               "--today", "2026-11-27", "--json"])  # fmt: skip
    assert rc == 1
    assert "document_expired" in json.loads(capsys.readouterr().out)["reasons"]
    assert _run(["document", "locate", str(out), "--aspect", "td3", "--json",
                 "--out", str(tmp_path / "rect.png")]) == 0  # fmt: skip
    corners = json.loads(capsys.readouterr().out)["corners"]
    assert np.abs(np.array(corners) - np.array(truth["photo"]["corners"])).max() < 8
    with Image.open(tmp_path / "rect.png") as im:
        assert im.size == TD3_SIZE


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["document", "validate", str(tmp_path / "missing.json")]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "library_card", "fields": {}}', "utf-8")
    assert _run(["document", "validate", str(bad)]) == 2
    blank = tmp_path / "blank.png"
    Image.new("RGB", (800, 600), (90, 90, 90)).save(blank)
    capsys.readouterr()
    assert _run(["document", "locate", str(blank), "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "card_not_found"
    mrz = tmp_path / "mrz.txt"
    mrz.write_text("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n"
                   "L898902C36UTO7408122F1204159ZE184226B<<<<<10\n", "utf-8")  # fmt: skip
    assert _run(["document", "mrz", str(mrz), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is True
    assert out["number"] == "L89******"
    mrz.write_text("P<UTO\n", "utf-8")
    assert _run(["document", "mrz", str(mrz)]) == 3
    assert "mrz_invalid" in capsys.readouterr().err


def test_cli_specimen_with_portrait_file(tmp_path: Path) -> None:
    face = tmp_path / "face.jpg"
    buf = io.BytesIO()
    Image.new("RGB", (300, 400), (10, 200, 10)).save(buf, format="JPEG")
    face.write_bytes(buf.getvalue())
    out = tmp_path / "c.png"
    assert _run(["specimen", "--type", "kr_disability_card", "--portrait", str(face),
                 "--out", str(out)]) == 0  # fmt: skip
    truth = json.loads(out.with_suffix(".json").read_text("utf-8"))
    x, y, w, h = truth["portrait"]["box"]
    with Image.open(out) as im:
        centre = np.asarray(im)[y + h // 2, x + w // 2].astype(int)
    assert abs(centre[1] - 200) < 10
    assert centre[0] < 40
    # an unusable portrait file is an input error with its reason code (exit 3)
    face.write_bytes(b"not an image")
    assert _run(["specimen", "--type", "passport", "--portrait", str(face), "--out", str(out)]) == 3
