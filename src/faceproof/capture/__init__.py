"""Image intake: untrusted upload bytes in, one read-only 8-bit RGB photo (or an ImageError) out."""

from faceproof.capture.decode import SUPPORTED_FORMATS, DecodedImage, decode_image, load_image
from faceproof.capture.limits import DEFAULT_LIMITS, ImageLimits

__all__ = [
    "DEFAULT_LIMITS",
    "SUPPORTED_FORMATS",
    "DecodedImage",
    "ImageLimits",
    "decode_image",
    "load_image",
]
