"""CLI for ID documents: `faceproof specimen ...` and `faceproof document ...`.

`add_parsers(subparsers)` registers both commands on the main parser's subparsers; each parser
sets `handler` (a function `Namespace -> exit code`), so the main CLI can dispatch with
`return args.handler(args)`. Exit codes follow the README: 0 success / document accepted,
1 document not accepted (a check rejects it), 2 usage or unreadable input file, 3 unusable
input (reason code printed), 4 server-side failure (e.g. fonts not installed).

- `faceproof specimen --type TYPE [--portrait FACE] [--photographed] [--seed N] --out card.png`
  writes a synthetic specimen card and its ground truth `card.json` beside it.
- `faceproof document validate FILE.json [--today YYYY-MM-DD] [--json] [--reveal]` runs every
  rule on a fields file: `{"type": ..., "fields": {...}}`, e.g. a specimen's `card.json`.
- `faceproof document mrz FILE|- [--today ...] [--json]` parses and checks a TD3 MRZ.
- `faceproof document read IMAGE [--json] [--reveal]` reads a card photo: type, the fields
  read so far (see documents/read.py), every check, the portrait box and its face check.
  Exit 0 when accepted, 1 when a check rejects it, 3 with a reason code when no card is found
  or its type is unknown.
- `faceproof document issuer-sim --registry cards.json [--host H] [--port P]` runs the issuer
  (진위확인) simulator; `document read --issuer URL` asks it (or any service with the contract).
- `faceproof document locate IMAGE [--out rectified.png] [--json]` finds the card's corners.

Registration numbers are masked in all output unless `--reveal` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from faceproof.errors import FaceproofError, InputError

__all__ = [
    "add_parsers",
    "run_document_locate",
    "run_document_mrz",
    "run_document_read",
    "run_document_validate",
    "run_issuer_sim",
    "run_specimen",
]

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_SERVICE = 4

_TYPES = (
    "kr_resident_card",
    "kr_driver_license",
    "kr_residence_card",
    "kr_merit_card",
    "kr_disability_card",
    "passport",
)


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from exc


def add_parsers(subparsers: Any) -> None:
    """Register `specimen` and `document` on an argparse subparsers object."""
    sp = subparsers.add_parser("specimen", help="render a synthetic ID card specimen (+ JSON)")
    sp.add_argument("--type", required=True, choices=_TYPES, dest="doc_type")
    sp.add_argument("--portrait", metavar="FACE", help="face image (default: bundled example)")
    sp.add_argument("--photographed", action="store_true", help="place it in a synthetic photo")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--expired", action="store_true", help="an expiry date in the past")
    sp.add_argument("--today", type=_iso_date, help="anchor date for the data (default: today)")
    sp.add_argument("--out", required=True, help="PNG path; the ground truth goes to .json")
    sp.set_defaults(handler=run_specimen)

    doc = subparsers.add_parser("document", help="ID documents: validate fields, MRZ, locate")
    dsub = doc.add_subparsers(dest="document_command", required=True)
    val = dsub.add_parser("validate", help="run every rule on a fields JSON file")
    val.add_argument("file", help='JSON {"type": ..., "fields": {...}} or - for stdin')
    val.add_argument("--type", choices=_TYPES, dest="doc_type", help="override the type")
    val.add_argument("--today", type=_iso_date, help="date for expiry checks (default: today)")
    val.add_argument("--json", action="store_true")
    val.add_argument("--reveal", action="store_true", help="print raw numbers (default masked)")
    val.set_defaults(handler=run_document_validate)

    mrz = dsub.add_parser("mrz", help="parse and check a passport MRZ (ICAO 9303 TD3)")
    mrz.add_argument("file", help="text file with the 2 MRZ lines, or - for stdin")
    mrz.add_argument("--today", type=_iso_date)
    mrz.add_argument("--json", action="store_true")
    mrz.add_argument("--reveal", action="store_true")
    mrz.set_defaults(handler=run_document_mrz)

    rd = dsub.add_parser("read", help="read a card photo: type, fields, checks, portrait")
    rd.add_argument("image")
    rd.add_argument("--today", type=_iso_date, help="date for expiry checks (default: today)")
    rd.add_argument("--json", action="store_true")
    rd.add_argument("--reveal", action="store_true", help="print raw numbers (default masked)")
    rd.add_argument(
        "--no-portrait-check", action="store_true", help="skip the face check on the portrait"
    )
    rd.add_argument("--issuer", metavar="URL", help="issuer check service (e.g. issuer-sim)")
    rd.set_defaults(handler=run_document_read)

    sim = dsub.add_parser("issuer-sim", help="run the local issuer (진위확인) simulator")
    sim.add_argument("--registry", required=True, help='JSON {"cards": [...]} of issued cards')
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8099)
    sim.set_defaults(handler=run_issuer_sim)

    loc = dsub.add_parser("locate", help="find the card's corners in a photo and rectify it")
    loc.add_argument("image")
    loc.add_argument("--aspect", choices=("id1", "td3"), default="id1")
    loc.add_argument("--out", help="write the rectified card to this PNG")
    loc.add_argument("--json", action="store_true")
    loc.set_defaults(handler=run_document_locate)


def _fail(exc: FaceproofError, *, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": exc.to_dict()}, ensure_ascii=False))
    else:
        print(f"faceproof: {exc.code.value}: {exc.detail}", file=sys.stderr)
    return EXIT_INPUT if isinstance(exc, InputError) else EXIT_SERVICE


def _usage(message: str) -> int:
    print(f"faceproof: {message}", file=sys.stderr)
    return EXIT_USAGE


def _read_text(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    return Path(source).read_text(encoding="utf-8")


def run_specimen(args: argparse.Namespace) -> int:
    from faceproof.documents.specimen import photograph, render_specimen
    from faceproof.documents.types import DocumentType

    try:
        portrait = None
        if args.portrait:
            from PIL import Image

            from faceproof.capture import load_image

            portrait = Image.fromarray(load_image(args.portrait).pixels)
        spec = render_specimen(
            DocumentType(args.doc_type),
            seed=args.seed,
            portrait=portrait,
            today=args.today,
            expired=args.expired,
        )
        out = Path(args.out)
        if args.photographed:
            photo = photograph(spec, seed=args.seed)
            image, truth = photo.image, photo.ground_truth()
        else:
            image, truth = spec.image, spec.ground_truth()
    except FaceproofError as exc:
        return _fail(exc, as_json=False)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        image.save(out, format="PNG")
        truth_path = out.with_suffix(".json")
        truth_path.write_text(json.dumps(truth, ensure_ascii=False, indent=2) + "\n", "utf-8")
    except OSError as exc:
        return _usage(f"cannot write {out}: {exc.strerror}")
    print(f"{out} ({args.doc_type}, synthetic specimen) and {truth_path}", file=sys.stderr)
    return EXIT_OK


def _print_read(read: Any, *, as_json: bool, reveal: bool) -> None:
    from faceproof.reasons import describe

    data = read.to_dict(reveal=reveal)
    if as_json:
        data["messages"] = [describe(c).to_dict() for c in read.reasons]
        print(json.dumps(data, ensure_ascii=False))
        return
    print(f"{data['type']}: {'accepted' if read.accepted else 'not accepted'}")
    for name, value in data["fields"].items():
        print(f"  {name}: {value}".replace("\n", " / "))
    for check in read.checks:
        mark = "ok  " if check.ok else ("FAIL" if check.rejects else "warn")
        extra = f" ({check.detail})" if check.detail else ""
        print(f"  [{mark}] {check.name}: {check.code.value}{extra}")


def run_document_validate(args: argparse.Namespace) -> int:
    from faceproof.documents.checks import validate_document
    from faceproof.documents.types import FIELD_NAMES, DocumentType

    try:
        data = json.loads(_read_text(args.file))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _usage(f"cannot read fields JSON {args.file}: {exc}")
    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
        return _usage('expected a JSON object {"type": ..., "fields": {...}}')
    doc_type = args.doc_type or data.get("type")
    if doc_type not in _TYPES:
        return _usage(f"unknown or missing document type {doc_type!r}; one of {_TYPES}")
    fields = {k: str(v) for k, v in data["fields"].items() if k in FIELD_NAMES and v is not None}
    try:
        read = validate_document(DocumentType(doc_type), fields, today=args.today or date.today())
    except FaceproofError as exc:
        return _fail(exc, as_json=args.json)
    _print_read(read, as_json=args.json, reveal=args.reveal)
    return EXIT_OK if read.accepted else EXIT_REJECTED


def run_document_mrz(args: argparse.Namespace) -> int:
    from faceproof.documents.mrz import parse_td3

    try:
        text = _read_text(args.file)
    except (OSError, UnicodeDecodeError) as exc:
        return _usage(f"cannot read {args.file}: {exc}")
    try:
        mrz = parse_td3(text, today=args.today or date.today())
    except FaceproofError as exc:
        return _fail(exc, as_json=args.json)
    out: dict[str, Any] = {
        "valid": mrz.valid,
        "document_code": mrz.document_code,
        "issuing_state": mrz.issuing_state,
        "name_latin": mrz.name_latin,
        "number": mrz.document_number if args.reveal else _mask(mrz.document_number),
        "nationality": mrz.nationality,
        "birth_date": mrz.birth_date.isoformat() if mrz.birth_date else None,
        "sex": mrz.sex,
        "expiry_date": mrz.expiry_date.isoformat() if mrz.expiry_date else None,
        "checks": [c.to_dict() for c in mrz.checks],
        "repairs": list(mrz.repairs),
    }
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        for key, value in out.items():
            print(f"{key}: {value}")
    return EXIT_OK if mrz.valid else EXIT_REJECTED


def _mask(number: str) -> str:
    from faceproof.documents.privacy import mask_number

    return mask_number(number)


def run_document_read(args: argparse.Namespace) -> int:
    from faceproof.capture import load_image
    from faceproof.documents.ocr import TesseractOcr
    from faceproof.documents.read import read_document

    try:
        image = load_image(args.image)
        detector = None
        if not args.no_portrait_check:
            from faceproof.faces.detector import YuNetDetector

            detector = YuNetDetector()
        issuer = None
        if args.issuer:
            from faceproof.documents.issuer import HttpIssuerCheck

            issuer = HttpIssuerCheck(args.issuer)
        try:
            with TesseractOcr("kor+eng") as kor, TesseractOcr("eng") as eng:
                result = read_document(
                    image.pixels,
                    today=args.today or date.today(),
                    kor=kor,
                    eng=eng,
                    detector=detector,
                    issuer=issuer,
                )
        finally:
            if issuer is not None:
                issuer.close()
    except FaceproofError as exc:
        return _fail(exc, as_json=args.json)
    _print_read(result.document, as_json=args.json, reveal=args.reveal)
    return EXIT_OK if result.document.accepted else EXIT_REJECTED


def run_issuer_sim(args: argparse.Namespace) -> int:
    from faceproof.documents.issuer import IssuerRegistry, make_server

    try:
        registry = IssuerRegistry.load(args.registry)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        return _usage(f"cannot read issuer registry {args.registry}: {exc}")
    try:
        server = make_server(registry, args.host, args.port)
    except OSError as exc:
        return _usage(f"cannot listen on {args.host}:{args.port}: {exc.strerror}")
    port = server.server_address[1]
    print(f"issuer-sim listening on http://{args.host}:{port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return EXIT_OK


def run_document_locate(args: argparse.Namespace) -> int:
    from faceproof.capture import load_image
    from faceproof.documents.locate import locate_card, rectify

    try:
        image = load_image(args.image)
        quad = locate_card(image.pixels)
        size = (1012, 638) if args.aspect == "id1" else (1012, 712)
        card = rectify(image.pixels, quad.corners, size=size)
    except FaceproofError as exc:
        return _fail(exc, as_json=args.json)
    out = {"corners": [[round(x, 1), round(y, 1)] for x, y in quad.corners]}
    if args.out:
        from PIL import Image

        try:
            Image.fromarray(card).save(args.out, format="PNG")
        except OSError as exc:
            return _usage(f"cannot write {args.out}: {exc.strerror}")
    print(json.dumps(out) if args.json else f"corners: {out['corners']}")
    return EXIT_OK
