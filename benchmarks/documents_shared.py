"""The document reader on the real specimens of ../shared/data/documents (issue 4).

    OMP_THREAD_LIMIT=1 uv run python benchmarks/documents_shared.py [--json] [--today 2026-11-27]

Every image in `labels.csv` that is a document (PassportEye's 30 specimen passports, ID cards
and visas; the 4 kimlia545 Korean resident-card mock-ups; not the blank background or the
source face) goes through `read_document` as `faceproof document read` runs it (Tesseract
`kor+eng` and `eng`, the YuNet portrait check), and separately through `mrz_zone.read_zone`.
Per image and in total:

- `found`: the card or page was located (`outline`, `frame` or `mrz`, see `ReadResult`);
- `type`: the type read (or the reason code the read stopped with); `type right` counts
  passports read as `passport` and the Korean mock-ups as `kr_resident_card`;
- `mrz_zone`: a block of 2-3 long parallel text lines (an MRZ candidate) was found;
- `mrz_valid`: an MRZ read with **every check digit valid** (there is no MRZ ground truth, so
  this is the proxy for a correct read), and its format (TD3, TD1, TD2, MRV-A, MRV-B);
- `consistent`: the MRZ's fields agree with each other and with the file: issuing state equals
  the file name's country (`COUNTRY_CODES` for the few file names that are not ICAO codes),
  nationality is letters (on a passport: the issuing state's), birth date before today and
  before expiry, sex M/F/X, a surname, a document number without an `O` beside a digit
  (OCR-B's O/0 twins);
- `portrait`: a face in the portrait cut-out (the read's `portrait_face` check);
- time of `read_document` per image (median over the images; wall clock, one core if
  `OMP_THREAD_LIMIT=1`).

Evaluation only: the images are read from ../shared/data at run time and nothing is written.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceproof.capture import load_image
from faceproof.documents.mrz import TD3
from faceproof.documents.mrz_zone import find_zone_lines, read_zone
from faceproof.documents.ocr import TesseractOcr
from faceproof.documents.read import read_document
from faceproof.errors import FaceproofError
from faceproof.faces.detector import YuNetDetector

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "documents"
#: doc_type values in labels.csv that are not documents (the generator's blank card, a face).
NOT_DOCUMENTS = {"blank_card_template", "portrait_source"}
#: File-name countries that are not the ICAO code printed in the MRZ, and why:
#: `POLX` are PassFactory screenshots with Polish sample data; `SI` is Slovenia (SVN);
#: `CHN` is the Republic of China (Taiwan) specimen ("REPUBLIC OF CHINA" on the page: TWN);
#: `BDR` is the German specimen, whose MRZ shows the old code BDR (later D).
COUNTRY_CODES: dict[str, set[str]] = {
    "POLX": {"POL"},
    "SI": {"SVN"},
    "CHN": {"TWN", "CHN"},
    "BDR": {"BDR", "D"},
}
_O_BY_DIGIT = re.compile(r"O[0-9]|[0-9]O")
#: The faceproof type each kind of specimen should be read as (foreign ID cards and visas are
#: not faceproof types: they should stop with a reason code).
_RIGHT_TYPE = {
    "passport": "passport",
    "synthetic_kr_resident_card": "kr_resident_card",
    "synthetic_kr_resident_card_augmented": "kr_resident_card",
}


@dataclass
class Row:
    path: str
    doc_type: str
    country: str
    found: str = ""  # how: outline / frame / mrz; empty when not found
    read_type: str = ""  # the type read, or the reason code the read stopped with
    exit_code: int = 0  # as `document read` would exit: 0 accepted, 1 rejected, 3 input
    mrz_zone: bool = False
    mrz_format: str = ""
    mrz_valid: bool = False
    consistent: bool = False
    inconsistent: list[str] = field(default_factory=list)
    portrait: bool = False
    read_ms: float = 0.0


def consistency(mrz: TD3, country: str, today: date) -> list[str]:
    """What in a check-digit-valid MRZ disagrees with itself or with the file (empty: none)."""
    wrong = []
    expected = COUNTRY_CODES.get(country, {country})
    if mrz.issuing_state not in expected:
        wrong.append("issuing_state")
    # A passport's holder is (nearly always) a national of the issuing state.
    national = expected | {mrz.issuing_state} if mrz.format == "TD3" else None
    if not re.fullmatch(r"[A-Z]{1,3}", mrz.nationality) or (
        national is not None and mrz.nationality not in national
    ):
        wrong.append("nationality")
    if mrz.birth_date is None or mrz.birth_date >= today:
        wrong.append("birth_date")
    if mrz.expiry_date is None or (mrz.birth_date and mrz.expiry_date <= mrz.birth_date):
        wrong.append("expiry_date")
    if mrz.sex not in ("M", "F", "X"):
        wrong.append("sex")
    if not mrz.primary_identifier:
        wrong.append("names")
    if not mrz.document_number or _O_BY_DIGIT.search(mrz.document_number):
        wrong.append("document_number")
    return wrong


def measure(row: dict[str, str], today: date, kor: Any, eng: Any, detector: Any) -> Row:
    out = Row(row["path"], row["doc_type"], row["country"])
    pixels = np.asarray(load_image(DATA / row["path"]).pixels)
    started = time.perf_counter()
    try:
        result = read_document(pixels, today=today, kor=kor, eng=eng, detector=detector)
    except FaceproofError as exc:
        out.read_type = exc.code.value
        out.exit_code = 3
    else:
        out.found = result.located_by
        out.read_type = result.document.type.value
        out.exit_code = 0 if result.document.accepted else 1
        out.portrait = any(c.name == "portrait_face" and c.ok for c in result.document.checks)
    out.read_ms = 1000 * (time.perf_counter() - started)
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    scale = 1000 / max(grey.shape)
    small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    out.mrz_zone = bool(find_zone_lines(small) or find_zone_lines(np.rot90(small).copy()))
    zone = read_zone(pixels, today=today)
    if zone is not None:
        out.mrz_valid = True
        out.mrz_format = zone.mrz.format
        out.inconsistent = consistency(zone.mrz, row["country"], today)
        out.consistent = not out.inconsistent
    return out


def summary(rows: list[Row]) -> dict[str, Any]:
    def count(group: list[Row]) -> dict[str, Any]:
        return {
            "images": len(group),
            "found": sum(bool(r.found) for r in group),
            "type_right": sum(r.read_type == _RIGHT_TYPE.get(r.doc_type) for r in group),
            "mrz_zone": sum(r.mrz_zone for r in group),
            "mrz_valid": sum(r.mrz_valid for r in group),
            "mrz_td3": sum(r.mrz_format == "TD3" for r in group),
            "consistent": sum(r.consistent for r in group),
            "portrait": sum(r.portrait for r in group),
            "median_read_ms": round(statistics.median(r.read_ms for r in group)) if group else 0,
        }

    groups = {
        "passport": [r for r in rows if r.doc_type == "passport"],
        "id_card": [r for r in rows if r.doc_type in ("id_card", "card")],
        "visa": [r for r in rows if r.doc_type == "visa"],
        "korean_synthetic": [r for r in rows if r.doc_type.startswith("synthetic_kr")],
    }
    return {name: count(group) for name, group in groups.items()} | {"all": count(rows)}


def markdown(rows: list[Row], totals: dict[str, Any]) -> str:
    lines = [
        "| image | kind | found | type / reason | MRZ zone | MRZ valid | consistent | portrait "
        "| ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        valid = r.mrz_format if r.mrz_valid else "–"
        fine = "yes" if r.consistent else (", ".join(r.inconsistent) or "–")
        lines.append(
            f"| {Path(r.path).name} | {r.doc_type} | {r.found or '–'} | {r.read_type} "
            f"| {'yes' if r.mrz_zone else 'no'} | {valid} | {fine} "
            f"| {'yes' if r.portrait else 'no'} | {r.read_ms:.0f} |"
        )
    lines += [
        "",
        "| group | images | found | type right | MRZ zone | MRZ valid (TD3) | consistent "
        "| portrait | median ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, t in totals.items():
        lines.append(
            f"| {name} | {t['images']} | {t['found']} | {t['type_right']} | {t['mrz_zone']} "
            f"| {t['mrz_valid']} ({t['mrz_td3']}) | {t['consistent']} | {t['portrait']} "
            f"| {t['median_read_ms']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    parser.add_argument("--today", type=date.fromisoformat, default=date(2026, 11, 27))
    args = parser.parse_args()
    labels = DATA / "labels.csv"
    if not labels.is_file():
        print(f"{DATA} is not present (evaluation-only data, kept beside the repository)",
              file=sys.stderr)  # fmt: skip
        return 2
    with labels.open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["doc_type"] not in NOT_DOCUMENTS]
    detector = YuNetDetector()
    with TesseractOcr("kor+eng") as kor, TesseractOcr("eng") as eng:
        measured = [measure(r, args.today, kor, eng, detector) for r in rows]
    totals = summary(measured)
    if args.json:
        print(json.dumps({"rows": [asdict(r) for r in measured], "totals": totals}, indent=2))
    else:
        print(markdown(measured, totals))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
