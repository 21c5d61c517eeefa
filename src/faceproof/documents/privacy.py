"""Pseudonyms and masked forms of ID numbers: the raw number is never stored or logged.

- `pseudonymise(number, key)`: HMAC-SHA256 (hex) over the number with separators removed and
  letters upper-cased, so `900101-1234568` and `9001011234568` give the same pseudonym. The key
  comes from the caller (settings); without it a pseudonym cannot be recomputed or reversed by
  brute force over the small space of registration numbers.
- `mask_rrn("900101-1234568") -> "900101-1******"`: birth date and gender digit stay visible,
  as on Korean printed forms.
- `mask_number(...)`: the same for any number field (licence and passport numbers keep their
  first characters only).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final

from faceproof.documents.errors import DocumentError
from faceproof.reasons import ReasonCode

__all__ = ["MIN_KEY_BYTES", "mask_number", "mask_rrn", "normalise_number", "pseudonymise"]

MIN_KEY_BYTES: Final = 16
_RRN: Final = re.compile(r"^(\d{6})-?(\d)(\d{6})$")
_SEPARATORS: Final = re.compile(r"[\s\-]")


def normalise_number(number: str) -> str:
    """Drop spaces and hyphens and upper-case letters: the form that is hashed."""
    return _SEPARATORS.sub("", number).upper()


def pseudonymise(number: str, key: bytes) -> str:
    """Keyed pseudonym of an ID number: HMAC-SHA256 hex digest (64 characters)."""
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"pseudonym key must be at least {MIN_KEY_BYTES} bytes")
    canonical = normalise_number(number)
    if not canonical:
        raise DocumentError(ReasonCode.FIELD_UNREADABLE, "empty number cannot be pseudonymised")
    return hmac.new(key, canonical.encode("ascii", "replace"), hashlib.sha256).hexdigest()


def mask_rrn(number: str) -> str:
    """`900101-1234568` (or 13 digits without hyphen) -> `900101-1******`."""
    m = _RRN.match(number.strip())
    if m is None:
        raise DocumentError(
            ReasonCode.RRN_INVALID, "expected a registration number YYMMDD-NNNNNNN (13 digits)"
        )
    return f"{m.group(1)}-{m.group(2)}******"


def mask_number(number: str) -> str:
    """Mask any ID number: registration numbers as `mask_rrn`; others keep 3 leading characters.

    Separators stay in place so the shape remains visible: `11-90-123456-01` -> `11-**-******-**`.
    """
    text = number.strip()
    if _RRN.match(text):
        return mask_rrn(text)
    out: list[str] = []
    kept = 0
    for ch in text:
        if ch.isalnum():
            out.append(ch if kept < 3 else "*")
            kept += 1
        else:
            out.append(ch)
    return "".join(out)
