"""Find an ID card's four corners in a photo and rectify it to the ID-1 (or TD3) aspect.

Method (OpenCV, no model): grey -> Gaussian blur -> Canny edges (thresholds from the median) ->
dilate -> external contours; the largest contour whose polygon approximation
(`approxPolyDP`, 2 % of the perimeter) is a convex quadrilateral, else its minimum-area
rectangle when the contour fills that rectangle well. Then:

- no such contour covering >= 2 % of the photo: `card_not_found`;
- a corner within 3 px of the photo's edge, or a large open outline touching the edge around
  what was found (heuristic, see `_check_cut_off`): `card_cut_off`;
- the quadrilateral's shorter side < 200 px (too few pixels for the text): `card_too_small`.

Corners come back ordered top-left, top-right, bottom-right, bottom-left *of the card*: when
the card stands upright in the photo (a 90-degree rotation) the long side is made horizontal.
An upside-down card (180 degrees) is not detected here; `read.classify` tries both ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from faceproof.documents.errors import DocumentError
from faceproof.reasons import ReasonCode

__all__ = [
    "ID1_SIZE",
    "MIN_SHARPNESS",
    "TD3_SIZE",
    "CardQuad",
    "Corners",
    "locate_card",
    "order_corners",
    "rectify",
    "sharpness",
]

ID1_SIZE: Final = (1012, 638)
TD3_SIZE: Final = (1012, 712)
MIN_AREA_FRACTION: Final = 0.02
MIN_SHORT_SIDE_PX: Final = 200.0
BORDER_MARGIN_PX: Final = 3.0
MIN_SHARPNESS: Final = 8.0
Corners = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]


@dataclass(frozen=True, slots=True)
class CardQuad:
    """The card's corners in the photo (TL, TR, BR, BL of the card) and its area fraction."""

    corners: Corners
    area_fraction: float


def order_corners(points: npt.ArrayLike) -> Corners:
    """Order 4 points TL, TR, BR, BL (clockwise from top-left), long side first."""
    pts = np.asarray(points, dtype=np.float64).reshape(4, 2)
    centre = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
    pts = pts[np.argsort(angles)]  # clockwise in image coordinates (y down)
    start = int(np.argmin(pts.sum(axis=1)))  # top-left: smallest x + y
    pts = np.roll(pts, -start, axis=0)
    top = np.linalg.norm(pts[1] - pts[0]) + np.linalg.norm(pts[2] - pts[3])
    side = np.linalg.norm(pts[3] - pts[0]) + np.linalg.norm(pts[2] - pts[1])
    if side > top:  # card stands upright: make its long side the top edge
        pts = np.roll(pts, -1, axis=0)
    return tuple((float(x), float(y)) for x, y in pts)  # type: ignore[return-value]


def locate_card(pixels: npt.NDArray[np.uint8]) -> CardQuad:
    """Find the card in an RGB photo or raise DocumentError (see the module docstring)."""
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError("locate_card expects an HxWx3 RGB array")
    h, w = pixels.shape[:2]
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, 1000.0 / max(h, w))
    small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (5, 5), 0)
    median = float(np.median(small))
    edges = cv2.Canny(small, int(max(0.0, 0.5 * median)), int(min(255.0, 1.2 * median)))
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8), iterations=2)
    contours, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    image_area = float(small.shape[0] * small.shape[1])
    quad: npt.NDArray[np.float64] | None = None
    for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:5]:
        area = float(cv2.contourArea(contour))
        if area < MIN_AREA_FRACTION * image_area:
            break
        hull = cv2.convexHull(contour)
        approx = cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, True), True)
        if len(approx) == 4 and cv2.isContourConvex(approx):
            quad = approx.reshape(4, 2).astype(np.float64)
            break
        rect = cv2.minAreaRect(contour)
        rw, rh = rect[1]
        if rw * rh > 0 and area / (rw * rh) > 0.85:
            quad = cv2.boxPoints(rect).astype(np.float64)
            break
    _check_cut_off(contours, quad, small.shape[1], small.shape[0])
    if quad is None:
        raise DocumentError(ReasonCode.CARD_NOT_FOUND, "no card-shaped outline in the photo")
    # Blur, edge position and dilation roughly cancel: measured on photographed specimens the
    # corners land within about 4 px (2.6 px mean) of the truth with no further correction.
    quad = quad / scale
    corners = order_corners(quad)
    pts = np.asarray(corners)
    if (
        pts[:, 0].min() < BORDER_MARGIN_PX
        or pts[:, 1].min() < BORDER_MARGIN_PX
        or pts[:, 0].max() > w - 1 - BORDER_MARGIN_PX
        or pts[:, 1].max() > h - 1 - BORDER_MARGIN_PX
    ):
        raise DocumentError(ReasonCode.CARD_CUT_OFF, "the card touches the edge of the photo")
    sides = [float(np.linalg.norm(pts[i] - pts[(i + 1) % 4])) for i in range(4)]
    if min(sides) < MIN_SHORT_SIDE_PX:
        raise DocumentError(
            ReasonCode.CARD_TOO_SMALL,
            f"the card's short side is {min(sides):.0f} px; at least {MIN_SHORT_SIDE_PX:.0f}",
        )
    area_fraction = float(cv2.contourArea(pts.astype(np.float32))) / float(h * w)
    return CardQuad(corners, area_fraction)


def _check_cut_off(
    contours: Sequence[Any],
    quad: npt.NDArray[np.float64] | None,
    width: int,
    height: int,
) -> None:
    """A card that runs off the photo leaves an open outline touching the border.

    Heuristic: an outline touching the border whose bounding box covers at least 10 % of the
    photo and is 1.5 times larger than the quadrilateral found (or there is none) and contains
    its centre means the card is cut off; the quadrilateral found is then something on the card
    (the portrait, a text block).
    """
    quad_area = 0.0 if quad is None else float(cv2.contourArea(quad.astype(np.float32)))
    centre = None if quad is None else quad.mean(axis=0)
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        touches = x <= 1 or y <= 1 or x + w >= width - 1 or y + h >= height - 1
        if not touches or w * h < 0.10 * width * height or w * h < 1.5 * quad_area:
            continue
        if centre is None or (x <= centre[0] <= x + w and y <= centre[1] <= y + h):
            raise DocumentError(ReasonCode.CARD_CUT_OFF, "the card runs off the edge of the photo")


def sharpness(card: npt.NDArray[np.uint8]) -> float:
    """Variance of the Laplacian of the rectified card's grey image (higher = sharper).

    On rectified photographed specimens (1012 px wide): sharp photos 59-190; after a Gaussian
    blur of radius 2 (still read correctly) 10-31; radius 3 5-12 (often no longer classified);
    radius 5 2.5-5. `MIN_SHARPNESS` (8) rejects what is clearly unreadable and lets mild blur
    through; it is calibrated on synthetic cards only."""
    grey = cv2.cvtColor(card, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def rectify(
    pixels: npt.NDArray[np.uint8], corners: Corners, *, size: tuple[int, int] = ID1_SIZE
) -> npt.NDArray[np.uint8]:
    """Warp the quadrilateral (TL, TR, BR, BL) to an upright `size` (width, height) image."""
    width, height = size
    src = np.asarray(corners, dtype=np.float32)
    dst = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    out: npt.NDArray[np.uint8] = np.asarray(
        cv2.warpPerspective(pixels, matrix, (width, height), flags=cv2.INTER_LINEAR),
        dtype=np.uint8,
    )
    return out
