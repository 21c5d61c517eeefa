"""`faceproof verify --document CARD --clip CLIP [--challenge SPEC] [--issuer URL] [--json]`.

The offline path: the service's decision engine (`faceproof.verification`) with no server, one
attempt of one. The card photo is read (`verification.read_card`: type, fields, checks, the
issuer check with `--issuer`, the face template of the card's cut-out portrait), liveness runs
on the clip and the clip's best frame is matched to the portrait. Live + match + verified
document is `pass`; an unverified document (a field not read, `issuer_unavailable`) is
`review`; a rejected document (`document_expired`, `issuer_revoked`, `portrait_no_face`, ...)
is `fail` and the clip is not analysed.

Contract: with `--json`, exactly one JSON object on stdout with at least `decision`, `reasons`,
`messages`, `match` (`score`, `threshold`, `fmr_target`, `match`; nulls and `match: false` when
the match did not run because the clip was not live), `liveness` (the liveness result) and
`document` (`status`: verified | unverified | rejected, `type`, `reasons`, `checks` as
`{name, passed, code}`, `face`: the portrait's face observation). No field values and no
numbers are printed. For unusable input the same keys are printed with `decision: null`, the
error's code in `reasons` and an `error` object (a photo that is not a readable card:
`card_not_found`, `card_blurry`, `document_type_unknown`, ...).

Exit codes (as cli/main.py): 0 pass, 1 any other decision (review, retry, fail,
alternative_required), 2 usage, 3 unusable input (unreadable card or clip, no face, two faces,
unknown or expired challenge; the reason code is printed), 4 server-side failure (models).

`--challenge SPEC` is verified with `FACEPROOF_CHALLENGE_KEY` (hex), as `faceproof liveness`.
`--issuer URL` asks an issuer service (the contract of documents/issuer.py, e.g. `faceproof
document issuer-sim`) with a 2 s timeout; unreachable is `issuer_unavailable` (review).
`--today YYYY-MM-DD` sets the date for the expiry checks (default: today's date in Korea).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

from faceproof.errors import FaceproofError, InputError
from faceproof.reasons import ReasonCode, describe

__all__ = ["add_parsers", "run_verify"]

EXIT_PASS, EXIT_NOT_PASS, EXIT_USAGE, EXIT_INPUT, EXIT_SERVICE = 0, 1, 2, 3, 4
ISSUER_TIMEOUT_SECONDS = 2.0


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from exc


def add_parsers(subparsers: Any) -> None:
    """Register the `verify` command on an argparse subparsers object."""
    p = subparsers.add_parser(
        "verify",
        help="offline identity check: ID card image + liveness clip -> decision (no server)",
    )
    p.add_argument("--document", required=True, metavar="CARD", help="image of the ID card")
    p.add_argument("--clip", required=True, metavar="CLIP", help="video file or folder of frames")
    p.add_argument("--challenge", metavar="SPEC", help="signed challenge spec the clip answers")
    p.add_argument("--issuer", metavar="URL", help="issuer check service (e.g. issuer-sim)")
    p.add_argument("--today", type=_iso_date, help="date for the expiry checks (YYYY-MM-DD)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_verify)


def _emit_error(exc: FaceproofError, as_json: bool, face: dict[str, Any] | None) -> int:
    if as_json:
        out: dict[str, Any] = {
            "decision": None,
            "reasons": [exc.code.value],
            "messages": [describe(exc.code).to_dict()],
            "match": {"score": None, "threshold": None, "fmr_target": None, "match": False},
            "liveness": None,
            "document": {
                "status": "unverified",
                "type": None,
                "reasons": [],
                "checks": [],
                "face": face,
            },
            "error": exc.to_dict(),
        }
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(f"faceproof: {exc.code.value}: {exc.detail}", file=sys.stderr)
    return EXIT_INPUT if isinstance(exc, InputError) else EXIT_SERVICE


def run_verify(args: argparse.Namespace) -> int:
    from faceproof.cli.liveness import CHALLENGE_KEY_ENV, _key
    from faceproof.liveness.challenge import Challenge, ChallengeError, ChallengeIssuer
    from faceproof.verification import DocumentStatus, Evidence, decide, gather_evidence

    as_json = bool(getattr(args, "json", False))
    face: dict[str, Any] | None = None
    issuer: Any = None
    try:
        challenge: Challenge | None = None
        if args.challenge is not None:
            key = _key()
            if key is None:
                raise ChallengeError(
                    ReasonCode.CHALLENGE_UNKNOWN,
                    f"No challenge key is configured (${CHALLENGE_KEY_ENV}); cannot verify.",
                )
            challenge = ChallengeIssuer(key).verify(args.challenge)
        from faceproof.capture import load_image
        from faceproof.comparison import FaceComparer
        from faceproof.documents.ocr import TesseractOcr
        from faceproof.liveness.clip import load_clip
        from faceproof.liveness.engine import LivenessEngine
        from faceproof.liveness.pad_model import pad_model_from_env
        from faceproof.verification import read_card

        if getattr(args, "issuer", None):
            from faceproof.documents.issuer import HttpIssuerCheck

            issuer = HttpIssuerCheck(args.issuer, timeout=ISSUER_TIMEOUT_SECONDS)
        today = getattr(args, "today", None) or (datetime.now(UTC) + timedelta(hours=9)).date()
        comparer = FaceComparer()
        try:
            photo = load_image(args.document)
            with TesseractOcr("kor+eng") as kor, TesseractOcr("eng") as eng:
                document, card = read_card(
                    photo.pixels, comparer, today=today, kor=kor, eng=eng, issuer=issuer
                )
            del photo
        except InputError as exc:
            exc.context.setdefault("input", "document")
            raise
        if card is None:  # a rejected document: fail, the clip is not analysed
            evidence = Evidence(None, None, None, ())
        else:
            face = card.observation.to_dict()
            try:
                clip = load_clip(args.clip)
            except InputError as exc:
                exc.context.setdefault("input", "clip")
                raise
            engine = LivenessEngine(pad_model=pad_model_from_env())
            evidence = gather_evidence(comparer, engine, card, clip, challenge)
            del clip, card
            if evidence.unusable is not None:  # no face, two faces, ...: unusable input offline
                raise InputError(evidence.unusable, input="clip")
    except FaceproofError as exc:
        return _emit_error(exc, as_json, face)
    finally:
        if issuer is not None:
            issuer.close()
    decision = decide(
        match=evidence.match,
        liveness=evidence.liveness,
        attempt=1,
        attempts_limit=1,
        document=document.status,
        document_reasons=document.reasons,
        models=evidence.models,
    )
    if as_json:
        out = decision.to_dict()
        out["document"] = {**document.to_dict(), "face": face}
        print(json.dumps(out, ensure_ascii=False))
    else:
        m = decision.match_dict()
        live = "-" if decision.liveness is None else str(decision.liveness.live).lower()
        score = "-" if m["score"] is None else f"{m['score']:.3f}/{m['threshold']:.3f}"
        rejected = document.status is DocumentStatus.REJECTED
        print(
            f"{decision.outcome.value.upper()}  document={document.status.value}  live={live}  "
            f"match={score}  reasons: {', '.join(decision.codes)}"
            + ("  (the clip was not analysed)" if rejected else "")
        )
    return EXIT_PASS if decision.outcome.value == "pass" else EXIT_NOT_PASS
