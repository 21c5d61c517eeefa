"""Multipart uploads (images, video clips, still frames), read into memory with a hard size cap.
Never on disk.

Starlette's parser spools files over 1 MiB to a temporary file; here the spool limit is raised
above the request cap, so an accepted upload always stays in memory, and the request stream is
cut off (413) as soon as it passes the cap, whatever Content-Length claims.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from faceproof.errors import FaceproofError
from faceproof.liveness.clip import ClipError
from faceproof.privacy.upload_crypto import JWE_MEDIA_TYPE
from faceproof.reasons import ReasonCode

from .problems import ApiError

__all__ = [
    "FRAME_TYPES",
    "IMAGE_TYPES",
    "VIDEO_TYPES",
    "FramesUpload",
    "Opener",
    "read_clip_upload",
    "read_frames_upload",
    "read_image_upload",
]

# Opens an encrypted part (a compact JWE, `application/jose`): plaintext and its media type.
Opener = Callable[[bytes], tuple[bytes, str]]

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"})
VIDEO_TYPES = frozenset({"video/webm", "video/mp4", "video/quicktime"})
FRAME_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})  # liveness.clip.FRAME_FORMATS
_FRAME_TYPE_MESSAGE = "every frame must be JPEG, PNG or WebP"
_MAX_FIELD = 4096  # a text field such as a challenge spec (~300-450 characters)
_MAX_TIMESTAMPS_FIELD = 64 * 1024  # 600 frames x ~10 characters, with room
_FRAME_OVERHEAD = 1024  # per frame: its part headers and, when encrypted, its JWE header
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


@asynccontextmanager
async def _multipart_form(
    request: Request,
    field: str,
    budget: int,
    *,
    max_files: int,
    max_fields: int,
    max_field_bytes: int = _MAX_FIELD,
    too_many_files: FaceproofError | None = None,
) -> AsyncIterator[FormData]:
    """The request's multipart form, parsed in memory within `budget` (plus part overhead);
    closed on exit. `too_many_files` is raised instead of 422 when more files come."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(
            ReasonCode.UNSUPPORTED_MEDIA_TYPE,
            f"send multipart/form-data with a {field!r} file part",
        )
    limit = budget + _OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(ReasonCode.PAYLOAD_TOO_LARGE)
    parser = MultiPartParser(
        request.headers,
        _capped(request, limit),
        max_files=max_files,
        max_fields=max_fields,
        max_part_size=max_field_bytes,
    )
    parser.spool_max_size = limit + 1  # in memory, always
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        if too_many_files is not None and str(exc).startswith("Too many files"):
            raise too_many_files from exc
        raise ApiError(ReasonCode.MALFORMED_REQUEST, "invalid multipart body") from exc
    try:
        yield form
    finally:
        await form.close()
        # A file part cut off before its end (a truncated body) gets a buffer that Starlette
        # opens but never puts in the form: close it too (found by tests/test_fuzz_api.py).
        for buffer in getattr(parser, "_files_to_close_on_error", ()):
            buffer.close()


def _texts(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for name in names:
        value = form.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ApiError(ReasonCode.MALFORMED_REQUEST, f"a text field {name!r} is required")
        texts[name] = value
    return texts


def _media_type(part: UploadFile) -> str:
    return (part.content_type or "").split(";")[0].strip().lower()


def _plaintext(
    data: bytes,
    part_type: str,
    max_bytes: int,
    types: frozenset[str],
    type_message: str,
    encryption: _Encryption,
) -> bytes:
    """One file part's plaintext (opened if it is a JWE), checked for type and size."""
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
    return data


async def _read_upload(
    request: Request,
    max_bytes: int,
    field: str,
    types: frozenset[str],
    type_message: str,
    text_fields: tuple[str, ...],
    encryption: _Encryption,
) -> tuple[bytes, dict[str, str]]:
    async with _multipart_form(
        request,
        field,
        encryption.budget(max_bytes),
        max_files=1,
        max_fields=2 + len(text_fields),
    ) as form:
        texts = _texts(form, text_fields)
        part = form.get(field)
        if not isinstance(part, UploadFile):
            raise ApiError(ReasonCode.MALFORMED_REQUEST, f"a file part named {field!r} is required")
        data = await part.read()
        plain = _plaintext(data, _media_type(part), max_bytes, types, type_message, encryption)
        return plain, texts


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class FramesUpload:
    """The frames route's form: the frames' plaintext bytes in the order sent, the raw
    `timestamps` text (parsed by liveness.clip) and the challenge spec."""

    frames: list[bytes]
    timestamps: str
    challenge: str

    def __repr__(self) -> str:  # never image bytes in a repr, log or error
        return f"FramesUpload(frames={len(self.frames)})"


async def read_frames_upload(
    request: Request,
    max_bytes: int,
    max_frames: int,
    field: str = "frame",
    *,
    opener: Opener | None = None,
    require_encrypted: bool = False,
) -> FramesUpload:
    """Repeated `field` file parts (still frames in capture order) and the text fields
    `timestamps` and `challenge`. `max_bytes` caps the frames' plaintext in total; more than
    `max_frames` parts is `clip_too_long`."""
    encryption = _Encryption(opener, require_encrypted)
    too_many = ClipError(
        ReasonCode.CLIP_TOO_LONG,
        f"More than {max_frames} frames; the limit is {max_frames}.",
        max_frames=max_frames,
    )
    async with _multipart_form(
        request,
        field,
        encryption.budget(max_bytes) + max_frames * _FRAME_OVERHEAD,
        max_files=max_frames,
        max_fields=4,
        max_field_bytes=_MAX_TIMESTAMPS_FIELD,
        too_many_files=too_many,
    ) as form:
        texts = _texts(form, ("challenge", "timestamps"))
        for name, value in form.multi_items():
            if isinstance(value, UploadFile) and name != field:
                raise ApiError(
                    ReasonCode.MALFORMED_REQUEST,
                    f"unexpected file part {name!r}: every frame is a part named {field!r}",
                )
        values = form.getlist(field)
        parts = [value for value in values if isinstance(value, UploadFile)]
        if not parts or len(parts) != len(values):
            raise ApiError(
                ReasonCode.MALFORMED_REQUEST, f"one or more file parts named {field!r} are required"
            )
        received = [(await part.read(), _media_type(part)) for part in parts]
    # Up to max_frames JWEs to open (~0.5 ms each): in a worker thread, not on the event loop.
    frames = await run_in_threadpool(_frames_plaintext, received, max_bytes, encryption)
    return FramesUpload(frames, texts["timestamps"], texts["challenge"])


def _frames_plaintext(
    received: list[tuple[bytes, str]], max_bytes: int, encryption: _Encryption
) -> list[bytes]:
    frames: list[bytes] = []
    total = 0
    for data, part_type in received:
        plain = _plaintext(data, part_type, max_bytes, FRAME_TYPES, _FRAME_TYPE_MESSAGE, encryption)
        total += len(plain)
        if total > max_bytes:  # the frames together, as for one clip
            raise ApiError(ReasonCode.PAYLOAD_TOO_LARGE)
        frames.append(plain)
    return frames
