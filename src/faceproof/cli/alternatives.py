"""`faceproof mobile-id issue|verify`: a local test issuer and an offline verifier.

The test issuer makes an end-to-end mobile-ID path testable without the government's wallet:
it issues a credential to a fresh holder key, publishes its status list, and prints a
presentation bound to the nonce and audience given. Never use its keys for anything real.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["add_parsers"]

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def add_parsers(subparsers: Any) -> None:
    mobile = subparsers.add_parser("mobile-id", help="the government mobile-ID path (no face)")
    sub = mobile.add_subparsers(dest="mobile_command", required=True)
    issue = sub.add_parser("issue", help="TEST issuer: print a presentation for a session")
    issue.add_argument("--name", required=True)
    issue.add_argument("--birth-date", required=True, help="YYYY-MM-DD")
    issue.add_argument("--number", required=True, help="registration number (test data)")
    issue.add_argument("--nonce", required=True)
    issue.add_argument("--aud", required=True, help="the verifier's audience (session URL)")
    issue.add_argument("--out-dir", required=True, help="writes trust.json and status/ here")
    issue.set_defaults(handler=_issue)

    verify = sub.add_parser("verify", help="verify a presentation offline")
    verify.add_argument("presentation", help="the presentation, or @FILE")
    verify.add_argument("--trust-dir", required=True, help="folder written by `issue`")
    verify.add_argument("--nonce", required=True)
    verify.add_argument("--aud", required=True)
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=_verify)


def _issue(args: argparse.Namespace) -> int:
    from faceproof.alternatives import TestHolder, TestIssuer
    from faceproof.alternatives.jws import public_jwk

    now = datetime.now(UTC)
    issuer, holder = TestIssuer(), TestHolder()
    credential, disclosures, _ = issuer.issue(
        holder, name=args.name, birth_date=args.birth_date, number=args.number, now=now
    )
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trust = {issuer.issuer_id: public_jwk(issuer.public_key)}
    (out / "trust.json").write_text(json.dumps(trust, indent=2) + "\n", encoding="utf-8")
    (out / "status.json").write_text(
        json.dumps({issuer.status_uri: issuer.status_list(now)}) + "\n", encoding="utf-8"
    )
    print(holder.present(credential, disclosures, nonce=args.nonce, audience=args.aud, now=now))
    return EXIT_OK


class _FileStatusLists:
    def __init__(self, lists: dict[str, str]) -> None:
        self._lists = lists

    def fetch(self, uri: str) -> str:
        if uri not in self._lists:
            raise ValueError("status list not published")
        return self._lists[uri]


def _verify(args: argparse.Namespace) -> int:
    from faceproof.alternatives import MobileIdVerifier
    from faceproof.alternatives.jws import public_key_from_jwk
    from faceproof.documents.privacy import mask_number
    from faceproof.reasons import ReasonCode, describe

    folder = Path(args.trust_dir)
    try:
        trust_raw = json.loads((folder / "trust.json").read_text(encoding="utf-8"))
        lists = json.loads((folder / "status.json").read_text(encoding="utf-8"))
        trust = {issuer: public_key_from_jwk(jwk) for issuer, jwk in trust_raw.items()}
    except (OSError, ValueError, AttributeError) as exc:
        print(f"faceproof: cannot read the trust folder: {type(exc).__name__}", file=sys.stderr)
        return EXIT_USAGE
    presentation = args.presentation
    if presentation.startswith("@"):
        presentation = Path(presentation[1:]).read_text(encoding="utf-8").strip()
    identity = MobileIdVerifier(trust, _FileStatusLists(lists)).verify(
        presentation, nonce=args.nonce, audience=args.aud
    )
    result = {
        "verified": True,
        "path": "mobile_id",
        "issuer": identity.issuer,
        "name": identity.name,
        "birth_date": identity.birth_date,
        "number": mask_number(identity.number),
        "reasons": [ReasonCode.MOBILE_ID_VERIFIED.value],
        "messages": [describe(ReasonCode.MOBILE_ID_VERIFIED).to_dict()],
    }
    print(json.dumps(result, ensure_ascii=False) if args.json else f"verified: {identity.name}")
    return EXIT_OK
