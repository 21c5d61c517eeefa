"""Multipart image uploads, read into memory with a hard size cap. Never spooled to disk.

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

__all__ = ["IMAGE_TYPES", "read_image_upload"]

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"})
_OVERHEAD = 16 * 1024  # multipart boundaries and part headers


async def _capped(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise ApiError(ReasonCode.PAYLOAD_TOO_LARGE)
        yield chunk


async def read_image_upload(request: Request, max_bytes: int, field: str = "image") -> bytes:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(
            ReasonCode.UNSUPPORTED_MEDIA_TYPE, "send multipart/form-data with an 'image' file part"
        )
    limit = max_bytes + _OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(ReasonCode.PAYLOAD_TOO_LARGE)
    parser = MultiPartParser(
        request.headers, _capped(request, limit), max_files=1, max_fields=2, max_part_size=1024
    )
    parser.spool_max_size = limit + 1  # in memory, always
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(ReasonCode.MALFORMED_REQUEST, "invalid multipart body") from exc
    try:
        part = form.get(field)
        if not isinstance(part, UploadFile):
            raise ApiError(ReasonCode.MALFORMED_REQUEST, f"a file part named {field!r} is required")
        part_type = (part.content_type or "").split(";")[0].strip().lower()
        if part_type not in IMAGE_TYPES:
            raise ApiError(
                ReasonCode.UNSUPPORTED_MEDIA_TYPE, "the image must be JPEG, PNG, WebP or HEIC"
            )
        data = await part.read()
        if len(data) > max_bytes:
            raise ApiError(ReasonCode.PAYLOAD_TOO_LARGE)
        return data
    finally:
        await form.close()
