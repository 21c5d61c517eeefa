"""The card's portrait: cut it out at the photo's own resolution and check it holds a face.

`cut_portrait(photo, corners, box, card_size)` maps the portrait box (in rectified-card
coordinates) back into the photo through the card's homography and warps just that region,
at the size it actually has in the photo (never smaller than in the rectified card), so the
matcher gets every available pixel. `check_portrait(pixels, detector)` runs a face detector
(`faces.detector.FaceDetector`, YuNet in production) on it:

- no face: `portrait_no_face` (REJECT: a card whose portrait has no face is not accepted);
- the face box narrower than `MIN_FACE_WIDTH_PX` (50 px, below which SFace similarity drops,
  see /work/shared/NOTES.md): `portrait_too_small` (WARNING).

Glare or a hologram over the face are not measured yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from faceproof.documents.locate import Corners
from faceproof.documents.types import Check, PortraitBox
from faceproof.faces.detector import FaceDetector
from faceproof.reasons import ReasonCode

__all__ = ["MIN_FACE_WIDTH_PX", "PortraitCheck", "check_portrait", "cut_portrait"]

MIN_FACE_WIDTH_PX: Final = 50.0


@dataclass(frozen=True, slots=True, eq=False)
class PortraitCheck:
    """Checks on the portrait and the face box found in it (portrait pixel coordinates)."""

    checks: tuple[Check, ...]
    face_box: tuple[float, float, float, float] | None
    confidence: float | None
    pixels: npt.NDArray[np.uint8] = field(repr=False)


def cut_portrait(
    photo: npt.NDArray[np.uint8],
    corners: Corners,
    box: PortraitBox,
    card_size: tuple[int, int],
) -> npt.NDArray[np.uint8]:
    """The portrait region of the card, warped upright at its resolution in the photo."""
    cw, ch = card_size
    card_rect = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], dtype=np.float32)
    to_photo = cv2.getPerspectiveTransform(card_rect, np.asarray(corners, dtype=np.float32))
    x, y, w, h = box.x, box.y, box.width, box.height
    region = np.array([[[x, y], [x + w, y], [x + w, y + h], [x, y + h]]], dtype=np.float32)
    in_photo = cv2.perspectiveTransform(region, to_photo)[0]
    width = max(w, round(max(np.linalg.norm(in_photo[1] - in_photo[0]),
                             np.linalg.norm(in_photo[2] - in_photo[3]))))  # fmt: skip
    height = max(h, round(max(np.linalg.norm(in_photo[3] - in_photo[0]),
                              np.linalg.norm(in_photo[2] - in_photo[1]))))  # fmt: skip
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(in_photo.astype(np.float32), target)
    out: npt.NDArray[np.uint8] = np.ascontiguousarray(
        cv2.warpPerspective(photo, matrix, (int(width), int(height)), flags=cv2.INTER_CUBIC),
        dtype=np.uint8,
    )
    return out


def check_portrait(pixels: npt.NDArray[np.uint8], detector: FaceDetector) -> PortraitCheck:
    """Detect the face in a cut-out portrait: `portrait_no_face` / `portrait_too_small`."""
    faces = sorted(detector.detect(pixels), key=lambda f: f.confidence, reverse=True)
    if not faces:
        no_face = Check("portrait_face", False, ReasonCode.PORTRAIT_NO_FACE, "no face found")
        return PortraitCheck((no_face,), None, None, pixels)
    face = faces[0]
    b = face.box
    big_enough = b.width >= MIN_FACE_WIDTH_PX
    detail = "" if big_enough else f"face is {b.width:.0f} px wide; {MIN_FACE_WIDTH_PX:.0f}+"
    checks = (
        Check("portrait_face", True, ReasonCode.PORTRAIT_NO_FACE),
        Check("portrait_size", big_enough, ReasonCode.PORTRAIT_TOO_SMALL, detail),
    )
    return PortraitCheck(checks, (b.x, b.y, b.width, b.height), face.confidence, pixels)
