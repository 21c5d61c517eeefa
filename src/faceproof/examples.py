"""The bundled example: a public-domain portrait shipped inside scikit-image.

`skimage.data.astronaut()` is NASA's portrait of Eileen Collins (public domain). The second image
is the same photo mirrored, relit and JPEG re-compressed, all in memory: a genuine pair that
exercises decoding, detection, alignment and matching without any file from outside the package.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance

from faceproof.capture import DecodedImage, decode_image

__all__ = ["example_pair", "example_portrait"]


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def example_portrait() -> Image.Image:
    from skimage import data

    return Image.fromarray(np.asarray(data.astronaut()))  # type: ignore[no-untyped-call]


def example_pair() -> tuple[DecodedImage, DecodedImage]:
    portrait = example_portrait()
    relit = ImageEnhance.Brightness(portrait.transpose(Image.Transpose.FLIP_LEFT_RIGHT)).enhance(
        0.75
    )
    return decode_image(_jpeg(portrait, 92)), decode_image(_jpeg(relit, 60))
