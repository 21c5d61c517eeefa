"""capture.spectrum's running median is scipy's median filter along one axis, exactly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import median_filter  # type: ignore[import-untyped]

from faceproof.capture.spectrum import MEDIAN, _running_median


@pytest.mark.parametrize("axis", [0, 1])
def test_running_median_equals_scipys_median_filter(axis: int) -> None:
    rng = np.random.default_rng(7)
    size = [1, 1]
    size[axis] = MEDIAN
    for _ in range(20):
        # Spectra have ties and flat runs too: rounding makes some.
        values = np.round(rng.normal(size=(71, 128)) * rng.uniform(0.1, 5), 1)
        expected = median_filter(values, size=tuple(size), mode="nearest")
        assert np.array_equal(_running_median(values, axis=axis), expected)
