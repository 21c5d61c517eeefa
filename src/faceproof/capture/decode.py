"""Turn untrusted upload bytes into one 8-bit RGB pixel array, or an ImageError with a reason.

This is the trust boundary for images: every third-party exception is translated here, the
format is decided by content (magic bytes) and never by file name, pixel limits are enforced from
the header before any pixel is decoded, and nothing is ever written to disk.
"""

from __future__ import annotations

import functools
import io
import os
import stat
import warnings
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image

from faceproof.capture.limits import DEFAULT_LIMITS, ImageLimits
from faceproof.errors import ImageError
from faceproof.reasons import ReasonCode

__all__ = ["SUPPORTED_FORMATS", "DecodedImage", "decode_image", "load_image"]

SUPPORTED_FORMATS: Final = frozenset({"jpeg", "png", "webp", "heic"})

# Pillow decoder to try for each sniffed container, and the Image.format values it may report.
# MPO is a JPEG carrying extra images (stereo pairs, previews, depth); its first image is the photo.
_PILLOW_DECODER: Final = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "heic": "HEIF"}
_PILLOW_FORMATS: Final = {
    "jpeg": frozenset({"JPEG", "MPO"}),
    "png": frozenset({"PNG"}),
    "webp": frozenset({"WEBP"}),
    "heic": frozenset({"HEIF"}),
}

_HEIC_STILL_BRANDS: Final = frozenset({b"heic", b"heix", b"heim", b"heis"})
_HEIC_SEQUENCE_BRANDS: Final = frozenset({b"hevc", b"hevx", b"hevm", b"hevs"})
_HEIC_SEQUENCE = "heic-sequence"

_EXIF_ORIENTATION: Final = 0x0112
# Same mapping as PIL.ImageOps.exif_transpose.
_ORIENTATION_TRANSPOSE: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_SIXTEEN_BIT_GREY_MODES: Final = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_ALPHA_MODES: Final = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
# ID photos are taken against light backgrounds, so transparent areas become white, not black.
_BACKGROUND: Final = (255, 255, 255, 255)


@dataclass(frozen=True, slots=True, eq=False)
class DecodedImage:
    """A decoded still photo: read-only HxWx3 uint8 RGB pixels plus where they came from.

    ``orientation_applied`` is the EXIF orientation (1-8) already baked into ``pixels``; for HEIC
    libheif applies the container's rotation and this records the EXIF tag it replaced.
    ``source_mode`` is the Pillow mode before conversion (e.g. "CMYK", "I;16", "P").
    """

    pixels: npt.NDArray[np.uint8]
    format: str
    width: int
    height: int
    orientation_applied: int = 1
    source_mode: str = "RGB"

    def __post_init__(self) -> None:
        px = self.pixels
        if px.dtype != np.uint8 or px.ndim != 3 or px.shape[2] != 3:
            raise ValueError("DecodedImage.pixels must be a uint8 array of shape (H, W, 3)")
        if px.shape[:2] != (self.height, self.width):
            raise ValueError("DecodedImage.pixels shape does not match width/height")
        if not px.flags.c_contiguous:
            raise ValueError("DecodedImage.pixels must be C-contiguous")
        if px.flags.writeable:
            raise ValueError("DecodedImage.pixels must be read-only (flags.writeable = False)")
        if self.format not in SUPPORTED_FORMATS:
            raise ValueError(f"DecodedImage.format must be one of {sorted(SUPPORTED_FORMATS)}")
        if not 1 <= self.orientation_applied <= 8:
            raise ValueError("DecodedImage.orientation_applied must be an EXIF orientation 1-8")


def decode_image(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> DecodedImage:
    """Decode one still JPEG/PNG/WebP/HEIC photo from memory, or raise ImageError.

    Pillow's DecompressionBombWarning is turned into an error only inside this call (via
    ``warnings.catch_warnings``, which is process-global in Python 3.11: under concurrent
    decodes a race can only change which reason is reported, because our own header pixel limit
    is far below Pillow's and refuses such images anyway). Other Pillow warnings (e.g. malformed
    EXIF) are ignored here so the outcome does not depend on the caller's warning filters.
    """
    if not data:
        raise ImageError(ReasonCode.IMAGE_EMPTY)
    size = len(data)
    if size > limits.max_bytes:
        raise ImageError(
            ReasonCode.IMAGE_TOO_LARGE,
            f"The image file is {size} bytes; the limit is {limits.max_bytes} bytes.",
            size_bytes=size,
            max_bytes=limits.max_bytes,
        )
    kind = _sniff(data)
    if kind is None:
        raise ImageError(ReasonCode.IMAGE_UNSUPPORTED_FORMAT)
    if kind == _HEIC_SEQUENCE:
        raise ImageError(ReasonCode.IMAGE_ANIMATED, format="heic")
    if kind == "heic":
        _register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode(data, kind, limits)
    except ImageError:
        raise
    except MemoryError:
        raise  # our side ran out, not the caller's fault; limits make this unexpected
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            ReasonCode.IMAGE_DECOMPRESSION_BOMB,
            "The image header claims more pixels than the decoder will ever allocate.",
            format=kind,
            size_bytes=size,
        ) from exc
    except Exception as exc:  # the trust boundary: no third-party exception escapes
        code = _classify_failure(kind, data, exc)
        # Never str(exc): decoder messages can quote raw bytes from the file.
        raise ImageError(code, format=kind, cause=type(exc).__name__) from exc


def load_image(path: str | os.PathLike[str], limits: ImageLimits = DEFAULT_LIMITS) -> DecodedImage:
    """Read an image file into memory (size checked by stat first) and decode it by content."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ImageError(ReasonCode.IMAGE_UNREADABLE_FILE, "The path is not a regular file.")
        if st.st_size > limits.max_bytes:
            raise ImageError(
                ReasonCode.IMAGE_TOO_LARGE,
                f"The image file is {st.st_size} bytes; the limit is {limits.max_bytes} bytes.",
                size_bytes=st.st_size,
                max_bytes=limits.max_bytes,
            )
        with open(path, "rb") as fh:
            # One byte over the limit is enough to notice a file that grew after stat().
            data = fh.read(limits.max_bytes + 1)
    except OSError as exc:
        raise ImageError(ReasonCode.IMAGE_UNREADABLE_FILE, cause=type(exc).__name__) from exc
    return decode_image(data, limits)


@functools.cache
def _register_heif() -> None:
    """Register the HEIF opener once, on the first HEIC upload (the native import is heavy)."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def _sniff(data: bytes) -> str | None:
    """Name the container from its magic bytes; None for anything we do not accept."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" and len(data) >= 12:
        box_end = min(int.from_bytes(data[:4], "big"), len(data), 256)
        major = data[8:12]
        compatible = {data[i : i + 4] for i in range(16, box_end - 3, 4)}
        brands = {major} | compatible
        if not brands & (_HEIC_STILL_BRANDS | _HEIC_SEQUENCE_BRANDS):
            return None  # AVIF, MP4/MOV and other ISO-BMFF files
        if major in _HEIC_SEQUENCE_BRANDS or major == b"msf1":
            return _HEIC_SEQUENCE
        return "heic"
    return None


def _decode(data: bytes, kind: str, limits: ImageLimits) -> DecodedImage:
    with Image.open(io.BytesIO(data), formats=[_PILLOW_DECODER[kind]]) as img:
        if img.format not in _PILLOW_FORMATS[kind]:
            raise ImageError(ReasonCode.IMAGE_UNSUPPORTED_FORMAT, format=kind)
        width, height = img.size
        _check_dimensions(width, height, limits, kind)
        n_frames = int(getattr(img, "n_frames", 1))
        if n_frames > 1 and img.format != "MPO":
            raise ImageError(ReasonCode.IMAGE_ANIMATED, format=kind, frames=n_frames)
        _check_ratio(width, height, len(data), limits, kind)
        img.load()
        source_mode = img.mode
        oriented, orientation = _apply_orientation(img, kind)
        pixels = _to_rgb_array(oriented)
    out_height, out_width = pixels.shape[:2]
    # HEIC may change size while decoding (and orientation swaps sides): check the result too.
    _check_dimensions(out_width, out_height, limits, kind)
    return DecodedImage(
        pixels=pixels,
        format=kind,
        width=out_width,
        height=out_height,
        orientation_applied=orientation,
        source_mode=source_mode,
    )


def _check_dimensions(width: int, height: int, limits: ImageLimits, kind: str) -> None:
    pixels = width * height
    if pixels > limits.max_pixels or max(width, height) > limits.max_side:
        raise ImageError(
            ReasonCode.IMAGE_TOO_MANY_PIXELS,
            f"The image is {width}x{height} ({pixels} pixels); the limits are "
            f"{limits.max_pixels} pixels and {limits.max_side} per side.",
            format=kind,
            width=width,
            height=height,
            max_pixels=limits.max_pixels,
            max_side=limits.max_side,
        )
    if min(width, height) < limits.min_side:
        raise ImageError(
            ReasonCode.IMAGE_TOO_SMALL,
            f"The image is {width}x{height}; each side must be at least {limits.min_side}.",
            format=kind,
            width=width,
            height=height,
            min_side=limits.min_side,
        )


def _check_ratio(width: int, height: int, size: int, limits: ImageLimits, kind: str) -> None:
    """Second guard after the pixel limit: refuse files that expand implausibly (see limits)."""
    decoded = width * height * 3
    if decoded < limits.ratio_check_min_decoded_bytes:
        return
    ratio = decoded / size
    if ratio > limits.max_compression_ratio:
        raise ImageError(
            ReasonCode.IMAGE_DECOMPRESSION_BOMB,
            f"The image would expand {ratio:.0f}-fold; the limit is "
            f"{limits.max_compression_ratio:.0f}-fold.",
            format=kind,
            width=width,
            height=height,
            size_bytes=size,
            max_compression_ratio=limits.max_compression_ratio,
        )


def _apply_orientation(img: Image.Image, kind: str) -> tuple[Image.Image, int]:
    """Bake the EXIF orientation into the pixels; return the image and the tag applied.

    Same transposes as ImageOps.exif_transpose, minus its EXIF rewrite: we drop metadata anyway,
    and re-serialising malformed EXIF can fail on a photo whose pixels are fine.
    """
    if kind == "heic":
        # libheif already applied the container rotation; pillow_heif reset the EXIF tag to 1.
        original = img.info.get("original_orientation")
        return img, original if isinstance(original, int) and 1 <= original <= 8 else 1
    try:
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:
        # Malformed metadata must not refuse a photo whose pixels decoded fine.
        return img, 1
    method = _ORIENTATION_TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    if method is None:
        return img, 1
    return img.transpose(method), orientation


def _to_rgb_array(img: Image.Image) -> npt.NDArray[np.uint8]:
    """Normalise any Pillow mode to read-only C-contiguous HxWx3 uint8 RGB."""
    mode = img.mode
    rgb: npt.NDArray[np.uint8]
    if mode in _SIXTEEN_BIT_GREY_MODES:
        grey = np.asarray(img)
        if mode == "I":
            # 32-bit container for 16-bit PNG samples; bounding it keeps the shift well defined.
            grey = np.clip(grey, 0, 65535)
        # Scale (keep the high byte), never clip: 65535 -> 255, 32896 -> 128. A tRNS colour key
        # on 16-bit grey is ignored: no camera or ID-photo workflow produces one.
        grey8 = (grey.astype(np.uint32) >> 8).astype(np.uint8)
        rgb = np.repeat(grey8[:, :, np.newaxis], 3, axis=2)
    elif mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _BACKGROUND)
        rgb = np.asarray(Image.alpha_composite(background, rgba).convert("RGB"), dtype=np.uint8)
    elif mode == "RGB":
        rgb = np.asarray(img, dtype=np.uint8)
    else:  # L, 1, P, CMYK, YCbCr, ...: grey is replicated into three channels
        rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    out = np.ascontiguousarray(rgb, dtype=np.uint8)
    out.flags.writeable = False
    return out


def _classify_failure(kind: str, data: bytes, exc: Exception) -> ReasonCode:
    """Truncated (incomplete upload) when the decoder or the container says so, else corrupt."""
    message = str(exc).lower()
    if "truncated" in message or "unexpected end of file" in message:
        return ReasonCode.IMAGE_TRUNCATED
    if kind == "webp" and int.from_bytes(data[4:8], "little") + 8 > len(data):
        return ReasonCode.IMAGE_TRUNCATED  # RIFF header promises more bytes than arrived
    if kind == "png" and b"IEND" not in data:
        return ReasonCode.IMAGE_TRUNCATED
    return ReasonCode.IMAGE_CORRUPT
