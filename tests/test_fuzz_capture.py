"""Fuzzing the image decoder and its limits (`capture.decode_image`).

tests/test_capture.py already throws random bytes and randomly overwritten images at the
decoder. These tests mutate valid files where it matters: the header fields that decide how much
memory a decode costs (PNG IHDR with a valid CRC, JPEG SOF, WebP VP8 sizes), the EXIF
orientation, and files cut or spliced anywhere. Properties: `DecodedImage` within the limits
given, or `ImageError` with an `image_*` code; never another exception, a hang or a memory jump.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from faceproof.capture import DecodedImage, ImageLimits, decode_image
from faceproof.errors import ImageError
from test_fuzz_support import fuzz_settings, mutated, outcome

#: Tight limits so the fuzzer reaches every limit check with small files.
LIMITS = ImageLimits(
    max_bytes=64 * 1024,
    max_pixels=160 * 160,
    max_side=200,
    min_side=8,
    ratio_check_min_decoded_bytes=16 * 1024,
)


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _noise(width: int, height: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(width * 1000 + height)
    rgb = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    return rgb.convert(mode) if mode != "RGB" else rgb


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


JPEG = _encode(_noise(48, 32), "JPEG", quality=80, exif=_exif(6))
PNG = _encode(_noise(40, 24), "PNG")
PNG_RGBA = _encode(_noise(24, 40, "RGBA"), "PNG")
PNG_PALETTE = _encode(_noise(32, 32, "P"), "PNG")
PNG_GREY16 = _encode(Image.fromarray(np.full((24, 24), 40000, dtype=np.uint16)), "PNG")
WEBP = _encode(_noise(40, 40), "WEBP", quality=70)
SEEDS = [JPEG, PNG, PNG_RGBA, PNG_PALETTE, PNG_GREY16, WEBP]


def check(data: bytes, limits: ImageLimits = LIMITS) -> DecodedImage | ImageError:
    result = outcome(lambda: decode_image(data, limits), ImageError)
    if isinstance(result, ImageError):
        assert result.code.value.startswith("image_")
        assert "Traceback" not in result.detail
        return result
    height, width = result.pixels.shape[:2]
    assert (width, height) == (result.width, result.height)
    assert width * height <= limits.max_pixels
    assert limits.min_side <= min(width, height)
    assert max(width, height) <= limits.max_side
    assert result.pixels.dtype == np.uint8
    assert result.pixels.shape[2] == 3
    assert not result.pixels.flags.writeable
    return result


def test_seeds_decode() -> None:
    for seed in SEEDS:
        assert isinstance(check(seed), DecodedImage)


@fuzz_settings(250)
@given(mutated(SEEDS))
def test_mutated_images(data: bytes) -> None:
    check(data)


# --- header edits -------------------------------------------------------------------------------


def _png_with_ihdr(
    base: bytes, width: int, height: int, depth: int, colour: int, interlace: int
) -> bytes:
    """`base` with its IHDR rewritten (and its CRC recomputed, so the edit is not refused as
    corrupt before the dimensions are looked at)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr
    chunk += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return base[:8] + chunk + base[8 + 25 :]


dimensions = st.one_of(
    st.integers(0, 300),
    st.integers(0, 2**31 - 1),
    st.sampled_from([0, 1, 7, 8, 160, 161, 200, 201, 2**16, 2**31 - 1, 2**32 - 1]),
)


@fuzz_settings(200)
@given(
    base=st.sampled_from([PNG, PNG_RGBA, PNG_PALETTE, PNG_GREY16]),
    width=dimensions,
    height=dimensions,
    depth=st.sampled_from([1, 2, 4, 8, 16, 3, 32]),
    colour=st.sampled_from([0, 2, 3, 4, 6, 1, 7]),
    interlace=st.sampled_from([0, 1, 2]),
)
def test_png_header_claims(
    base: bytes, width: int, height: int, depth: int, colour: int, interlace: int
) -> None:
    result = check(_png_with_ihdr(base, width, height, depth, colour, interlace))
    if width * height > LIMITS.max_pixels or max(width, height) > LIMITS.max_side:
        # A header that claims too much is refused before any pixel is decoded.
        assert isinstance(result, ImageError)


def _jpeg_with_size(base: bytes, width: int, height: int) -> bytes:
    at = base.index(b"\xff\xc0")  # baseline SOF0: length(2) precision(1) height(2) width(2)
    return base[: at + 5] + struct.pack(">HH", height, width) + base[at + 9 :]


@fuzz_settings(150)
@given(width=st.integers(0, 65535), height=st.integers(0, 65535))
def test_jpeg_frame_header_claims(width: int, height: int) -> None:
    result = check(_jpeg_with_size(JPEG, width, height))
    if width * height > LIMITS.max_pixels or max(width, height) > LIMITS.max_side:
        assert isinstance(result, ImageError)


def _webp_with_size(base: bytes, width: int, height: int) -> bytes:
    """Lossy WebP: VP8 key frame, 14-bit width and height (plus 2 scale bits) at 26..30."""
    at = base.index(b"VP8 ") + 8 + 6
    return base[:at] + struct.pack("<HH", width, height) + base[at + 4 :]


@fuzz_settings(100)
@given(width=st.integers(0, 65535), height=st.integers(0, 65535))
def test_webp_frame_header_claims(width: int, height: int) -> None:
    result = check(_webp_with_size(WEBP, width, height))
    if (width & 0x3FFF) * (height & 0x3FFF) > LIMITS.max_pixels:
        assert isinstance(result, ImageError)


@fuzz_settings(100)
@given(orientation=st.integers(0, 65535), cut=st.integers(0, 400))
def test_any_exif_orientation(orientation: int, cut: int) -> None:
    """Orientation values outside 1-8 are ignored; valid ones swap sides as they should."""
    data = _encode(_noise(48, 32), "JPEG", quality=80, exif=_exif(orientation))
    result = check(data if cut == 0 else data[:-cut])
    if isinstance(result, DecodedImage) and cut == 0:
        swapped = orientation in (5, 6, 7, 8)
        assert (result.width, result.height) == ((32, 48) if swapped else (48, 32))
        assert result.orientation_applied == (orientation if 1 <= orientation <= 8 else 1)


@fuzz_settings(100)
@given(st.lists(st.sampled_from(SEEDS), min_size=2, max_size=3), st.integers(1, 200))
def test_spliced_files(parts: list[bytes], keep: int) -> None:
    """A file's head glued to another's body (mixed-up or concatenated uploads)."""
    check(b"".join(part[: keep * (i + 1)] for i, part in enumerate(parts)) + parts[-1])
