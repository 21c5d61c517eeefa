"""OCR of single fields on a rectified card: Tesseract through tesserocr, behind a Protocol.

`OcrEngine` is the seam: anything with `read_line(image, whitelist) -> str`. `TesseractOcr`
wraps one `tesserocr.PyTessBaseAPI` (libtesseract 5.5, Debian's `kor` + `eng` tessdata under
`/usr/share/tesseract-ocr/5/tessdata`) in single-line mode; it is not thread-safe, so use one
per thread and close it (it is a context manager).

`read_number(card, doc_type, ocr)` reads the `number` field from the region where faceproof's
synthetic specimens print it (`NUMBER_REGIONS`, in the 1012-px-wide rectified card), with a
character whitelist (digits and hyphen for registration numbers; A-Z and digits for passport
numbers). These regions are the layout of the specimen generator only: templates measured on
real cards of each type are not built yet (see docs/documents.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any, Final, Protocol

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from faceproof.documents.errors import DocumentError
from faceproof.documents.types import MONTHS, DocumentType
from faceproof.errors import ServiceError
from faceproof.reasons import ReasonCode

__all__ = [
    "FIELD_REGIONS",
    "NUMBER_REGIONS",
    "TESSDATA",
    "OcrEngine",
    "TesseractOcr",
    "flatten_light",
    "read_fields",
    "read_number",
    "trim_to_ink",
]

TESSDATA: Final = "/usr/share/tesseract-ocr/5/tessdata"
DIGITS_HYPHEN: Final = "0123456789-"
PASSPORT_CHARS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
#: (x0, y0, x1, y1) of the number field on the rectified specimen (1012 x 638, or 1012 x 712).
NUMBER_REGIONS: Final[dict[DocumentType, tuple[int, int, int, int]]] = {
    DocumentType.KR_RESIDENT_CARD: (44, 226, 470, 290),
    DocumentType.KR_DRIVER_LICENSE: (304, 286, 730, 350),
    DocumentType.KR_RESIDENCE_CARD: (304, 210, 730, 274),
    DocumentType.KR_MERIT_CARD: (44, 226, 470, 290),
    DocumentType.KR_DISABILITY_CARD: (304, 226, 730, 290),
    DocumentType.PASSPORT: (646, 110, 900, 156),
}
_RRN: Final = re.compile(r"\d{6}-\d{7}")
Region = tuple[int, int, int, int]
_DOT_DATE_ROW: Final[dict[str, Region]] = {
    "issue_date": (304, 466, 540, 507),
    "expiry_date": (504, 503, 740, 543),
}
#: Other field regions (x0, y0, x1, y1) of the specimen layout, with the kind of reading.
FIELD_REGIONS: Final[dict[DocumentType, dict[str, tuple[Region, str]]]] = {
    DocumentType.KR_RESIDENT_CARD: {
        "name_ko": ((44, 157, 360, 223), "hangul"),
        "issue_date": ((404, 466, 640, 507), "dot_date"),
    },
    DocumentType.KR_DRIVER_LICENSE: {
        "name_ko": ((304, 217, 560, 283), "hangul"),
        "license_number": ((504, 149, 880, 197), "licence"),
        "issue_date": (_DOT_DATE_ROW["issue_date"], "dot_date"),
        "expiry_date": (_DOT_DATE_ROW["expiry_date"], "dot_date"),
    },
    DocumentType.KR_RESIDENCE_CARD: {
        "name_latin": ((434, 153, 900, 201), "latin"),
        "nationality": ((534, 270, 664, 318), "code3"),
        "issue_date": (_DOT_DATE_ROW["issue_date"], "dot_date"),
        "expiry_date": (_DOT_DATE_ROW["expiry_date"], "dot_date"),
    },
    DocumentType.KR_MERIT_CARD: {
        "name_ko": ((44, 157, 360, 223), "hangul"),
        "issue_date": ((404, 466, 640, 507), "dot_date"),
    },
    DocumentType.KR_DISABILITY_CARD: {
        "name_ko": ((304, 157, 560, 223), "hangul"),
        "issue_date": (_DOT_DATE_ROW["issue_date"], "dot_date"),
    },
    DocumentType.PASSPORT: {
        "name_ko": ((304, 319, 500, 366), "hangul"),
        "birth_date": ((304, 393, 560, 431), "en_date"),
        "sex": ((644, 393, 760, 431), "sex"),
        "issue_date": ((304, 463, 560, 501), "en_date"),
        "expiry_date": ((644, 463, 900, 501), "en_date"),
    },
}
_WHITELISTS: Final = {
    "dot_date": "0123456789.",
    "en_date": "0123456789 ABCDEFGJLMNOPRSTUVY",
    "latin": "ABCDEFGHIJKLMNOPQRSTUVWXYZ ",
    "code3": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "sex": "MFX",
    "licence": DIGITS_HYPHEN,
    "hangul": None,
}


class OcrEngine(Protocol):
    def read_line(self, image: Image.Image, whitelist: str | None = None) -> str: ...


class TesseractOcr:
    """One libtesseract instance in single-line mode (`kor+eng` by default)."""

    def __init__(self, lang: str = "kor+eng", tessdata: str = TESSDATA) -> None:
        try:
            from tesserocr import PSM, PyTessBaseAPI

            self._api: Any = PyTessBaseAPI(path=tessdata, lang=lang, psm=PSM.SINGLE_LINE)
        except (ImportError, RuntimeError) as exc:
            raise ServiceError(
                ReasonCode.INTERNAL_ERROR,
                f"Tesseract ({lang}) could not start: install tesseract-ocr-kor (setup.sh)",
            ) from exc

    def read_line(self, image: Image.Image, whitelist: str | None = None) -> str:
        self._api.SetVariable("tessedit_char_whitelist", whitelist or "")
        self._api.SetImage(image)
        return str(self._api.GetUTF8Text()).strip()

    def close(self) -> None:
        self._api.End()

    def __enter__(self) -> TesseractOcr:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def tesseract(lang: str = "kor+eng") -> Iterator[TesseractOcr]:
    engine = TesseractOcr(lang)
    try:
        yield engine
    finally:
        engine.close()


def flatten_light(image: Image.Image, kernel: int = 25) -> Image.Image:
    """Grey image divided by its local background (a morphological closing): evens out light
    gradients and background print before Tesseract's own thresholding. On 72 photographed
    specimens this cut number misreads from 7 to 2."""
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    background = cv2.morphologyEx(grey, cv2.MORPH_CLOSE, np.ones((kernel, kernel), np.uint8))
    flat = np.clip(grey / np.maximum(background, 1.0) * 255.0, 0, 255).astype(np.uint8)
    return Image.fromarray(flat)


def trim_to_ink(image: Image.Image, *, dark: int = 150, pad: int = 8) -> Image.Image:
    """Crop a light-flattened grey image to the bounding box of its dark (ink) pixels.

    Tesseract's line mode misreads a short title inside a mostly empty band (on specimens,
    `주민등록증` came back as digits); trimming to the ink fixed those cases."""
    flat = flatten_light(image)
    ink = np.asarray(flat) < dark
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return flat
    box = (
        max(0, int(cols[0]) - pad),
        max(0, int(rows[0]) - pad),
        min(flat.width, int(cols[-1]) + pad + 1),
        min(flat.height, int(rows[-1]) + pad + 1),
    )
    return flat.crop(box)


def read_number(
    card: npt.NDArray[np.uint8] | Image.Image, doc_type: DocumentType, ocr: OcrEngine
) -> str:
    """Read the `number` field of a rectified specimen card, or raise `field_unreadable`.

    Registration numbers must read as `YYMMDD-NNNNNNN` (a missing hyphen after 13 digits is
    restored); passport numbers as 1-9 characters A-Z, 0-9. Validation is the caller's job.
    """
    image = card if isinstance(card, Image.Image) else Image.fromarray(card)
    crop = flatten_light(image.crop(NUMBER_REGIONS[doc_type]))
    if doc_type is DocumentType.PASSPORT:
        text = re.sub(r"\s", "", ocr.read_line(crop, PASSPORT_CHARS))
        if re.fullmatch(r"[A-Z0-9]{1,9}", text):
            return text
    else:
        text = re.sub(r"\s", "", ocr.read_line(crop, DIGITS_HYPHEN))
        if re.fullmatch(r"\d{13}", text):
            text = f"{text[:6]}-{text[6:]}"
        if _RRN.fullmatch(text):
            return text
    raise DocumentError(ReasonCode.FIELD_UNREADABLE, "the number field could not be read")


def read_fields(
    card: npt.NDArray[np.uint8] | Image.Image,
    doc_type: DocumentType,
    *,
    kor: OcrEngine,
    eng: OcrEngine,
) -> dict[str, str]:
    """Read the other fields of `FIELD_REGIONS` (names, dates, licence number).

    Each reading must parse as its kind (Hangul name of 2-5 syllables, Latin name, 3-letter
    nationality code, ISO date
    from `2024.03.05.` or `05 MAR 2024`, licence number `RR-YY-NNNNNN-CC`); a field that does
    not is left out, so its `field_*` check reports `field_unreadable`.
    """
    image = card if isinstance(card, Image.Image) else Image.fromarray(card)
    out: dict[str, str] = {}
    for name, (region, kind) in FIELD_REGIONS[doc_type].items():
        crop = flatten_light(image.crop(region))
        engine = kor if kind == "hangul" else eng
        value = _parse(kind, engine.read_line(crop, _WHITELISTS[kind]))
        if value is not None:
            out[name] = value
    return out


def _parse(kind: str, text: str) -> str | None:
    compact = re.sub(r"\s", "", text)
    if kind == "hangul":
        return compact if re.fullmatch(r"[가-힣]{2,5}", compact) else None
    if kind == "latin":
        words = re.sub(r"[^A-Z ]", "", text).split()
        return " ".join(words) if words else None
    if kind == "sex":
        return compact if compact in ("M", "F", "X") else None
    if kind == "code3":
        words = text.split()
        return words[0] if words and re.fullmatch(r"[A-Z]{3}", words[0]) else None
    if kind == "licence":
        digits = compact.replace("-", "")
        if re.fullmatch(r"\d{12}", digits):
            return f"{digits[:2]}-{digits[2:4]}-{digits[4:10]}-{digits[10:]}"
        return None
    if kind == "dot_date":
        m = re.fullmatch(r"(\d{4})\.?(\d{2})\.?(\d{2})\.?", compact)
        parts = (m.group(1), m.group(2), m.group(3)) if m else None
    else:  # en_date
        m = re.fullmatch(r"(\d{1,2})([A-Z]{3})(\d{4})", compact)
        if m is None or m.group(2) not in MONTHS:
            return None
        parts = (m.group(3), f"{MONTHS.index(m.group(2)) + 1:02d}", m.group(1))
    if parts is None:
        return None
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2])).isoformat()
    except ValueError:
        return None
