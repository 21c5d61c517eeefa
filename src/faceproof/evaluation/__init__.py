"""Biometric evaluation on score arrays: metrics, threshold calibration and DET plots.

Works on numbers only and imports no face model, so it is fast to import and to test.
Conventions (score direction, ties, FTE, empty input) are in :mod:`.metrics`.
"""

from __future__ import annotations

from faceproof.evaluation.calibration import (
    ThresholdCalibration,
    calibrate_threshold,
    gaussian_tail_threshold,
)
from faceproof.evaluation.metrics import (
    DEFAULT_FMR_TARGETS,
    EmptyScoresError,
    InvalidScoresError,
    VerificationReport,
    as_scores,
    det_curve,
    eer,
    fmr_fnmr,
    format_fmr,
    generalized_fmr_fnmr,
    generalized_tar_at_fmr,
    is_low_confidence,
    min_impostors_for_fmr,
    roc_auc,
    tar_at_fmr,
    threshold_at_fmr,
    verification_report,
)
from faceproof.evaluation.plots import curve_eer, plot_det

__all__ = [
    "DEFAULT_FMR_TARGETS",
    "EmptyScoresError",
    "InvalidScoresError",
    "ThresholdCalibration",
    "VerificationReport",
    "as_scores",
    "calibrate_threshold",
    "curve_eer",
    "det_curve",
    "eer",
    "fmr_fnmr",
    "format_fmr",
    "gaussian_tail_threshold",
    "generalized_fmr_fnmr",
    "generalized_tar_at_fmr",
    "is_low_confidence",
    "min_impostors_for_fmr",
    "plot_det",
    "roc_auc",
    "tar_at_fmr",
    "threshold_at_fmr",
    "verification_report",
]
