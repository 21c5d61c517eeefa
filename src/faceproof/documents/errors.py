"""The documents package's error: one `InputError` subclass, always with a reason code."""

from __future__ import annotations

from faceproof.errors import InputError

__all__ = ["DocumentError"]


class DocumentError(InputError):
    """A document, or a field read from it, cannot be used (e.g. `rrn_invalid`, `mrz_invalid`).

    Messages name the field and the rule, never the raw registration number.
    """
