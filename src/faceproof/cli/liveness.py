"""`faceproof liveness CLIP [--json] [--challenge SPEC]`: judge a clip; wired in by cli/main.py.

Contract: with `--json`, exactly one JSON object on stdout with at least `live` (bool), `score`
and `reasons` (list of reason codes), also when the clip or the challenge is unusable (then
`live` is false, `score` 0, `reasons` holds the error's code and `error` its details).

Exit codes (as cli/main.py): 0 live, 1 not live, 2 usage error, 3 unusable input (corrupt or
short clip, no face, two faces, unknown or expired challenge), 4 server-side failure (models).

A challenge spec is verified with the key in the environment variable
`FACEPROOF_CHALLENGE_KEY` (hex, >= 16 bytes), the key the issuing service used.
`faceproof liveness --new-challenge SESSION` prints a fresh spec signed with that key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from faceproof.errors import FaceproofError, InputError
from faceproof.reasons import ReasonCode, describe

__all__ = ["CHALLENGE_KEY_ENV", "add_parsers", "run_liveness"]

CHALLENGE_KEY_ENV = "FACEPROOF_CHALLENGE_KEY"
EXIT_LIVE, EXIT_NOT_LIVE, EXIT_USAGE, EXIT_INPUT, EXIT_SERVICE = 0, 1, 2, 3, 4


def add_parsers(subparsers: Any) -> None:
    """Register the `liveness` command on an argparse subparsers object."""
    p = subparsers.add_parser(
        "liveness", help="judge whether a short clip shows a live face (not a photo or screen)"
    )
    p.add_argument("clip", nargs="?", metavar="CLIP", help="video file or folder of frames")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--challenge", metavar="SPEC", help="signed challenge spec the clip answers")
    p.add_argument(
        "--new-challenge",
        metavar="SESSION",
        help=f"print a new challenge spec for SESSION (key from ${CHALLENGE_KEY_ENV})",
    )
    p.set_defaults(handler=run_liveness)


def _key() -> bytes | None:
    raw = os.environ.get(CHALLENGE_KEY_ENV, "")
    try:
        key = bytes.fromhex(raw)
    except ValueError:
        return None
    return key if len(key) >= 16 else None


def _emit_error(exc: FaceproofError, as_json: bool) -> int:
    if as_json:
        out = {
            "live": False,
            "score": 0.0,
            "reasons": [exc.code.value],
            "messages": [describe(exc.code).to_dict()],
            "error": exc.to_dict(),
        }
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(f"error: {exc.code.value}: {exc.detail}", file=sys.stderr)
    return EXIT_INPUT if isinstance(exc, InputError) else EXIT_SERVICE


def run_liveness(args: argparse.Namespace) -> int:
    from faceproof.liveness.challenge import Challenge, ChallengeError, ChallengeIssuer

    as_json = bool(getattr(args, "json", False))
    key = _key()
    if args.new_challenge is not None:
        if key is None:
            print(f"error: set {CHALLENGE_KEY_ENV} to a hex key of >= 16 bytes", file=sys.stderr)
            return EXIT_USAGE
        issued, spec = ChallengeIssuer(key).issue(args.new_challenge)
        if as_json:
            print(json.dumps({"spec": spec, **issued.payload()}))
        else:
            print(spec)
        return EXIT_LIVE
    if not args.clip:
        print("error: CLIP is required (a video file or a folder of frames)", file=sys.stderr)
        return EXIT_USAGE
    try:
        challenge: Challenge | None = None
        if args.challenge is not None:
            if key is None:
                raise ChallengeError(
                    ReasonCode.CHALLENGE_UNKNOWN,
                    f"No challenge key is configured (${CHALLENGE_KEY_ENV}); cannot verify.",
                )
            challenge = ChallengeIssuer(key).verify(args.challenge)
        from faceproof.liveness.clip import load_clip
        from faceproof.liveness.engine import LivenessEngine

        clip = load_clip(args.clip)
        result = LivenessEngine().analyze(clip, challenge)
    except FaceproofError as exc:
        return _emit_error(exc, as_json)
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        verdict = "LIVE" if result.live else "NOT LIVE"
        codes = ", ".join(c.value for c in result.reasons)
        print(f"{verdict}  score={result.score:.3f}  reasons: {codes}")
    return EXIT_LIVE if result.live else EXIT_NOT_LIVE
