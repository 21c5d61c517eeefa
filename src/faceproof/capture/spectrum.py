"""Isolated periodic peaks in a grey patch's spectrum: a screen's pixel grid or moiré, a print's
halftone. Paper and skin have none; a camera looking at a screen or a print does.

One measure for two callers: the liveness cues on a face (`liveness.cues`) and the screenshot
check on a card (`documents.screenshot`). A patch is windowed and zero-padded to `FFT` bins;
each bin's log amplitude (3×3 averaged: a pattern seen in perspective spreads over a few bins)
is compared with the medians of `MEDIAN` bins along its row and along its column, and the
smaller of the two differences is its prominence. The 8-px coding-block lattice of JPEG/video
(k/8 cycles/px on both axes, ±2 bins) and the lower half-plane (a real patch's spectrum is
symmetric) are never counted.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import uniform_filter  # type: ignore[import-untyped]

__all__ = ["FFT", "band_mask", "strongest_peak"]

FFT: Final = 128  # spectrum size (a smaller patch is zero-padded to it)
MEDIAN: Final = 15  # bins: the neighbourhood a peak must stand out from (peaks up to ~7 wide)
_CENTRE: Final = FFT // 2
_FULL_WINDOW: Final = np.outer(np.hanning(FFT), np.hanning(FFT))


def _usable_and_radius() -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    f = np.fft.fftshift(np.fft.fftfreq(FFT))
    fx, fy = np.meshgrid(f, f)
    r = np.hypot(fx, fy)
    half = (fy > 0) | ((fy == 0) & (fx > 0))
    step = FFT // 8
    idx = np.arange(FFT) - _CENTRE
    near = np.abs((idx + step // 2) % step - step // 2) <= 2
    lattice = near[None, :] & near[:, None]
    usable = half & ~lattice & (r <= 0.5)
    # Every usable bin lies in the rows from the centre on: only those are kept.
    return usable[_CENTRE:], r[_CENTRE:]


_USABLE, _RADIUS = _usable_and_radius()


def band_mask(low: float, high: float = math.inf) -> npt.NDArray[np.bool_]:
    """The usable bins with `low <= radius < high` (cycles/px), for `strongest_peak`."""
    mask: npt.NDArray[np.bool_] = _USABLE & (low <= _RADIUS) & (high > _RADIUS)
    return mask


def _running_median(values: npt.NDArray[np.float64], axis: int) -> npt.NDArray[np.float64]:
    """The median of the `MEDIAN` values centred on each along `axis`, edges repeated: what
    `scipy.ndimage.median_filter(size=MEDIAN, mode="nearest")` gives along one axis, exactly
    (an odd window's median is one value: `np.partition` finds it about 5x faster)."""
    reach = MEDIAN // 2
    pad = [(0, 0)] * values.ndim
    pad[axis] = (reach, reach)
    windows = sliding_window_view(np.pad(values, pad, mode="edge"), MEDIAN, axis=axis)
    median: npt.NDArray[np.float64] = np.partition(windows, reach, axis=-1)[..., reach]
    return median


def _prominence(grey: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    h, w = grey.shape
    side = min(h, w, FFT)
    y0, x0 = (h - side) // 2, (w - side) // 2
    patch = grey[y0 : y0 + side, x0 : x0 + side].astype(np.float64)
    padded = np.zeros((FFT, FFT))
    o = (FFT - side) // 2
    window = _FULL_WINDOW if side == FFT else np.outer(np.hanning(side), np.hanning(side))
    padded[o : o + side, o : o + side] = (patch - patch.mean()) * window
    power = np.abs(np.fft.fftshift(np.fft.fft2(padded))) ** 2
    mag = 0.5 * np.log(uniform_filter(power, size=3, mode="wrap") + 1e-12)
    # The medians (most of the cost) only on the upper half-plane, with the rows above it that
    # the vertical windows reach: the same values as on the whole spectrum, half the work.
    reach = MEDIAN // 2
    upper = mag[_CENTRE:]
    along_x = _running_median(upper, axis=1)
    along_y = _running_median(mag[_CENTRE - reach :], axis=0)[reach:]
    prominence: npt.NDArray[np.float64] = np.minimum(upper - along_x, upper - along_y)
    return prominence


def strongest_peak(grey: npt.NDArray[np.uint8], *bands: npt.NDArray[np.bool_]) -> tuple[float, ...]:
    """For each band (`band_mask`), the strongest isolated peak of the grey patch's centre
    square (at most FFT px): its amplitude ratio to its neighbours' median (1 = none)."""
    prominence = _prominence(grey)
    return tuple(float(np.exp(prominence[band].max())) for band in bands)
