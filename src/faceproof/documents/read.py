"""Photo in, `DocumentRead` out: locate -> classify -> rectify -> read -> validate -> portrait.

What is read today (see docs/documents.md for the plan):

- **type**, from the printed title: the top band of the card rectified to ID-1 is read with
  Tesseract `kor+eng` (light flattened and trimmed to the ink; then the whole band) and
  matched against keywords (주민등록 / 운전면허 / 외국인, 영주 / 유공자 / 장애인); failing
  that, the top band of a TD3 rectification is read and matched against 여권 / PASSPORT.
  No keyword: `document_type_unknown`.
- **number**, from its region with a character whitelist (`ocr.read_number`); on Korean cards
  `birth_date` and `sex` are derived from the registration number.
- **name_ko**, **name_latin** (residence card), **nationality** (residence card),
  **issue_date**, **expiry_date**, **license_number**, and the passport's **birth_date** and
  **sex**, from their regions (`ocr.read_fields`); so the date rules (`document_expired`,
  `issue_date_in_future`) and the licence-number rule run on a photo.
- **screenshot** first (`screenshot.refuse_screenshot`): a digital image of a card, or a photo
  of one on a screen, is `card_screenshot`.
- **sharpness** next: variance of the Laplacian of the rectified card; below
  `MIN_SHARPNESS` the read stops with `DocumentError(card_blurry)`.
- **portrait**: the box from the layout, cut out of the photo at full resolution and checked
  for a face when a detector is given.
- **issuer** (Korean cards, when an `IssuerCheck` is given): name, number and issue date (or
  licence number) are sent to the issuer; its answer is one more check (`issuer_*`).

Not read yet: address, issuer, licence class, the passport's Latin name, nationality and MRZ;
a required field that is not read makes its `field_*` check report `field_unreadable`.
Regions and title positions are those of faceproof's specimen generator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import date
from functools import partial
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image

from faceproof.documents.checks import validate_document
from faceproof.documents.errors import DocumentError
from faceproof.documents.issuer import IssuerCheck, IssuerQuery
from faceproof.documents.locate import (
    ID1_SIZE,
    MIN_SHARPNESS,
    MIN_SHORT_SIDE_PX,
    TD3_SIZE,
    CardQuad,
    Corners,
    locate_card,
    rectify,
    sharpness,
)
from faceproof.documents.mrz_reader import read_mrz
from faceproof.documents.mrz_zone import page_corners, read_zone
from faceproof.documents.ocr import (
    FIELD_REGIONS,
    NUMBER_REGIONS,
    OcrEngine,
    flatten_light,
    read_fields,
    read_number,
    trim_to_ink,
)
from faceproof.documents.portrait import check_portrait, cut_portrait
from faceproof.documents.screenshot import refuse_screenshot
from faceproof.documents.types import Check, DocumentRead, DocumentType, PortraitBox
from faceproof.documents.validators import parse_registration_number
from faceproof.errors import InputError
from faceproof.faces.detector import FaceDetector
from faceproof.parallel import Helpers, Part, shared_helpers
from faceproof.reasons import ReasonCode

__all__ = ["MRZ_PAGE_PORTRAIT_BOX", "PORTRAIT_BOXES", "ReadResult", "classify", "read_document"]

_KEYWORDS: Final = (
    ("주민등록", DocumentType.KR_RESIDENT_CARD),
    ("운전면허", DocumentType.KR_DRIVER_LICENSE),
    ("면허", DocumentType.KR_DRIVER_LICENSE),
    ("외국인", DocumentType.KR_RESIDENCE_CARD),
    ("영주", DocumentType.KR_RESIDENCE_CARD),
    ("유공자", DocumentType.KR_MERIT_CARD),
    ("장애인", DocumentType.KR_DISABILITY_CARD),
)
_ID1_TITLE_BAND: Final = (20, 34, 760, 112)  # left of the "견본 SPECIMEN" mark
_TD3_TITLE_BAND: Final = (20, 10, 1000, 70)
# A taller band right of an emblem: a title printed larger than the specimen's (the kimlia545
# resident-card mock-ups in ../shared/data), tried last.
_ID1_TALL_TITLE_BAND: Final = (100, 30, 700, 130)
#: Portrait boxes of the specimen layout, in the rectified card.
PORTRAIT_BOXES: Final[dict[DocumentType, PortraitBox]] = {
    DocumentType.KR_RESIDENT_CARD: PortraitBox(730, 150, 230, 296),
    DocumentType.KR_DRIVER_LICENSE: PortraitBox(50, 150, 230, 296),
    DocumentType.KR_RESIDENCE_CARD: PortraitBox(50, 150, 230, 296),
    DocumentType.KR_MERIT_CARD: PortraitBox(730, 150, 230, 296),
    DocumentType.KR_DISABILITY_CARD: PortraitBox(50, 150, 230, 296),
    DocumentType.PASSPORT: PortraitBox(40, 110, 250, 320),
}

#: Where a real TD3 data page's portrait may be, in the page placed around its MRZ (1012 x 712
#: for 125 x 88 mm): ICAO 9303-4 zone V, left of the data, above the MRZ, with room for the
#: spread of real layouts and of the page's placement (2-50 mm across, 7-65 mm down).
MRZ_PAGE_PORTRAIT_BOX: Final = PortraitBox(16, 56, 390, 470)
#: Located cards whose outline the photo crops can still be read when the whole photo has
#: the card's shape (a scan cut to the card): long side / short side within this of ID-1's.
_FRAME_ASPECT_TOLERANCE: Final = 0.08
_FALLBACK_CODES: Final = (
    ReasonCode.CARD_NOT_FOUND,
    ReasonCode.CARD_CUT_OFF,
    ReasonCode.CARD_TOO_SMALL,
)


@dataclass(frozen=True, slots=True, eq=False)
class ReadResult:
    """The validated read plus, in memory only, the rectified card and the portrait pixels."""

    document: DocumentRead
    corners: tuple[tuple[float, float], ...]
    card: npt.NDArray[np.uint8] = field(repr=False)
    portrait: npt.NDArray[np.uint8] = field(repr=False)
    #: How the card or page was found: "outline" (`locate_card`), "frame" (the whole photo has
    #: the card's shape) or "mrz" (the page placed around its machine-readable zone).
    located_by: str = "outline"


def _titles(
    card: npt.NDArray[np.uint8], band: tuple[int, int, int, int], ocr: OcrEngine
) -> Iterator[str]:
    """The title band trimmed to its ink, then (if the caller needs more) the whole band."""
    crop = Image.fromarray(card).crop(band)
    yield ocr.read_line(trim_to_ink(crop)).replace(" ", "")
    yield ocr.read_line(flatten_light(crop)).replace(" ", "")


def _card_titles(card: npt.NDArray[np.uint8], kor: OcrEngine) -> Iterator[str]:
    """An ID-1 card's title band (`_titles`), then the taller band, each only if needed."""
    yield from _titles(card, _ID1_TITLE_BAND, kor)
    yield kor.read_line(Image.fromarray(card).crop(_ID1_TALL_TITLE_BAND)).replace(" ", "")


def classify(
    photo: npt.NDArray[np.uint8], quad: CardQuad, kor: OcrEngine
) -> tuple[DocumentType, npt.NDArray[np.uint8], Corners]:
    """The type, the card rectified to its format and its corners, or `document_type_unknown`.

    Tries the card as located, then turned by 180 degrees (an upside-down card): the corners
    returned are those of the upright card.
    """
    c = quad.corners
    for corners in (c, (c[2], c[3], c[0], c[1])):
        card = rectify(photo, corners, size=ID1_SIZE)
        for title in _card_titles(card, kor):
            for keyword, doc_type in _KEYWORDS:
                if keyword in title:
                    return doc_type, card, corners
        page = rectify(photo, corners, size=TD3_SIZE)
        for title in _titles(page, _TD3_TITLE_BAND, kor):
            if "여권" in title or "PASSPORT" in title.upper():
                return DocumentType.PASSPORT, page, corners
    raise DocumentError(ReasonCode.DOCUMENT_TYPE_UNKNOWN, "no known document title was read")


def _ask_issuer(issuer: IssuerCheck, doc_type: DocumentType, fields: Mapping[str, str]) -> Check:
    name = fields.get("name_ko") or fields.get("name_latin") or ""
    key = fields.get("license_number") if doc_type is DocumentType.KR_DRIVER_LICENSE else None
    number = fields.get("number", "")
    if not name or not (key or number):
        return Check(
            "issuer",
            False,
            ReasonCode.ISSUER_UNAVAILABLE,
            "the fields the issuer needs were not read",
        )
    query = IssuerQuery(
        doc_type,
        name,
        number=number,
        issue_date="" if key else fields.get("issue_date", ""),
        license_number=key or "",
    )
    return issuer.check(query)


# A washed-out (all channels >= 250) share of the portrait or of a text field above this is a
# lamp's highlight on the laminate: the photo is retaken. Photographed specimens without one
# stay under 0.3 % (docs/documents.md); a highlight over a region covers 10-60 %.
GLARE_MAX_SHARE: Final = 0.03


def _washed_out(card: npt.NDArray[np.uint8], box: tuple[int, int, int, int]) -> float:
    x0, y0, x1, y1 = box
    region = card[y0:y1, x0:x1]
    return float((region.min(axis=2) >= 250).mean()) if region.size else 0.0


def _refuse_glare(card: npt.NDArray[np.uint8], doc_type: DocumentType) -> None:
    """`card_glare` (retake) when a highlight washes out the portrait or a field's text."""
    p = PORTRAIT_BOXES[doc_type]
    regions = {"portrait": (p.x, p.y, p.x + p.width, p.y + p.height)}
    regions["number"] = NUMBER_REGIONS[doc_type]
    for name, (box, _) in FIELD_REGIONS.get(doc_type, {}).items():
        regions[name] = box
    for name, box in regions.items():
        share = _washed_out(card, box)
        if share > GLARE_MAX_SHARE:
            raise DocumentError(
                ReasonCode.CARD_GLARE, f"glare over the {name}: {100 * share:.0f} % washed out"
            )


def _add_mrz(fields: dict[str, str], page: npt.NDArray[np.uint8], today: date) -> None:
    """The MRZ, read by its OCR-B glyphs; the fields the printed page did not give are taken
    from it (the validators then cross-check the MRZ with what was printed)."""
    mrz = read_mrz(page, today=today)
    if mrz is None:
        return
    fields["mrz"] = f"{mrz.line1}\n{mrz.line2}"
    from_mrz = {
        "name_latin": mrz.name_latin,
        "nationality": mrz.nationality,
        "sex": mrz.sex,
        "birth_date": mrz.birth_date.isoformat() if mrz.birth_date else "",
        "expiry_date": mrz.expiry_date.isoformat() if mrz.expiry_date else "",
    }
    for name, value in from_mrz.items():
        if value and not fields.get(name):
            fields[name] = value


def read_document(
    photo: npt.NDArray[np.uint8],
    *,
    today: date,
    kor: OcrEngine,
    eng: OcrEngine,
    detector: FaceDetector | None = None,
    issuer: IssuerCheck | None = None,
    helpers: Helpers | None = None,
    with_portrait: Callable[[npt.NDArray[np.uint8]], object] | None = None,
) -> ReadResult:
    """Read one card photo (RGB). `kor` is a `kor+eng` engine, `eng` an `eng` engine.

    When no card outline is found (a scan cut to the page, a page of a booklet) or no title is
    read, the photo is searched for a machine-readable zone instead (`_read_by_mrz`); a photo
    with the shape of an ID-1 card is first read as the card itself.

    The screenshot check runs on a free helper thread (`helpers`, default the process's; see
    faceproof.parallel) beside the reading; its refusal wins over anything the reading found,
    as when it ran first. `with_portrait(portrait)` (the caller's face template) runs beside
    the field OCR as soon as a card's portrait is cut, and has ended when this returns; it is
    not called for a passport found by its MRZ alone."""
    located_by = "outline"
    try:
        quad = locate_card(photo)
    except DocumentError as exc:
        if exc.code not in _FALLBACK_CODES:
            raise
        frame = _whole_frame(photo)
        if frame is None:
            return _read_by_mrz(photo, today=today, detector=detector, not_found=exc)
        quad, located_by = frame, "frame"
    helpers = helpers or shared_helpers()
    screenshot = helpers.beside(
        partial(refuse_screenshot, photo, quad.corners, whole_frame=located_by == "frame")
    )
    try:
        result = _read_located(
            photo,
            quad,
            located_by,
            today=today,
            kor=kor,
            eng=eng,
            detector=detector,
            screenshot=screenshot,
            helpers=helpers,
            with_portrait=with_portrait,
        )
    except InputError:
        screenshot.result()  # a screenshot is refused as such, whatever else failed
        raise
    screenshot.result()
    # The issuer is asked only about a card that passed every local check.
    read = result.document
    if issuer is not None and read.type is not DocumentType.PASSPORT:
        asked = _ask_issuer(issuer, read.type, read.fields)
        result = replace(result, document=replace(read, checks=(*read.checks, asked)))
    return result


def _read_located(
    photo: npt.NDArray[np.uint8],
    quad: CardQuad,
    located_by: str,
    *,
    today: date,
    kor: OcrEngine,
    eng: OcrEngine,
    detector: FaceDetector | None,
    screenshot: Part[None],
    helpers: Helpers,
    with_portrait: Callable[[npt.NDArray[np.uint8]], object] | None,
) -> ReadResult:
    """`read_document` once the card is located, but for the issuer; the screenshot check
    runs beside, and its verdict is awaited before the slow search for a passport's MRZ."""
    sharp = sharpness(rectify(photo, quad.corners, size=ID1_SIZE))
    if sharp < MIN_SHARPNESS:
        raise DocumentError(
            ReasonCode.CARD_BLURRY, f"card sharpness {sharp:.1f} is below {MIN_SHARPNESS:.0f}"
        )
    try:
        doc_type, card, corners = classify(photo, quad, kor)
    except DocumentError as exc:
        screenshot.result()  # a screenshot is refused now, not after seconds of MRZ search
        return _read_by_mrz(photo, today=today, detector=detector, not_found=exc)
    _refuse_glare(card, doc_type)
    box = PORTRAIT_BOXES[doc_type]
    size = TD3_SIZE if doc_type is DocumentType.PASSPORT else ID1_SIZE
    portrait = cut_portrait(photo, corners, box, size)
    template = helpers.beside(partial(with_portrait, portrait)) if with_portrait else None
    fields: dict[str, str] = {}
    with suppress(DocumentError):  # an unread number is reported by the field_number check
        fields["number"] = read_number(card, doc_type, eng)
    fields |= read_fields(card, doc_type, kor=kor, eng=eng)
    if doc_type is DocumentType.PASSPORT:
        _add_mrz(fields, card, today)
    if doc_type is not DocumentType.PASSPORT and "number" in fields:
        try:
            rrn = parse_registration_number(fields["number"], today=today)
        except DocumentError:
            pass  # reported by the rrn_format check
        else:
            fields["birth_date"] = rrn.birth_date.isoformat()
            fields["sex"] = rrn.sex
    read = validate_document(doc_type, fields, today=today, portrait=box)
    if detector is not None:
        read = replace(read, checks=read.checks + check_portrait(portrait, detector).checks)
    if template is not None:
        template.result()
    return ReadResult(read, corners, card, portrait, located_by=located_by)


def _whole_frame(photo: npt.NDArray[np.uint8]) -> CardQuad | None:
    """The whole photo as the card, when it has an ID-1 card's shape and size (a scan or
    screenshot cut to the card: no outline to find)."""
    h, w = photo.shape[:2]
    long, short = max(h, w), min(h, w)
    aspect = ID1_SIZE[0] / ID1_SIZE[1]
    if short < MIN_SHORT_SIDE_PX or abs(long / short / aspect - 1) > _FRAME_ASPECT_TOLERANCE:
        return None
    inset = 1.0
    corners = ((inset, inset), (w - inset, inset), (w - inset, h - inset), (inset, h - inset))
    if h > w:  # upright: the long side is the card's top edge
        corners = (corners[3], corners[0], corners[1], corners[2])
    return CardQuad(corners, 1.0)


def _read_by_mrz(
    photo: npt.NDArray[np.uint8],
    *,
    today: date,
    detector: FaceDetector | None,
    not_found: DocumentError,
) -> ReadResult:
    """A passport read from its machine-readable zone alone, found anywhere in the photo.

    The MRZ gives the type (a TD3 `P` document is a passport) and the fields (number, Latin
    name, nationality, sex, dates); the data page is placed around it by the ICAO layout for
    the portrait. No MRZ with valid check digits: the error that sent us here. An ID card or a
    visa MRZ (TD1, TD2, MRV): `document_type_unknown`, as faceproof accepts neither.
    """
    zone = read_zone(photo, today=today)
    if zone is None:
        raise not_found
    mrz = zone.mrz
    if mrz.format != "TD3":
        raise DocumentError(
            ReasonCode.DOCUMENT_TYPE_UNKNOWN,
            f"a {mrz.format} machine-readable zone was read: an ID card or a visa, not a passport",
        )
    fields = {
        "number": mrz.document_number,
        "mrz": mrz.text,
        "name_latin": mrz.name_latin,
        "nationality": mrz.nationality,
        "sex": mrz.sex,
        "birth_date": mrz.birth_date.isoformat() if mrz.birth_date else "",
        "expiry_date": mrz.expiry_date.isoformat() if mrz.expiry_date else "",
    }
    fields = {name: value for name, value in fields.items() if value}
    corners = page_corners(zone)
    # A page found by its MRZ may extend past the photo (a scan cut to the page): then only
    # the frame's flatness can tell a screenshot.
    inside = all(0 <= x <= photo.shape[1] and 0 <= y <= photo.shape[0] for x, y in corners)
    refuse_screenshot(photo, corners, whole_frame=not inside)
    page = rectify(photo, corners, size=TD3_SIZE)
    box = MRZ_PAGE_PORTRAIT_BOX
    portrait = cut_portrait(photo, corners, box, TD3_SIZE)
    read = validate_document(DocumentType.PASSPORT, fields, today=today, portrait=box)
    if detector is not None:
        read = replace(read, checks=read.checks + check_portrait(portrait, detector).checks)
    return ReadResult(read, corners, page, portrait, located_by="mrz")
