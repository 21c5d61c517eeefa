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
from pathlib import Path
from typing import Any

from faceproof.errors import FaceproofError, InputError
from faceproof.reasons import ReasonCode, describe

__all__ = ["CHALLENGE_KEY_ENV", "add_parsers", "run_liveness", "run_render_clip"]

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

    r = subparsers.add_parser(
        "render-clip",
        help="render a synthetic head (the example portrait) performing a challenge, as MP4",
        description="For trying the service without a camera (docs/service.md's curl "
        "walk-through): reads the JSON that POST .../challenge answered and writes a clip of "
        "a rendered 3D head doing its actions in their windows (every action: turns, looking "
        "up, a blink, an open mouth). Synthetic data: it proves the pipeline, not that a "
        "person is live.",
    )
    r.add_argument("challenge", metavar="CHALLENGE_JSON", help="the challenge answer, or '-'")
    r.add_argument("--out", required=True, type=Path, help="MP4 file to write")
    r.add_argument("--fps", type=float, default=15.0)
    r.set_defaults(handler=run_render_clip)


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
        from faceproof.liveness.pad_model import pad_model_from_env

        clip = load_clip(args.clip)
        result = LivenessEngine(pad_model=pad_model_from_env()).analyze(clip, challenge)
    except FaceproofError as exc:
        return _emit_error(exc, as_json)
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        verdict = "LIVE" if result.live else "NOT LIVE"
        codes = ", ".join(c.value for c in result.reasons)
        print(f"{verdict}  score={result.score:.3f}  reasons: {codes}")
    return EXIT_LIVE if result.live else EXIT_NOT_LIVE


def run_render_clip(args: argparse.Namespace) -> int:
    source = sys.stdin.read() if args.challenge == "-" else Path(args.challenge).read_text("utf-8")
    try:
        answer = json.loads(source)
        actions = [str(a["action"]) for a in answer["actions"]]
        windows = [(float(a["start_s"]), float(a["end_s"])) for a in answer["actions"]]
        seconds = float(answer["record_seconds"])
    except (ValueError, KeyError, TypeError) as exc:
        print(f"error: not a challenge answer ({type(exc).__name__})", file=sys.stderr)
        return EXIT_USAGE
    if not 1 <= args.fps <= 60 or not 0 < seconds <= 30:
        print("error: --fps must be 1..60 and record_seconds 0..30", file=sys.stderr)
        return EXIT_USAGE
    from faceproof.liveness.challenge import ACTIONS

    unknown = sorted(set(actions) - set(ACTIONS))
    if unknown:
        print(f"error: unknown action(s) {', '.join(unknown)}; expected {', '.join(ACTIONS)}",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    from faceproof.liveness.synthetic import (
        SceneKit,
        bona_fide_clip,
        challenge_motion,
        encode_video,
    )

    motion = challenge_motion(actions, windows)
    clip = bona_fide_clip(
        SceneKit.build(), "challenge", fps=args.fps, seconds=seconds + 0.4, motion=motion
    )
    args.out.write_bytes(encode_video(clip))
    print(f"{args.out}: {len(clip.frames)} frames, {', '.join(actions)}", file=sys.stderr)
    return EXIT_LIVE
