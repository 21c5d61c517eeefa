"""One exception tree for faceproof. Every error carries a reason code.

    FaceproofError                  (code, message, http_status)
    ├── InputError                  the caller's input cannot be used -> 4xx, CLI exit 2/3
    │   ├── ImageError              bytes are not a usable still image (capture/)
    │   ├── FaceError               no usable face in a decoded image (faces/)
    │   └── DataFileError           a labels/pairs CSV the caller supplied is invalid
    └── ServiceError                our side is broken (models, configuration) -> 5xx, CLI exit 4
        └── ModelError              a pinned model is missing, altered or will not load

Messages never contain image bytes, pixel values or embeddings: they are safe to log and to
return to a client. Third-party exceptions are translated at the boundary with `raise ... from`.
"""

from __future__ import annotations

from typing import Any

from faceproof.reasons import Reason, ReasonCode, describe

__all__ = [
    "DataFileError",
    "FaceError",
    "FaceproofError",
    "ImageError",
    "InputError",
    "ModelError",
    "ServiceError",
]


class FaceproofError(Exception):
    """Base of every error faceproof raises on purpose."""

    http_status: int = 500

    def __init__(self, code: ReasonCode, detail: str | None = None, **context: Any) -> None:
        self.code = code
        self.reason: Reason = describe(code)
        self.detail = detail or self.reason.message_en
        # Context is for logs and problem+json extensions: sizes, limits, names. Never pixels.
        self.context: dict[str, Any] = context
        super().__init__(f"{code.value}: {self.detail}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "message": self.detail,
            "message_ko": self.reason.message_ko,
            **({"context": self.context} if self.context else {}),
        }


class InputError(FaceproofError):
    http_status = 422


class ImageError(InputError):
    pass


class FaceError(InputError):
    pass


class DataFileError(InputError):
    pass


class ServiceError(FaceproofError):
    http_status = 503


class ModelError(ServiceError):
    pass
