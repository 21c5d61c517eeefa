"""Multipart uploads (images, video clips), read into memory with a hard size cap. Never on disk.

Starlette's parser spools files over 1 MiB to a temporary file; here the spool limit is raised
above the request cap, so an accepted upload always stays in memory, and the request stream is
cut off (413) as soon as it passes the cap, whatever Content-Length claims.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from faceproof.reasons import ReasonCode

from .problems import ApiError

__all__ = ["IMAGE_TYPES", "VIDEO_TYPES", "read_clip_upload", "read_image_upload"]

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


async def read_image_upload(request: Request, max_bytes: int, field: str = "image") -> bytes:
    data, _ = await _read_upload(
        request, max_bytes, field, IMAGE_TYPES, "the image must be JPEG, PNG, WebP or HEIC", ()
    )
    return data


async def read_clip_upload(
    request: Request, max_bytes: int, field: str = "clip", text_field: str = "challenge"
) -> tuple[bytes, str]:
    """The video part `field` and the text field `text_field` (both required)."""
    data, texts = await _read_upload(
        request,
        max_bytes,
        field,
        VIDEO_TYPES,
        "the clip must be WebM, MP4 or QuickTime video",
        (text_field,),
    )
    return data, texts[text_field]


async def _read_upload(
    request: Request,
    max_bytes: int,
    field: str,
    types: frozenset[str],
    type_message: str,
    text_fields: tuple[str, ...],
) -> tuple[bytes, dict[str, str]]:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(
            ReasonCode.UNSUPPORTED_MEDIA_TYPE,
            f"send multipart/form-data with a {field!r} file part",
        )
    limit = max_bytes + _OVERHEAD
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
        if part_type not in types:
            raise ApiError(ReasonCode.UNSUPPORTED_MEDIA_TYPE, type_message)
        data = await part.read()
        if len(data) > max_bytes:
            raise ApiError(ReasonCode.PAYLOAD_TOO_LARGE)
        return data, texts
    finally:
        await form.close()
