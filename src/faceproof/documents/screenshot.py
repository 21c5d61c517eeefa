"""Is this a camera photo of the card itself, or a screenshot / a photo of a screen?

Two kinds of "card" are refused with `card_screenshot`, after `locate_card` and before OCR:

1. **A digital image** (a screenshot, a scan-like rendering, one shared through a chat app):
   no camera made it, so the card surface has no sensor noise and its outline follows the
   pixel grid. Measured, in the photo, on the card located by `locate_card`:

   - `flat_share`: the share of the card's interior (the quadrilateral shrunk to 90 %) whose
     3x3 grey neighbourhood is exactly constant; clipped pixels (<= 5, >= 250) do not count.
     A camera adds noise before any compression, so few neighbourhoods are exactly equal.
   - `tilt`: the largest angle between one of the card's four sides and the nearest image
     axis, in degrees. A rendering pasted into an image has all four at 0; a hand-held photo
     has rotation and perspective.
   - `background_flat`: the same exact-flatness share outside the card (the quadrilateral
     grown to 106 %); `None` when less than 5 % of the photo is unclipped background. A white
     or black canvas is clipped, so it counts as no evidence (an overexposed white table under
     a real card must not count against it); such renders are caught by their outline.

   A digital image is `flat_share >= FLAT_MIN` **and** (`tilt <= TILT_MAX` **or**
   `background_flat >= BACKGROUND_FLAT_MIN`): flatness alone is not enough, because a camera
   photo compressed hard (JPEG quality 70) can lose its noise in smooth areas; it must come
   with a pixel-grid outline or a synthetic canvas. When the card fills the frame (no
   outline; `read_document` takes the whole photo as the card), only the frame's flatness is
   left, and a stricter bound applies: `FRAME_FLAT_MIN`.

2. **A photo of a card shown on a screen**: the screen's pixel grid, and the moire it beats
   into the camera's sampling, puts isolated periodic peaks into the spectrum of the card's
   surface, which paper does not. `moire` is the median, over 9 patches of 128x128 px spread
   over the card, of the strongest isolated peak (`capture.spectrum`, as the liveness cues:
   a 3x3-bin-averaged log spectrum minus its 15-bin median along each axis, the smaller of the
   two; frequencies >= 0.08 cycles/px; the 8-px JPEG block lattice excluded). The median
   across patches ignores one patch whose text happens to be regular. `moire >= MOIRE_MIN`
   is a screen.

Thresholds and their margins come from faceproof's synthetic cards
(`uv run python benchmarks/screenshot_calibration.py`, docs/documents.md "Screenshots");
they are set so that a camera photo of a card is never refused on them (a false refusal is
worse than a miss). Only measures leave this module, never pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from faceproof.capture.spectrum import FFT, band_mask, strongest_peak
from faceproof.documents.errors import DocumentError
from faceproof.reasons import ReasonCode

__all__ = [
    "BACKGROUND_FLAT_MIN",
    "FLAT_MIN",
    "FRAME_FLAT_MIN",
    "MOIRE_MIN",
    "TILT_MAX",
    "ScreenshotMeasures",
    "card_moire",
    "frame_flat_share",
    "measure_card",
    "refuse_screenshot",
]

Corners = tuple[tuple[float, float], ...]
U8 = npt.NDArray[np.uint8]

# Synthetic calibration (docs/documents.md): camera photos 0.00-0.41 flat (a gate only),
# tilt >= 1.14 degrees, background <= 0.06 flat, moire <= 2.11; renders tilt <= 0.30,
# canvases >= 0.56 flat, lossless frame-filling renders >= 0.485 flat; screens 2.7-43.
FLAT_MIN: Final = 0.10
TILT_MAX: Final = 0.5
BACKGROUND_FLAT_MIN: Final = 0.5
FRAME_FLAT_MIN: Final = 0.45
MOIRE_MIN: Final = 3.0

_CLIP_LOW, _CLIP_HIGH = 5, 250
_MIN_BACKGROUND_SHARE: Final = 0.05
_LOW: Final = 0.08  # cycles/px: below this, the card's own print and shading


@dataclass(frozen=True, slots=True)
class ScreenshotMeasures:
    """What the screenshot check measured on one photo (numbers only, safe to log)."""

    flat_share: float
    tilt: float
    background_flat: float | None
    moire: float

    @property
    def digital(self) -> bool:
        """No camera made this image: a flat card with a pixel-grid outline or canvas."""
        if self.flat_share < FLAT_MIN:
            return False
        flat_canvas = self.background_flat is not None and (
            self.background_flat >= BACKGROUND_FLAT_MIN
        )
        return self.tilt <= TILT_MAX or flat_canvas

    @property
    def screen(self) -> bool:
        """A screen's pixel grid or moire over the card."""
        return self.moire >= MOIRE_MIN


def _grey(photo: U8) -> U8:
    grey: U8 = np.asarray(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    return grey


def _exactly_flat(grey: U8) -> npt.NDArray[np.bool_]:
    kernel = np.ones((3, 3), np.uint8)
    flat: npt.NDArray[np.bool_] = cv2.dilate(grey, kernel) == cv2.erode(grey, kernel)
    return flat


def _scaled_mask(shape: tuple[int, int], pts: npt.NDArray[np.float64], factor: float) -> U8:
    centre = pts.mean(axis=0)
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, np.round(centre + (pts - centre) * factor).astype(np.int32), 1)
    return mask


def _tilt(pts: npt.NDArray[np.float64]) -> float:
    worst = 0.0
    for i in range(4):
        dx, dy = pts[(i + 1) % 4] - pts[i]
        angle = float(np.degrees(np.arctan2(dy, dx))) % 90.0
        worst = max(worst, min(angle, 90.0 - angle))
    return worst


_CARD_BAND: Final = band_mask(_LOW)


def card_moire(grey: U8, corners: Corners) -> float:
    """Median over 9 patches spread over the card of the strongest isolated spectral peak."""
    pts = np.asarray(corners, dtype=np.float64)
    h, w = grey.shape
    half = FFT // 2
    peaks = []
    for u in (0.25, 0.5, 0.75):
        for v in (0.3, 0.5, 0.7):
            top = pts[0] + (pts[1] - pts[0]) * u
            bottom = pts[3] + (pts[2] - pts[3]) * u
            x, y = np.round(top + (bottom - top) * v).astype(int)
            x = int(np.clip(x, half, w - half))
            y = int(np.clip(y, half, h - half))
            patch = grey[y - half : y + half, x - half : x + half]
            if patch.shape == (FFT, FFT):
                peaks.append(strongest_peak(patch, _CARD_BAND)[0])
    return float(np.median(peaks)) if peaks else 0.0


def measure_card(photo: U8, corners: Corners) -> ScreenshotMeasures:
    """The measures of the module docstring for a card located at `corners` in an RGB photo."""
    grey = _grey(photo)
    pts = np.asarray(corners, dtype=np.float64)
    flat = _exactly_flat(grey)
    unclipped = (grey > _CLIP_LOW) & (grey < _CLIP_HIGH)
    inside = _scaled_mask(grey.shape, pts, 0.9).astype(bool) & unclipped
    flat_share = float(flat[inside].mean()) if inside.any() else 0.0
    outside = (_scaled_mask(grey.shape, pts, 1.06) == 0) & unclipped
    background = float(flat[outside].mean()) if outside.mean() >= _MIN_BACKGROUND_SHARE else None
    return ScreenshotMeasures(flat_share, _tilt(pts), background, card_moire(grey, corners))


def refuse_screenshot(photo: U8, corners: Corners, *, whole_frame: bool = False) -> None:
    """Raise `DocumentError(card_screenshot)` for a digital image or a photo of a screen.

    `whole_frame`: the corners are the photo's own (no outline was found and the photo has
    the card's shape), so the outline and the background say nothing: only the frame's
    flatness counts, against the stricter `FRAME_FLAT_MIN`."""
    if whole_frame:
        share = frame_flat_share(photo)
        if share >= FRAME_FLAT_MIN:
            raise DocumentError(
                ReasonCode.CARD_SCREENSHOT,
                f"a digital image filling the frame: {100 * share:.0f} % exactly flat",
            )
        return
    m = measure_card(photo, corners)
    if m.digital:
        background = "none" if m.background_flat is None else f"{100 * m.background_flat:.0f} %"
        raise DocumentError(
            ReasonCode.CARD_SCREENSHOT,
            f"a digital image, not a camera photo: {100 * m.flat_share:.0f} % of the card "
            f"exactly flat, sides within {m.tilt:.1f} degrees of the pixel grid, flat "
            f"background {background}",
        )
    if m.screen:
        raise DocumentError(
            ReasonCode.CARD_SCREENSHOT,
            f"a photo of a screen: a periodic pattern over the card (peak ratio {m.moire:.1f})",
        )


def frame_flat_share(photo: U8) -> float:
    """Exact-flatness share of the whole frame (unclipped pixels)."""
    grey = _grey(photo)
    unclipped = (grey > _CLIP_LOW) & (grey < _CLIP_HIGH)
    return float(_exactly_flat(grey)[unclipped].mean()) if unclipped.any() else 0.0
