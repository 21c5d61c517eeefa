"""Passive frame cues: is the face shown on a screen or printed on paper?

Computed on a few sharp frames of a clip (or on one still image), each from the face box:

- `moire`: periodic peaks in the 2-D spectrum of the face patch at high spatial frequency
  (a screen's pixel grid and the moire it beats into the camera's sampling). Each spectral
  value is compared with the median of its neighbours along the horizontal and along the
  vertical frequency axis (15 bins; the smaller of the two ratios counts), so an isolated
  peak stands out while the lines that straight image edges leave in the spectrum do not.
  The power spectrum is first averaged over 3x3 bins (a pattern seen in perspective spreads
  over a few bins, while the noise floor averages out), and the ratio is of amplitudes. DC and
  the low-frequency ring (< 0.08 cycles/px: the face itself) are excluded, and so is the
  8-pixel lattice of video/JPEG coding blocks (k/8 cycles/px on both axes).
- `halftone`: the same peak measure at mid frequencies (0.08-0.25 cycles/px): a print's
  halftone dot screen.
- `frame_sides`: long straight lines (Canny + HoughLinesP) that frame the face: a roughly
  horizontal line above and below it, a roughly vertical one left and right of it, each at
  least 0.6x the face size long and running alongside the face (0-4 sides). A screen's
  bezel or a paper edge gives 3-4; the real live clips' rooms gave at most 2.
- `glare`: the share of the region around the face (2x the face box) that is blown-out
  and colourless (V >= 250, S <= 0.12) in blobs of at least 0.5 % of the face area: a
  reflection on glass.
- `saturation`: the 90th percentile of HSV saturation on the face; a flattened gamut (prints,
  washed-out screens) reads low. Reported only: real faces span too wide a range to decide on.

`decide` combines them (thresholds and their origin: `CueThresholds`, docs/liveness.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from faceproof.capture.spectrum import FFT, band_mask, strongest_peak

__all__ = ["CueThresholds", "CueVerdict", "FrameCues", "decide", "frame_cues", "summarise"]

U8 = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]

_LOW = 0.08  # cycles/px: below this, the face's own shading
_MID_HIGH = 0.25  # cycles/px: halftone below, pixel grid / moire above


@dataclass(frozen=True, slots=True)
class FrameCues:
    """Cue measures on one frame (no pixels)."""

    moire: float  # peak-to-local-median ratio of the strongest high-frequency peak
    halftone: float  # the same at mid frequencies
    frame_sides: int  # 0..4 straight lines framing the face
    glare: float  # fraction of the 2x face region that is specular glare
    saturation: float  # 90th percentile of HSV saturation on the face, 0..1


@dataclass(frozen=True, slots=True)
class CueThresholds:
    """Where each number came from: docs/liveness.md, "Passive cues"."""

    # Bona fide: generated head turns <= 1.80, real live clips <= 2.29; generated attacks and
    # replays >= 6.2 (benchmarks/passive_cues_bench.py).
    peak: float = 3.5  # spectral peak ratio (either band) that marks a periodic pattern
    weak_peak: float = 2.8  # a weaker peak counts when the face is also framed (1.2x 2.29)
    frame_sides: int = 3  # framing sides: bona fide 0-2 (real s18: 2), attacks 3-4
    glare: float = 0.01  # share of the region around a framed face: bona fide 0, screens 0.02+


_MID_BAND = band_mask(_LOW, _MID_HIGH)
_HIGH_BAND = band_mask(_MID_HIGH)


def spectral_peaks(grey: U8) -> tuple[float, float]:
    """(mid, high): the strongest isolated spectral peak ratio in each band of a grey patch."""
    mid, high = strongest_peak(grey, _MID_BAND, _HIGH_BAND)
    return mid, high


def framing_sides(grey: U8, box: tuple[float, float, float, float]) -> int:
    """How many sides of the face box have a long straight line beyond them (0..4).

    A line counts for a side when it is at least 0.6x the face's size long, lies within
    2.5 face sizes beyond that side and runs alongside the face for at least 40 % of the
    face's extent (a horizontal line above or below it, a vertical one left or right of it;
    +-25 degrees, so a tilted device still counts).
    """
    x, y, w, h = box
    edges = cv2.Canny(grey, 60, 160)
    size = min(w, h)
    lines = cv2.HoughLinesP(
        edges, 1, math.pi / 180, threshold=40, minLineLength=max(20, int(0.6 * size)), maxLineGap=8
    )
    if lines is None:
        return 0
    reach = 2.5 * max(w, h)  # a frame further out than this is the room, not a device
    sides = set()
    for x1, y1, x2, y2 in np.asarray(lines).reshape(-1, 4).astype(np.float64):
        angle = math.degrees(math.atan2(y2 - y1, x2 - x1)) % 180
        if angle < 25 or angle > 155:  # horizontal-ish
            overlap = min(max(x1, x2), x + w) - max(min(x1, x2), x)
            if overlap < 0.4 * w:
                continue
            ym = (y1 + y2) / 2
            if y - reach < ym < y:
                sides.add("top")
            elif y + h < ym < y + h + reach:
                sides.add("bottom")
        elif 65 < angle < 115:  # vertical-ish
            overlap = min(max(y1, y2), y + h) - max(min(y1, y2), y)
            if overlap < 0.4 * h:
                continue
            xm = (x1 + x2) / 2
            if x - reach < xm < x:
                sides.add("left")
            elif x + w < xm < x + w + reach:
                sides.add("right")
    return len(sides)


def _glare(rgb: U8, box: tuple[float, float, float, float]) -> float:
    x, y, w, h = box
    img_h, img_w = rgb.shape[:2]
    x0, y0 = max(0, int(x - w / 2)), max(0, int(y - h / 2))
    x1, y1 = min(img_w, int(x + 1.5 * w)), min(img_h, int(y + 1.5 * h))
    region = rgb[y0:y1, x0:x1]
    if region.size == 0:
        return 0.0
    hsv = cv2.cvtColor(np.ascontiguousarray(region), cv2.COLOR_RGB2HSV)
    mask = ((hsv[:, :, 2] >= 250) & (hsv[:, :, 1] <= 30)).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    min_area = 0.005 * w * h
    area = sum(
        int(stats[i, cv2.CC_STAT_AREA])
        for i in range(1, n)
        if stats[i, cv2.CC_STAT_AREA] >= min_area
    )
    return area / float(region.shape[0] * region.shape[1])


def frame_cues(rgb: U8, box: tuple[float, float, float, float]) -> FrameCues:
    """Cues of one RGB frame given the face box (x, y, width, height) in its pixels."""
    img_h, img_w = rgb.shape[:2]
    x, y, w, h = box
    grey: U8 = np.asarray(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY), np.uint8)
    # The inner face (forehead to chin, cheek to cheek): a square of 0.8x the box.
    side = int(max(16, min(FFT, 0.8 * min(w, h))))
    cx, cy = int(x + w / 2), int(y + h / 2)
    fx0 = min(max(0, cx - side // 2), max(0, img_w - side))
    fy0 = min(max(0, cy - side // 2), max(0, img_h - side))
    face = grey[fy0 : fy0 + side, fx0 : fx0 + side]
    mid, high = spectral_peaks(face)
    sides = framing_sides(grey, box)
    glare = _glare(rgb, box)
    crop = rgb[max(0, int(y)) : min(img_h, int(y + h)), max(0, int(x)) : min(img_w, int(x + w))]
    sat = 0.0
    if crop.size:
        hsv = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2HSV)
        sat = float(np.percentile(hsv[:, :, 1], 90)) / 255.0
    return FrameCues(high, mid, sides, glare, sat)


def summarise(per_frame: list[FrameCues]) -> FrameCues:
    """The median of each cue over frames (one odd frame neither makes nor breaks a verdict)."""
    arr = np.asarray(
        [[c.moire, c.halftone, c.frame_sides, c.glare, c.saturation] for c in per_frame]
    )
    med = np.median(arr, axis=0)
    return FrameCues(
        float(med[0]), float(med[1]), round(float(med[2])), float(med[3]), float(med[4])
    )


@dataclass(frozen=True, slots=True)
class CueVerdict:
    screen: bool
    print_: bool
    score: float  # 0..1, higher = more live; 0.5 on the nearest threshold
    why: tuple[str, ...]


def decide(c: FrameCues, t: CueThresholds) -> CueVerdict:
    """Screen / print from the cues (see the module docstring and docs/liveness.md).

    A periodic pattern (a spectral peak >= `peak`, or >= `weak_peak` on a framed face) is an
    attack; it is called a screen when the high band holds the stronger peak and a print when
    the mid band does (the band depends on the distance, so this label is a best guess; both
    reject). A framed face with glare is a screen.
    """
    framed = c.frame_sides >= t.frame_sides
    peak = max(c.moire, c.halftone)
    why: list[str] = []
    periodic = peak >= t.peak or (framed and peak >= t.weak_peak)
    if periodic:
        why.append("periodic_peak" if peak >= t.peak else "framed+weak_peak")
    glare = framed and c.glare >= t.glare
    if glare:
        why.append("framed+glare")
    screen = glare or (periodic and c.moire >= c.halftone)
    print_ = periodic and not screen
    # Score: the strongest cue relative to its threshold, through a logistic (0.5 = on it).
    ratio = peak / t.peak
    if framed:
        ratio = max(ratio, peak / t.weak_peak, c.glare / t.glare)
    score = 1.0 / (1.0 + math.exp(max(-50.0, min(50.0, (ratio - 1.0) / 0.08))))
    score = min(score, 0.49) if (screen or print_) else max(score, 0.5)
    return CueVerdict(screen, print_, score, tuple(why))
