"""Image intake: every input is generated here, in memory, so the tests pin exact behaviour."""

from __future__ import annotations

import io
import struct
import time
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pillow_heif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, ImageOps

from faceproof.capture import (
    DEFAULT_LIMITS,
    SUPPORTED_FORMATS,
    DecodedImage,
    ImageLimits,
    decode_image,
    load_image,
)
from faceproof.capture import decode as decode_module
from faceproof.errors import ImageError
from faceproof.reasons import ReasonCode

pillow_heif.register_heif_opener()  # the tests encode HEIC; decode_image registers it on its own

RED = (255, 0, 0)
WHITE = (255, 255, 255)


# --- helpers ---------------------------------------------------------------------------------


def encode(img: Image.Image, fmt: str, **options: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def noise_image(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def smooth_image(width: int = 96, height: int = 64) -> Image.Image:
    """A gradient lossy codecs keep close to the original."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // (width - 1), y * 255 // (height - 1), np.full_like(x, 128)], -1)
    return Image.fromarray(rgb.astype(np.uint8))


def red_corner_image(width: int = 96, height: int = 64, block: int = 24) -> Image.Image:
    """White with a red block at the top-left corner, to see where a rotation puts it."""
    img = Image.new("RGB", (width, height), WHITE)
    img.paste(RED, (0, 0, block, block))
    return img


def exif_with_orientation(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def png_chunk(tag: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(tag + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", crc)


def crafted_png(width: int, height: int, bit_depth: int, colour_type: int, raw: bytes) -> bytes:
    """A PNG built byte by byte, so the header can claim anything."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def corner_colour(pixels: npt.NDArray[np.uint8], corner: str, inset: int = 6) -> tuple[int, ...]:
    h, w = pixels.shape[:2]
    y = inset if corner[0] == "t" else h - 1 - inset
    x = inset if corner[1] == "l" else w - 1 - inset
    return tuple(int(v) for v in pixels[y, x])


def is_close(colour: tuple[int, ...], expected: tuple[int, ...], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(colour, expected, strict=True))


def assert_reason(data: bytes, code: ReasonCode, limits: ImageLimits = DEFAULT_LIMITS) -> None:
    with pytest.raises(ImageError) as info:
        decode_image(data, limits)
    assert info.value.code is code, str(info.value)


def assert_well_formed(img: DecodedImage) -> None:
    px = img.pixels
    assert px.dtype == np.uint8
    assert px.shape == (img.height, img.width, 3)
    assert px.flags.c_contiguous
    assert not px.flags.writeable
    assert img.format in SUPPORTED_FORMATS


# --- supported formats -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "name", "options", "max_mean_error"),
    [
        ("JPEG", "jpeg", {"quality": 95}, 4.0),
        ("PNG", "png", {}, 0.0),
        ("WEBP", "webp", {"lossless": True}, 0.0),
        ("WEBP", "webp", {"quality": 90}, 6.0),
        ("HEIF", "heic", {"quality": 90}, 6.0),
    ],
)
def test_round_trip(fmt: str, name: str, options: dict[str, Any], max_mean_error: float) -> None:
    original = smooth_image()
    decoded = decode_image(encode(original, fmt, **options))
    assert_well_formed(decoded)
    assert decoded.format == name
    assert (decoded.width, decoded.height) == original.size
    assert decoded.orientation_applied == 1
    assert decoded.source_mode == "RGB"
    error = np.abs(decoded.pixels.astype(int) - np.asarray(original).astype(int)).mean()
    assert error <= max_mean_error


def test_pixels_are_read_only() -> None:
    decoded = decode_image(encode(noise_image(), "PNG"))
    with pytest.raises(ValueError, match="read-only"):
        decoded.pixels[0, 0, 0] = 1


def test_format_is_detected_by_content_not_by_file_name(tmp_path: Path) -> None:
    original = noise_image()
    wrong_name = tmp_path / "photo.jpg"
    wrong_name.write_bytes(encode(original, "PNG"))
    decoded = load_image(wrong_name)
    assert decoded.format == "png"
    np.testing.assert_array_equal(decoded.pixels, np.asarray(original))


def test_heic_named_jpeg_is_still_heic(tmp_path: Path) -> None:
    path = tmp_path / "upload.jpeg"
    path.write_bytes(encode(smooth_image(), "HEIF"))
    assert load_image(path).format == "heic"


def test_mpo_jpeg_is_accepted_as_its_first_image() -> None:
    # MPO (multi-picture JPEG from some phones/cameras) holds extra images; it is not animation.
    first, second = red_corner_image(), Image.new("RGB", (96, 64), (0, 0, 255))
    data = encode(first, "MPO", save_all=True, append_images=[second])
    decoded = decode_image(data)
    assert decoded.format == "jpeg"
    assert is_close(corner_colour(decoded.pixels, "tl"), RED)
    assert is_close(corner_colour(decoded.pixels, "br"), WHITE)


# --- EXIF orientation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("orientation", "size", "red_corner"),
    [
        (1, (96, 64), "tl"),
        (3, (96, 64), "br"),  # rotated 180°
        (6, (64, 96), "tr"),  # stored sideways, shown rotated 90° clockwise
        (8, (64, 96), "bl"),  # shown rotated 90° counter-clockwise
    ],
)
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_rotates_pixels(
    fmt: str, orientation: int, size: tuple[int, int], red_corner: str
) -> None:
    data = encode(red_corner_image(), fmt, exif=exif_with_orientation(orientation).tobytes())
    decoded = decode_image(data)
    assert (decoded.width, decoded.height) == size
    assert decoded.orientation_applied == orientation
    for corner in ("tl", "tr", "bl", "br"):
        expected = RED if corner == red_corner else WHITE
        assert is_close(corner_colour(decoded.pixels, corner), expected), corner


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_exif_transpose(orientation: int) -> None:
    data = encode(noise_image(), "PNG", exif=exif_with_orientation(orientation).tobytes())
    with Image.open(io.BytesIO(data)) as img:
        expected = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    decoded = decode_image(data)
    np.testing.assert_array_equal(decoded.pixels, expected)
    assert decoded.orientation_applied == orientation


def test_heic_orientation_is_applied() -> None:
    data = encode(red_corner_image(), "HEIF", quality=90, exif=exif_with_orientation(6).tobytes())
    decoded = decode_image(data)
    assert (decoded.width, decoded.height) == (64, 96)
    assert decoded.orientation_applied == 6
    assert is_close(corner_colour(decoded.pixels, "tr"), RED)
    assert is_close(corner_colour(decoded.pixels, "tl"), WHITE)


def test_invalid_orientation_value_is_ignored() -> None:
    data = encode(red_corner_image(), "PNG", exif=exif_with_orientation(9).tobytes())
    decoded = decode_image(data)
    assert decoded.orientation_applied == 1
    assert corner_colour(decoded.pixels, "tl") == RED


# --- mode normalisation ----------------------------------------------------------------------


def test_alpha_is_composited_over_white() -> None:
    rgba = np.zeros((40, 40, 4), dtype=np.uint8)
    rgba[:, :20] = (255, 0, 0, 0)  # fully transparent red
    rgba[:, 20:30] = (255, 0, 0, 255)  # opaque red
    rgba[:, 30:] = (0, 0, 0, 128)  # half-transparent black
    decoded = decode_image(encode(Image.fromarray(rgba), "PNG"))
    assert decoded.source_mode == "RGBA"
    assert tuple(decoded.pixels[5, 5]) == WHITE
    assert tuple(decoded.pixels[5, 25]) == RED
    assert all(abs(int(v) - 127) <= 1 for v in decoded.pixels[5, 35])


def test_grey_with_alpha_is_composited_over_white() -> None:
    la = np.zeros((40, 40, 2), dtype=np.uint8)
    la[:, :20] = (0, 0)
    la[:, 20:] = (50, 255)
    decoded = decode_image(encode(Image.fromarray(la, mode="LA"), "PNG"))
    assert decoded.source_mode == "LA"
    assert tuple(decoded.pixels[0, 0]) == WHITE
    assert tuple(decoded.pixels[0, 30]) == (50, 50, 50)


def test_webp_alpha_is_composited_over_white() -> None:
    img = Image.new("RGBA", (40, 40), (0, 0, 255, 0))
    decoded = decode_image(encode(img, "WEBP", lossless=True))
    assert tuple(decoded.pixels[10, 10]) == WHITE


def test_grey_is_replicated_into_three_channels() -> None:
    decoded = decode_image(encode(Image.new("L", (40, 40), 77), "PNG"))
    assert decoded.source_mode == "L"
    assert np.all(decoded.pixels == 77)


def test_grey_jpeg() -> None:
    decoded = decode_image(encode(Image.new("L", (40, 40), 200), "JPEG", quality=95))
    assert decoded.source_mode == "L"
    assert np.all(np.abs(decoded.pixels.astype(int) - 200) <= 2)


def test_palette_image() -> None:
    rgb = Image.new("RGB", (40, 40), (10, 120, 230))
    rgb.paste((200, 30, 30), (0, 0, 20, 40))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    decoded = decode_image(encode(palette, "PNG"))
    assert decoded.source_mode == "P"
    assert tuple(decoded.pixels[5, 5]) == (200, 30, 30)
    assert tuple(decoded.pixels[5, 35]) == (10, 120, 230)


def test_palette_transparency_is_composited_over_white() -> None:
    palette = Image.new("P", (40, 40), 1)
    palette.putpalette([0, 0, 0, 200, 30, 30] + [0] * (256 * 3 - 6))
    palette.paste(0, (0, 0, 20, 40))
    decoded = decode_image(encode(palette, "PNG", transparency=0))
    assert decoded.source_mode == "P"
    assert tuple(decoded.pixels[5, 5]) == WHITE
    assert tuple(decoded.pixels[5, 35]) == (200, 30, 30)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    row = np.array([0, 257, 32896, 65535], dtype=np.uint16)
    grey16 = np.tile(np.repeat(row, 10), (40, 1))  # 40x40, four bands
    decoded = decode_image(encode(Image.fromarray(grey16), "PNG"))
    assert decoded.source_mode.startswith("I")
    assert [int(decoded.pixels[0, x, 0]) for x in (0, 10, 20, 30)] == [0, 1, 128, 255]
    assert np.all(decoded.pixels[..., 0] == decoded.pixels[..., 2])


def test_sixteen_bit_rgb_png() -> None:
    pixel = struct.pack(">HHH", 65535, 32896, 0)
    raw = (b"\x00" + pixel * 40) * 40  # filter byte + 40 pixels, 40 rows
    decoded = decode_image(crafted_png(40, 40, 16, 2, raw))
    assert tuple(decoded.pixels[3, 3]) == (255, 128, 0)


def test_cmyk_jpeg() -> None:
    cmyk = Image.new("CMYK", (40, 40), (0, 255, 255, 0))  # pure red in CMYK
    decoded = decode_image(encode(cmyk, "JPEG", quality=95))
    assert decoded.source_mode == "CMYK"
    assert is_close(tuple(int(v) for v in decoded.pixels[20, 20]), RED, tol=10)


# --- bad inputs, each with its exact reason ---------------------------------------------------


def test_empty() -> None:
    assert_reason(b"", ReasonCode.IMAGE_EMPTY)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_truncated(fmt: str) -> None:
    data = encode(noise_image(200, 150), fmt)
    assert_reason(data[: len(data) // 2], ReasonCode.IMAGE_TRUNCATED)


def test_corrupt_png_data() -> None:
    data = bytearray(encode(noise_image(), "PNG"))
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(16)  # IDAT crc no longer matches
    assert_reason(bytes(data), ReasonCode.IMAGE_CORRUPT)


def test_random_bytes() -> None:
    data = np.random.default_rng(1234).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    assert_reason(data, ReasonCode.IMAGE_UNSUPPORTED_FORMAT)


def test_text_file() -> None:
    assert_reason(b"name,passport\nKim,M12345678\n", ReasonCode.IMAGE_UNSUPPORTED_FORMAT)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "AVIF", "PDF", "ICO"])
def test_other_image_formats_are_unsupported(fmt: str) -> None:
    assert_reason(encode(noise_image(), fmt), ReasonCode.IMAGE_UNSUPPORTED_FORMAT)


def test_animated_gif_is_unsupported_format() -> None:
    frames = [Image.new("RGB", (40, 40), c) for c in (RED, (0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert_reason(data, ReasonCode.IMAGE_UNSUPPORTED_FORMAT)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "HEIF"])
def test_animated(fmt: str) -> None:
    frames = [Image.new("RGB", (40, 40), c) for c in (RED, (0, 255, 0))]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:])
    assert_reason(data, ReasonCode.IMAGE_ANIMATED)


def test_heic_sequence_brand_is_animated() -> None:
    data = bytearray(encode(smooth_image(), "HEIF"))
    assert data[8:12] == b"heic"
    data[8:12] = b"hevc"  # major brand of an HEVC image sequence
    assert_reason(bytes(data), ReasonCode.IMAGE_ANIMATED)


def test_too_large_file() -> None:
    data = encode(noise_image(), "PNG")
    small = ImageLimits(max_bytes=len(data) - 1)
    assert_reason(data, ReasonCode.IMAGE_TOO_LARGE, small)
    decode_image(data, ImageLimits(max_bytes=len(data)))  # exactly at the limit is fine


def test_too_large_file_is_refused_by_stat_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(encode(noise_image(), "PNG"))

    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was opened although stat() showed it is too large")

    monkeypatch.setattr(decode_module, "open", no_open, raising=False)
    with pytest.raises(ImageError) as info:
        load_image(path, ImageLimits(max_bytes=100))
    assert info.value.code is ReasonCode.IMAGE_TOO_LARGE


def test_tiny_image() -> None:
    assert_reason(encode(noise_image(31, 200), "PNG"), ReasonCode.IMAGE_TOO_SMALL)
    decode_image(encode(noise_image(32, 32), "PNG"))


def test_side_over_limit() -> None:
    data = crafted_png(12_001, 32, 8, 0, b"")
    assert_reason(data, ReasonCode.IMAGE_TOO_MANY_PIXELS)


def _count_loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real_load = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> Any:
        calls.append(1)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return calls


def test_header_over_pixel_limit_is_refused_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 81 MP: over our 40 MP limit but under Pillow's own 89 MP warning, so our check answers.
    loads = _count_loads(monkeypatch)
    data = crafted_png(9_000, 9_000, 8, 2, b"\x00" * 100)
    start = time.perf_counter()
    assert_reason(data, ReasonCode.IMAGE_TOO_MANY_PIXELS)
    assert time.perf_counter() - start < 1.0
    assert loads == []


def test_20000_square_png_header_is_refused_without_allocating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 400 MP in a ~70-byte file: Pillow's own guard fires inside Image.open (before we even see
    # the size), and a 5.7-million-fold expansion is a decompression bomb by our ratio rule too.
    loads = _count_loads(monkeypatch)
    data = crafted_png(20_000, 20_000, 8, 2, b"\x00" * 100)
    assert len(data) < 100
    start = time.perf_counter()
    assert_reason(data, ReasonCode.IMAGE_DECOMPRESSION_BOMB)
    assert time.perf_counter() - start < 1.0
    assert loads == []


def test_pillow_bomb_warning_is_a_bomb_even_when_our_limits_are_looser() -> None:
    loose = ImageLimits(max_pixels=200_000_000, max_side=20_000)
    data = crafted_png(10_000, 10_000, 8, 2, b"\x00" * 100)  # 100 MP: Pillow warns
    assert_reason(data, ReasonCode.IMAGE_DECOMPRESSION_BOMB, loose)


def test_flat_colour_rgb_png_is_not_a_bomb() -> None:
    # ~740:1 expansion, under the 3000:1 ratio: a plain image is not refused as a bomb.
    data = encode(Image.new("RGB", (2000, 2000), (240, 240, 240)), "PNG")
    assert 2000 * 2000 * 3 / len(data) < DEFAULT_LIMITS.max_compression_ratio
    decoded = decode_image(data)
    assert (decoded.width, decoded.height) == (2000, 2000)


def test_flat_one_bit_png_over_the_ratio_is_a_bomb() -> None:
    # The trade-off: a blank 1-bit image expands > 10000-fold and is refused as a bomb (it holds
    # no face anyway); a looser ratio or an image below the size floor lets it through.
    data = encode(Image.new("1", (2000, 2000), 1), "PNG")
    ratio = 2000 * 2000 * 3 / len(data)
    assert ratio > DEFAULT_LIMITS.max_compression_ratio
    assert_reason(data, ReasonCode.IMAGE_DECOMPRESSION_BOMB)
    decode_image(data, ImageLimits(max_compression_ratio=ratio + 1))
    decode_image(encode(Image.new("1", (500, 500), 1), "PNG"))  # 0.75 MB decoded: below floor


def test_global_pillow_state_is_left_alone() -> None:
    filters_before = list(warnings.filters)
    max_pixels_before = Image.MAX_IMAGE_PIXELS
    truncated_before = ImageFile.LOAD_TRUNCATED_IMAGES
    with pytest.raises(ImageError):
        decode_image(crafted_png(20_000, 20_000, 8, 2, b""))
    decode_image(encode(noise_image(), "JPEG"))
    assert warnings.filters == filters_before
    assert max_pixels_before == Image.MAX_IMAGE_PIXELS
    assert truncated_before == ImageFile.LOAD_TRUNCATED_IMAGES


# --- load_image ------------------------------------------------------------------------------


def test_load_image_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as info:
        load_image(tmp_path / "nope.jpg")
    assert info.value.code is ReasonCode.IMAGE_UNREADABLE_FILE


def test_load_image_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as info:
        load_image(tmp_path)
    assert info.value.code is ReasonCode.IMAGE_UNREADABLE_FILE


def test_load_image_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError) as info:
        load_image(str(path))
    assert info.value.code is ReasonCode.IMAGE_EMPTY


# --- DecodedImage validation -----------------------------------------------------------------


def _read_only(array: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    array.flags.writeable = False
    return array


@pytest.mark.parametrize(
    ("pixels", "width", "height", "fmt"),
    [
        (np.zeros((4, 5, 3), dtype=np.uint8), 5, 4, "jpeg"),  # writeable
        (_read_only(np.zeros((4, 5), dtype=np.uint8)), 5, 4, "jpeg"),  # not 3 channels
        (_read_only(np.zeros((4, 5, 3), dtype=np.float32)), 5, 4, "jpeg"),  # wrong dtype
        (_read_only(np.zeros((4, 5, 3), dtype=np.uint8)), 4, 5, "jpeg"),  # width/height swapped
        (_read_only(np.zeros((5, 4, 3), dtype=np.uint8).transpose(1, 0, 2)), 5, 4, "jpeg"),
        (_read_only(np.zeros((4, 5, 3), dtype=np.uint8)), 5, 4, "gif"),
    ],
)
def test_decoded_image_validates(pixels: Any, width: int, height: int, fmt: str) -> None:
    with pytest.raises(ValueError, match="DecodedImage"):
        DecodedImage(pixels=pixels, format=fmt, width=width, height=height)


def test_limits_validate() -> None:
    with pytest.raises(ValueError, match="min_side"):
        ImageLimits(min_side=0)
    with pytest.raises(ValueError, match="positive"):
        ImageLimits(max_bytes=0)


# --- error messages and the property test ----------------------------------------------------


def _leaks(data: bytes, text: str, window: int = 8) -> bool:
    """True if any `window`-byte run of the input shows up in `text` (raw, latin-1 or repr)."""
    for start in range(0, max(1, len(data) - window + 1)):
        piece = data[start : start + window]
        if len(piece) < window:
            break
        if piece.decode("latin-1") in text or repr(piece)[2:-1] in text:
            return True
    return False


def _bad_inputs() -> list[bytes]:
    jpeg = encode(noise_image(), "JPEG")
    png = bytearray(encode(noise_image(), "PNG"))
    png[len(png) // 2 : len(png) // 2 + 16] = b"PASSPORT1234ABCD"
    return [
        b"PASSPORT M12345678 KIM MINJI 1990-01-01\n",
        np.random.default_rng(7).integers(0, 256, 512, dtype=np.uint8).tobytes(),
        jpeg[: len(jpeg) // 2],
        bytes(png),
        b"\x89PNG\r\n\x1a\n" + b"PASSPORT" * 8,
        b"\xff\xd8\xff" + b"PASSPORT" * 8,
        b"RIFF\x10\x00\x00\x00WEBPPASSPORT" * 3,
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heicPASSPORT",
    ]


@pytest.mark.parametrize("data", _bad_inputs())
def test_error_messages_do_not_contain_input_bytes(data: bytes) -> None:
    with pytest.raises(ImageError) as info:
        decode_image(data[:4096])
    exc = info.value
    text = " ".join([str(exc), repr(exc.to_dict())])
    assert "PASSPORT" not in text
    assert not _leaks(data[:4096], text)


_MAGICS = [
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF\x00\x01\x00\x00WEBPVP8 ",
    b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
]
_SEEDS = [
    encode(noise_image(40, 40), "JPEG"),
    encode(noise_image(40, 40), "PNG"),
    encode(noise_image(40, 40), "WEBP"),
    encode(noise_image(40, 40), "HEIF"),
]


@st.composite
def mutated_image(draw: st.DrawFn) -> bytes:
    """A valid small image with a few bytes overwritten and maybe cut short."""
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(1, len(data)))])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=2000),
        st.builds(bytes.__add__, st.sampled_from(_MAGICS), st.binary(max_size=2000)),
        mutated_image(),
    )
)
def test_any_bytes_decode_or_raise_image_error(data: bytes) -> None:
    outcome: DecodedImage | ImageError
    try:
        outcome = decode_image(data)
    except ImageError as exc:  # anything else escaping fails the test
        outcome = exc
    if isinstance(outcome, ImageError):
        assert outcome.code.value.startswith("image_")
    else:
        assert_well_formed(outcome)
