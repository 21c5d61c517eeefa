"""Multipart uploads (images, video clips), read into memory with a hard size cap. Never on disk.

Starlette's parser spools files over 1 MiB to a temporary file; here the spool limit is raised
above the request cap, so an accepted upload always stays in memory, and the request stream is
cut off (413) as soon as it passes the cap, whatever Content-Length claims.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from faceproof.privacy.upload_crypto import JWE_MEDIA_TYPE
from faceproof.reasons import ReasonCode

from .problems import ApiError

__all__ = ["IMAGE_TYPES", "VIDEO_TYPES", "Opener", "read_clip_upload", "read_image_upload"]

# Opens an encrypted part (a compact JWE, `application/jose`): plaintext and its media type.
Opener = Callable[[bytes], tuple[bytes, str]]

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"})
VIDEO_TYPES = frozenset({"video/webm", "video/mp4", "video/quicktime"})
_MAX_FIELD = 4096  # a text field such as a challenge spec (~300-450 characters)
_OVERHEAD = 16 * 1024  # multipart boundaries and part headers


async def _capped(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise ApiError(ReasonCode.PAYLOAD_TOO_LARGE)
        yield chunk


async def read_image_upload(
    request: Request,
    max_bytes: int,
    field: str = "image",
    *,
    opener: Opener | None = None,
    require_encrypted: bool = False,
) -> bytes:
    data, _ = await _read_upload(
        request,
        max_bytes,
        field,
        IMAGE_TYPES,
        "the image must be JPEG, PNG, WebP or HEIC",
        (),
        _Encryption(opener, require_encrypted),
    )
    return data


async def read_clip_upload(
    request: Request,
    max_bytes: int,
    field: str = "clip",
    text_field: str = "challenge",
    *,
    opener: Opener | None = None,
    require_encrypted: bool = False,
) -> tuple[bytes, str]:
    """The video part `field` and the text field `text_field` (both required)."""
    data, texts = await _read_upload(
        request,
        max_bytes,
        field,
        VIDEO_TYPES,
        "the clip must be WebM, MP4 or QuickTime video",
        (text_field,),
        _Encryption(opener, require_encrypted),
    )
    return data, texts[text_field]


class _Encryption:
    """How a route takes encrypted parts: `opener` opens them; `required` refuses plaintext."""

    def __init__(self, opener: Opener | None, required: bool) -> None:
        self.opener = opener
        self.required = required

    def budget(self, max_bytes: int) -> int:
        # A JWE is base64url text: 4/3 of the plaintext, plus its header.
        return max_bytes if self.opener is None else max_bytes * 4 // 3 + 4096


async def _read_upload(
    request: Request,
    max_bytes: int,
    field: str,
    types: frozenset[str],
    type_message: str,
    text_fields: tuple[str, ...],
    encryption: _Encryption,
) -> tuple[bytes, dict[str, str]]:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(
            ReasonCode.UNSUPPORTED_MEDIA_TYPE,
            f"send multipart/form-data with a {field!r} file part",
        )
    limit = encryption.budget(max_bytes) + _OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(ReasonCode.PAYLOAD_TOO_LARGE)
    parser = MultiPartParser(
        request.headers,
        _capped(request, limit),
        max_files=1,
        max_fields=2 + len(text_fields),
        max_part_size=_MAX_FIELD,
    )
    parser.spool_max_size = limit + 1  # in memory, always
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(ReasonCode.MALFORMED_REQUEST, "invalid multipart body") from exc
    try:
        texts: dict[str, str] = {}
        for name in text_fields:
            value = form.get(name)
            if not isinstance(value, str) or not value.strip():
                raise ApiError(ReasonCode.MALFORMED_REQUEST, f"a text field {name!r} is required")
            texts[name] = value
        part = form.get(field)
        if not isinstance(part, UploadFile):
            raise ApiError(ReasonCode.MALFORMED_REQUEST, f"a file part named {field!r} is required")
        part_type = (part.content_type or "").split(";")[0].strip().lower()
        data = await part.read()
        if part_type == JWE_MEDIA_TYPE and encryption.opener is not None:
            if len(data) > encryption.budget(max_bytes):
                raise ApiError(ReasonCode.PAYLOAD_TOO_LARGE)
            data, part_type = encryption.opener(data)
        elif encryption.required:
            raise ApiError(ReasonCode.UPLOAD_NOT_ENCRYPTED)
        if part_type not in types:
            raise ApiError(ReasonCode.UNSUPPORTED_MEDIA_TYPE, type_message)
        if len(data) > max_bytes:
            raise ApiError(ReasonCode.PAYLOAD_TOO_LARGE)
        return data, texts
    finally:
        await form.close()
        # A file part cut off before its end (a truncated body) gets a buffer that Starlette
        # opens but never puts in the form: close it too (found by tests/test_fuzz_api.py).
        for buffer in getattr(parser, "_files_to_close_on_error", ()):
            buffer.close()
