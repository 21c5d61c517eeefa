"""Size limits for image intake: what an upload may cost us before we refuse it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "ImageLimits"]

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Limits checked on every upload; the pixel limits are checked from the header, pre-decode.

    The hard memory cap is ``max_pixels``/``max_side``: they are read from the image header and
    enforced before a single pixel is decoded, so decoding never costs more than about
    ``max_pixels * 4`` bytes whatever the file claims.

    ``max_compression_ratio`` (decoded RGB bytes / file bytes) is only a second guard against
    inputs that are tiny on the wire yet expensive to decode. Measured on this stack (Pillow 13,
    libheif): real photos sit at 5:1-60:1 (JPEG q75 ~20-70, HEIC q50 ~30-180 at 12 MP); even
    smooth, up-scaled content at absurd quality settings peaks near 1100:1 (HEIC q10). Crafted or
    blank images go far beyond: a flat 12 MP HEIC ~4500:1, a flat 1-bit PNG > 10000:1 (deflate
    alone tops out near 1030:1, bit depth multiplies it). 3000:1 keeps ~3x head-room over the worst
    real-photo case. The trade-off: blank or synthetic images may be refused as a bomb rather than
    later as "no face" (harmless, they hold no face), while flat-colour RGB PNGs (~750-850:1) still
    pass. A false positive would refuse a real person's photo, a false negative only costs one
    bounded decode, so the threshold errs high. The ratio is only applied when the decoded image
    would be at least ``ratio_check_min_decoded_bytes``: below that a decode is cheap anyway.
    """

    max_bytes: int = 20 * _MIB
    max_pixels: int = 40_000_000
    max_side: int = 12_000
    min_side: int = 32
    max_compression_ratio: float = 3000.0
    ratio_check_min_decoded_bytes: int = 8 * _MIB

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_pixels <= 0 or self.max_side <= 0:
            raise ValueError("ImageLimits: max_bytes, max_pixels and max_side must be positive")
        if not 1 <= self.min_side <= self.max_side:
            raise ValueError("ImageLimits: need 1 <= min_side <= max_side")
        if self.max_compression_ratio <= 0 or self.ratio_check_min_decoded_bytes < 0:
            raise ValueError("ImageLimits: compression-ratio settings must be positive")


DEFAULT_LIMITS = ImageLimits()
