"""Calibrate the match threshold for a target FMR from genuine and impostor scores.

Score conventions are those of :mod:`faceproof.evaluation.metrics` (higher = more alike,
accept when ``score >= threshold``).

Two regimes, decided by the rule of 3 (``n_impostor >= 3 / target_fmr``):

* **Enough impostors.** The threshold is the empirical one,
  ``metrics.threshold_at_fmr(impostor, target_fmr)``; ``method = "empirical"``.
* **Too few impostors (low confidence).** The empirical threshold can only sit just above the
  largest impostor score, which says nothing about where the 1-in-``1/FMR`` tail lies. We also
  fit a Gaussian to the impostor scores and take its upper quantile,
  ``mean + z(1 - target_fmr) * std`` (sample std, ddof=1, ``z`` from
  ``statistics.NormalDist().inv_cdf``), and use the *larger* of the two thresholds, so the
  tail model can only make the threshold stricter, never looser than what the data show;
  ``method = "gaussian_tail"`` when the tail estimate wins, else ``"empirical"``. The result is
  flagged ``low_confidence`` and ``note`` says it is provisional. Real impostor tails are often
  heavier than Gaussian, so this is a floor for a stricter threshold, not a guarantee.
  With fewer than 2 impostors no std exists and only the empirical threshold is used.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from faceproof.errors import ServiceError
from faceproof.evaluation.metrics import (
    as_scores,
    format_fmr,
    is_low_confidence,
    min_impostors_for_fmr,
    threshold_at_fmr,
)
from faceproof.reasons import ReasonCode

__all__ = ["ThresholdCalibration", "calibrate_threshold", "gaussian_tail_threshold"]

_METHODS = ("empirical", "gaussian_tail")


@dataclass(frozen=True)
class ThresholdCalibration:
    """A calibrated threshold and the evidence behind it (safe to store as JSON)."""

    target_fmr: float
    threshold: float
    n_impostor: int
    n_genuine: int
    achieved_fmr: float  # FMR on the calibration impostors at `threshold`
    fnmr_at_threshold: float  # FNMR on the calibration genuines at `threshold`
    low_confidence: bool  # n_impostor < 3 / target_fmr
    dataset: str
    created_at: str  # ISO 8601, UTC
    note: str
    method: str = "empirical"  # "empirical" or "gaussian_tail": which estimate set threshold
    empirical_threshold: float | None = None  # metrics.threshold_at_fmr on the impostors
    tail_threshold: float | None = None  # Gaussian-tail estimate; only in the low regime

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThresholdCalibration:
        """Rebuild from `to_dict` output; raises ServiceError(CALIBRATION_INVALID) if bad."""
        if not isinstance(data, dict):
            raise _invalid("calibration is not a JSON object")
        try:
            cal = cls(
                target_fmr=_float(data, "target_fmr"),
                threshold=_float(data, "threshold"),
                n_impostor=_int(data, "n_impostor"),
                n_genuine=_int(data, "n_genuine"),
                achieved_fmr=_float(data, "achieved_fmr"),
                fnmr_at_threshold=_float(data, "fnmr_at_threshold"),
                low_confidence=_bool(data, "low_confidence"),
                dataset=_str(data, "dataset"),
                created_at=_str(data, "created_at"),
                note=_str(data, "note"),
                method=_str(data, "method", "empirical"),
                empirical_threshold=_opt_float(data, "empirical_threshold"),
                tail_threshold=_opt_float(data, "tail_threshold"),
            )
        except KeyError as exc:
            raise _invalid(f"missing field {exc.args[0]!r}", field=exc.args[0]) from None
        cal._check()
        return cal

    def _check(self) -> None:
        if not 0.0 < self.target_fmr < 1.0:
            raise _invalid("target_fmr must be in (0, 1)", field="target_fmr")
        for name in ("achieved_fmr", "fnmr_at_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise _invalid(f"{name} must be in [0, 1]", field=name)
        if self.method not in _METHODS:
            raise _invalid(f"method must be one of {_METHODS}", field="method")
        # A file must not claim more confidence than its impostor count supports.
        if self.low_confidence != is_low_confidence(self.n_impostor, self.target_fmr):
            raise _invalid(
                "low_confidence disagrees with n_impostor and the rule of 3",
                field="low_confidence",
            )
        try:
            datetime.fromisoformat(self.created_at)
        except ValueError:
            raise _invalid("created_at is not an ISO 8601 timestamp", field="created_at") from None


def _invalid(detail: str, **context: Any) -> ServiceError:
    # Calibration files are server configuration: a bad one is our fault (503), not the caller's.
    return ServiceError(ReasonCode.CALIBRATION_INVALID, detail, **context)


def _float(data: dict[str, Any], key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f"{key} must be a finite number", field=key)
    return float(value)


def _opt_float(data: dict[str, Any], key: str) -> float | None:
    return None if data.get(key) is None else _float(data, key)


def _int(data: dict[str, Any], key: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid(f"{key} must be a non-negative integer", field=key)
    return value


def _bool(data: dict[str, Any], key: str) -> bool:
    value = data[key]
    if not isinstance(value, bool):
        raise _invalid(f"{key} must be true or false", field=key)
    return value


def _str(data: dict[str, Any], key: str, default: str | None = None) -> str:
    value = data[key] if default is None else data.get(key, default)
    if not isinstance(value, str):
        raise _invalid(f"{key} must be a string", field=key)
    return value


def gaussian_tail_threshold(impostor: npt.ArrayLike, target_fmr: float) -> float | None:
    """mean + z(1 - target_fmr) * std of the impostor scores; None with fewer than 2 scores."""
    imp = as_scores(impostor, "impostor")
    if not 0.0 < target_fmr < 1.0:
        raise ValueError(f"target FMR must be in (0, 1), got {target_fmr!r}")
    if imp.size < 2:
        return None
    z = NormalDist().inv_cdf(1.0 - target_fmr)
    return float(np.mean(imp) + z * np.std(imp, ddof=1))


def calibrate_threshold(
    genuine: npt.ArrayLike,
    impostor: npt.ArrayLike,
    target_fmr: float = 1e-4,
    dataset: str = "",
    *,
    created_at: datetime | None = None,
) -> ThresholdCalibration:
    """Threshold for `target_fmr`; empirical, or max(empirical, Gaussian tail) if too few impostors.

    `created_at` defaults to now (UTC); pass it for reproducible output.
    """
    gen = as_scores(genuine, "genuine")
    imp = as_scores(impostor, "impostor")
    if not 0.0 < target_fmr < 1.0:
        raise ValueError(f"target FMR must be in (0, 1), got {target_fmr!r}")

    empirical = threshold_at_fmr(imp, target_fmr)
    low = is_low_confidence(imp.size, target_fmr)
    tail = gaussian_tail_threshold(imp, target_fmr) if low else None
    if tail is not None and tail > empirical:
        threshold, method = tail, "gaussian_tail"
    else:
        threshold, method = empirical, "empirical"

    label = format_fmr(target_fmr)
    needed = min_impostors_for_fmr(target_fmr)
    if not low:
        note = (
            f"{imp.size} impostor pairs meet the rule of 3 (at least {needed}) for FMR {label}; "
            "the threshold is the empirical one."
        )
    elif tail is None:
        note = (
            f"Only {imp.size} impostor pairs: fewer than 3/FMR = {needed}, and too few to fit "
            f"a tail, so the threshold at FMR {label} is just above the largest impostor score "
            "and provisional."
        )
    else:
        source = (
            "extrapolated from the tail (Gaussian fit)"
            if method == "gaussian_tail"
            else "the empirical one (the Gaussian tail estimate was lower)"
        )
        note = (
            f"Only {imp.size} impostor pairs: fewer than 3/FMR = {needed}, so the threshold at "
            f"FMR {label} is {source} and provisional."
        )

    when = (created_at or datetime.now(UTC)).isoformat(timespec="seconds")
    return ThresholdCalibration(
        target_fmr=float(target_fmr),
        threshold=threshold,
        n_impostor=int(imp.size),
        n_genuine=int(gen.size),
        achieved_fmr=float(np.count_nonzero(imp >= threshold)) / imp.size,
        fnmr_at_threshold=float(np.count_nonzero(gen < threshold)) / gen.size,
        low_confidence=low,
        dataset=dataset,
        created_at=when,
        note=note,
        method=method,
        empirical_threshold=empirical,
        tail_threshold=tail,
    )
