"""`faceproof verify --document CARD --clip CLIP [--challenge SPEC] [--json]`: the offline path.

Runs the service's decision engine (`faceproof.verification`) with no server: the card's face,
liveness on the clip, the clip's best frame matched to the card, one attempt of one. The
document reader is not integrated yet, so the document is `not_verified` and a live match is
`review` with `document_not_verified`, never `pass`.

Contract: with `--json`, exactly one JSON object on stdout with at least `decision`, `reasons`,
`messages`, `match` (`score`, `threshold`, `fmr_target`, `match`; nulls and `match: false` when
the match did not run because the clip was not live), `liveness` (the liveness result) and
`document` (`status`, `face`: the card's face observation). For unusable input the same keys
are printed with `decision: null`, the error's code in `reasons` and an `error` object.

Exit codes (as cli/main.py): 0 pass, 1 any other decision (review, retry, fail,
alternative_required), 2 usage, 3 unusable input (unreadable card or clip, no face, two faces,
unknown or expired challenge; the reason code is printed), 4 server-side failure (models).

`--challenge SPEC` is verified with `FACEPROOF_CHALLENGE_KEY` (hex), as `faceproof liveness`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from faceproof.errors import FaceproofError, InputError
from faceproof.reasons import ReasonCode, describe

__all__ = ["add_parsers", "run_verify"]

EXIT_PASS, EXIT_NOT_PASS, EXIT_USAGE, EXIT_INPUT, EXIT_SERVICE = 0, 1, 2, 3, 4


def add_parsers(subparsers: Any) -> None:
    """Register the `verify` command on an argparse subparsers object."""
    p = subparsers.add_parser(
        "verify",
        help="offline identity check: ID card image + liveness clip -> decision (no server)",
    )
    p.add_argument("--document", required=True, metavar="CARD", help="image of the ID card")
    p.add_argument("--clip", required=True, metavar="CLIP", help="video file or folder of frames")
    p.add_argument("--challenge", metavar="SPEC", help="signed challenge spec the clip answers")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_verify)


def _emit_error(exc: FaceproofError, as_json: bool, face: dict[str, Any] | None) -> int:
    if as_json:
        out = {
            "decision": None,
            "reasons": [exc.code.value],
            "messages": [describe(exc.code).to_dict()],
            "match": {"score": None, "threshold": None, "fmr_target": None, "match": False},
            "liveness": None,
            "document": {"status": "not_verified", "face": face},
            "error": exc.to_dict(),
        }
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(f"faceproof: {exc.code.value}: {exc.detail}", file=sys.stderr)
    return EXIT_INPUT if isinstance(exc, InputError) else EXIT_SERVICE


def run_verify(args: argparse.Namespace) -> int:
    from faceproof.cli.liveness import CHALLENGE_KEY_ENV, _key
    from faceproof.liveness.challenge import Challenge, ChallengeError, ChallengeIssuer
    from faceproof.verification import DocumentStatus, decide, gather_evidence

    as_json = bool(getattr(args, "json", False))
    face: dict[str, Any] | None = None
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
        from faceproof.comparison import FaceComparer
        from faceproof.liveness.clip import load_clip
        from faceproof.liveness.engine import LivenessEngine

        comparer = FaceComparer()
        try:
            card = comparer.template(args.document)
        except InputError as exc:
            exc.context.setdefault("input", "document")
            raise
        face = card.observation.to_dict()
        try:
            clip = load_clip(args.clip)
        except InputError as exc:
            exc.context.setdefault("input", "clip")
            raise
        evidence = gather_evidence(comparer, LivenessEngine(), card, clip, challenge)
        del clip, card
        if evidence.unusable is not None:  # no face, two faces, ...: unusable input offline
            raise InputError(evidence.unusable, input="clip")
    except FaceproofError as exc:
        return _emit_error(exc, as_json, face)
    decision = decide(
        match=evidence.match,
        liveness=evidence.liveness,
        attempt=1,
        attempts_limit=1,
        document=DocumentStatus.NOT_VERIFIED,  # the document reader is not integrated yet
        models=evidence.models,
    )
    if as_json:
        out = decision.to_dict()
        out["document"] = {"status": decision.document.value, "face": face}
        print(json.dumps(out, ensure_ascii=False))
    else:
        m = decision.match_dict()
        live = "-" if decision.liveness is None else str(decision.liveness.live).lower()
        score = "-" if m["score"] is None else f"{m['score']:.3f}/{m['threshold']:.3f}"
        print(
            f"{decision.outcome.value.upper()}  live={live}  match={score}  "
            f"reasons: {', '.join(decision.codes)}"
        )
    return EXIT_PASS if decision.outcome.value == "pass" else EXIT_NOT_PASS
