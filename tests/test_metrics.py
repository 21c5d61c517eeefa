"""Tests for faceproof.evaluation: metrics, calibration and DET plots.

Golden numbers are worked out by hand in the comments. Conventions under test: accept when
score >= threshold; FMR = mean(impostor >= t); FNMR = mean(genuine < t).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faceproof.errors import ServiceError
from faceproof.evaluation import (
    EmptyScoresError,
    InvalidScoresError,
    ThresholdCalibration,
    calibrate_threshold,
    curve_eer,
    det_curve,
    eer,
    fmr_fnmr,
    format_fmr,
    gaussian_tail_threshold,
    generalized_fmr_fnmr,
    generalized_tar_at_fmr,
    is_low_confidence,
    min_impostors_for_fmr,
    plot_det,
    roc_auc,
    tar_at_fmr,
    threshold_at_fmr,
    verification_report,
)
from faceproof.reasons import ReasonCode

# The golden experiment used throughout.
GEN = np.array([0.9, 0.8, 0.7, 0.4])
IMP = np.array([0.1, 0.2, 0.3, 0.5, 0.6])
FIXED_TIME = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def above(x: float) -> float:
    return float(np.nextafter(x, np.inf))


def below(x: float) -> float:
    return float(np.nextafter(x, -np.inf))


# --------------------------------------------------------------------------- golden cases


def test_fmr_fnmr_golden() -> None:
    # t = 0.5: impostors >= 0.5 are {0.5, 0.6} -> FMR 2/5 = 0.4;
    #          genuines  <  0.5 are {0.4}      -> FNMR 1/4 = 0.25.
    assert fmr_fnmr(GEN, IMP, 0.5) == (0.4, 0.25)
    # t = 0.55: impostors >= 0.55 are {0.6} -> 1/5 = 0.2; genuine {0.4} below -> 0.25.
    assert fmr_fnmr(GEN, IMP, 0.55) == (0.2, 0.25)
    # t = 0.95 rejects everything: FMR 0, FNMR 4/4.
    assert fmr_fnmr(GEN, IMP, 0.95) == (0.0, 1.0)
    # t = 0.0 accepts everything: FMR 5/5, FNMR 0.
    assert fmr_fnmr(GEN, IMP, 0.0) == (1.0, 0.0)


def test_ties_at_threshold_are_accepted() -> None:
    # t = 0.6 equals an impostor score: 0.6 >= 0.6 is accepted -> FMR 1/5 = 0.2.
    assert fmr_fnmr(GEN, IMP, 0.6)[0] == 0.2
    # t = 0.7 equals a genuine score: 0.7 is accepted, only 0.4 rejected -> FNMR 1/4.
    assert fmr_fnmr(GEN, IMP, 0.7)[1] == 0.25
    # Just above 0.7 the genuine 0.7 flips to rejected -> FNMR 2/4.
    assert fmr_fnmr(GEN, IMP, above(0.7))[1] == 0.5


def test_threshold_at_fmr_golden() -> None:
    # n = 5, target 0.2: k = floor(0.2 * 5) = 1 false match allowed. Impostors descending are
    # [0.6, 0.5, 0.3, 0.2, 0.1]; s[1] = 0.5, so t = nextafter(0.5): only 0.6 is accepted.
    t = threshold_at_fmr(IMP, 0.2)
    assert t == above(0.5)
    assert fmr_fnmr(GEN, IMP, t)[0] == 0.2
    # Minimal: at t = 0.5 itself both 0.5 and 0.6 are accepted -> FMR 0.4 > 0.2.
    assert fmr_fnmr(GEN, IMP, below(t))[0] == 0.4
    # TAR there: genuines >= 0.5+ are {0.9, 0.8, 0.7} -> 3/4.
    assert tar_at_fmr(GEN, IMP, 0.2) == 0.75
    # target 0.6: k = 3, s[3] = 0.2 -> t = nextafter(0.2); accepts {0.6, 0.5, 0.3} = 3/5.
    assert threshold_at_fmr(IMP, 0.6) == above(0.2)


def test_threshold_at_fmr_below_one_false_match() -> None:
    # target * n = 0.1 * 5 = 0.5 < 1 -> k = 0: just above the max impostor score 0.6.
    assert threshold_at_fmr(IMP, 0.1) == above(0.6)
    assert threshold_at_fmr(IMP, 0.0) == above(0.6)
    assert fmr_fnmr(GEN, IMP, threshold_at_fmr(IMP, 0.1))[0] == 0.0


def test_threshold_at_fmr_target_one_returns_min() -> None:
    # k = 5 = n: every threshold qualifies; the minimum impostor score is returned (FMR 1).
    assert threshold_at_fmr(IMP, 1.0) == 0.1


def test_threshold_at_fmr_with_ties() -> None:
    imp = np.array([0.3, 0.5, 0.5, 0.5, 0.1])
    # target 0.2: k = 1; descending [0.5, 0.5, 0.5, 0.3, 0.1], s[1] = 0.5 -> t just above 0.5.
    # The three tied 0.5s cannot be split, so the achieved FMR is 0 < 0.2.
    t = threshold_at_fmr(imp, 0.2)
    assert t == above(0.5)
    assert fmr_fnmr(GEN, imp, t)[0] == 0.0
    # target 0.6: k = 3, s[3] = 0.3 -> t just above 0.3, accepting the three 0.5s: 3/5 = 0.6.
    t = threshold_at_fmr(imp, 0.6)
    assert t == above(0.3)
    assert fmr_fnmr(GEN, imp, t)[0] == 0.6


def test_threshold_at_fmr_float_rounding_of_target_times_n() -> None:
    # 0.29 * 100 = 28.999999999999996 in floats; 29 false matches still give 29/100 <= 0.29.
    imp = np.arange(100, dtype=np.float64)
    t = threshold_at_fmr(imp, 0.29)
    assert fmr_fnmr([0.0], imp, t)[0] == 0.29
    assert t == above(70.0)  # accepts 71..99 = 29 scores


def test_eer_golden() -> None:
    # Candidate thresholds and (FMR, FNMR):
    #   0.1 (1.0, 0)   0.2 (0.8, 0)    0.3 (0.6, 0)    0.4 (0.4, 0)   0.5 (0.4, 0.25)
    #   0.6 (0.2, 0.25) 0.7 (0, 0.25)  0.8 (0, 0.5)    0.9 (0, 0.75)  0.9+ (0, 1)
    # |FMR - FNMR| is smallest at 0.6 (0.05); EER = (0.2 + 0.25) / 2 = 0.225.
    value, threshold = eer(GEN, IMP)
    assert value == pytest.approx(0.225)
    assert threshold == 0.6


def test_eer_perfect_separation() -> None:
    # gen [0.8, 0.9], imp [0.1, 0.2]. Candidates (FMR, FNMR): 0.1 (1, 0), 0.2 (0.5, 0),
    # 0.8 (0, 0), 0.9 (0, 0.5), 0.9+ (0, 1). Only t = 0.8 has a zero gap -> EER 0 there.
    value, threshold = eer([0.8, 0.9], [0.1, 0.2])
    assert value == 0.0
    assert threshold == 0.8


def test_det_curve_golden() -> None:
    fmr, fnmr, thr = det_curve(GEN, IMP)
    expected_thr = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, above(0.9)]
    np.testing.assert_array_equal(thr, expected_thr)
    np.testing.assert_allclose(fmr, [1.0, 0.8, 0.6, 0.4, 0.4, 0.2, 0, 0, 0, 0])
    np.testing.assert_allclose(fnmr, [0, 0, 0, 0, 0.25, 0.25, 0.25, 0.5, 0.75, 1.0])
    assert curve_eer(fmr, fnmr) == pytest.approx(0.225)


def test_auc_golden() -> None:
    # 4 x 5 = 20 pairs. 0.9, 0.8, 0.7 beat all 5 impostors (15); 0.4 beats 0.1, 0.2, 0.3 (3).
    # AUC = 18 / 20 = 0.9.
    assert roc_auc(GEN, IMP) == 0.9


def test_auc_ties_count_half() -> None:
    # gen [0.5], imp [0.5, 0.4]: one tie (1/2) and one win (1) -> 1.5 / 2 = 0.75.
    assert roc_auc([0.5], [0.5, 0.4]) == 0.75
    # Identical samples: every pair is mirrored or tied -> exactly 0.5.
    x = np.array([0.1, 0.3, 0.3, 0.7])
    assert roc_auc(x, x) == 0.5


def test_auc_separated_reversed_and_random() -> None:
    assert roc_auc([0.8, 0.9], [0.1, 0.2]) == 1.0
    assert roc_auc([0.1, 0.2], [0.8, 0.9]) == 0.0
    rng = np.random.default_rng(1234)
    same = roc_auc(rng.normal(size=4000), rng.normal(size=4000))
    assert abs(same - 0.5) < 0.03


def test_generalized_rates_golden() -> None:
    # 1 genuine FTE and 5 impostor FTE pairs, t = 0.5:
    #   GFMR  = 2 / (5 + 5) = 0.2
    #   GFNMR = (1 + 1) / (4 + 1) = 0.4
    assert generalized_fmr_fnmr(GEN, IMP, 0.5, n_fte_genuine=1, n_fte_impostor=5) == (0.2, 0.4)
    # Threshold for FMR 0.2 is the plain one (just above 0.5): 3 genuines accepted of 4 + 1.
    assert generalized_tar_at_fmr(GEN, IMP, 0.2, n_fte_genuine=1) == 0.6
    assert generalized_tar_at_fmr(GEN, IMP, 0.2) == tar_at_fmr(GEN, IMP, 0.2)


# --------------------------------------------------------------------------- report


def test_verification_report_golden() -> None:
    report = verification_report(
        GEN, IMP, n_fte_genuine=1, n_fte_impostor=2, n_images=10, n_fte_images=2
    )
    assert (report.n_genuine, report.n_impostor) == (4, 5)
    assert (report.n_fte_genuine, report.n_fte_impostor) == (1, 2)
    assert report.fte_rate == 0.2  # 2 of 10 images
    assert report.auc == 0.9
    assert report.eer == pytest.approx(0.225)
    assert report.eer_threshold == 0.6
    # 5 impostors: every default target gives k = 0 -> just above 0.6; TAR 3/4, GTAR 3/5.
    for target in (1e-2, 1e-3, 1e-4):
        assert report.thresholds_at_fmr[target] == above(0.6)
        assert report.tar_at_fmr[target] == 0.75
        assert report.gtar_at_fmr[target] == 0.6
    assert report.low_confidence_fmrs == [1e-2, 1e-3, 1e-4]

    data = json.loads(json.dumps(report.to_dict()))
    assert data["tar_at_fmr"] == {"1e-2": 0.75, "1e-3": 0.75, "1e-4": 0.75}
    assert data["low_confidence_fmrs"] == ["1e-2", "1e-3", "1e-4"]
    assert float("1e-4") == 1e-4  # the labels parse back to the same floats


def test_report_without_image_counts_and_bad_counts() -> None:
    assert verification_report(GEN, IMP).fte_rate is None
    with pytest.raises(ValueError, match="n_fte_images"):
        verification_report(GEN, IMP, n_images=1, n_fte_images=2)
    with pytest.raises(ValueError, match="n_fte_genuine"):
        verification_report(GEN, IMP, n_fte_genuine=-1)


def test_rule_of_three_boundary() -> None:
    # 3 / 1e-2 = 300: 300 impostors support FMR 1e-2, 299 do not.
    assert min_impostors_for_fmr(1e-2) == 300
    assert min_impostors_for_fmr(1e-4) == 30000
    assert not is_low_confidence(300, 1e-2)
    assert is_low_confidence(299, 1e-2)
    assert not is_low_confidence(30000, 1e-4)
    assert is_low_confidence(29999, 1e-4)
    rng = np.random.default_rng(0)
    report = verification_report(rng.normal(1, 1, 50), rng.normal(0, 1, 300))
    assert report.low_confidence_fmrs == [1e-3, 1e-4]


def test_format_fmr() -> None:
    assert format_fmr(1e-4) == "1e-4"
    assert format_fmr(0.025) == "2.5e-2"
    assert format_fmr(0.0) == "0"


# --------------------------------------------------------------------------- bad input


def _all_calls() -> list[Callable[[Any, Any], object]]:
    return [
        lambda g, i: fmr_fnmr(g, i, 0.5),
        lambda g, i: generalized_fmr_fnmr(g, i, 0.5, n_fte_genuine=1),
        lambda g, i: tar_at_fmr(g, i, 0.1),
        lambda g, i: generalized_tar_at_fmr(g, i, 0.1, n_fte_genuine=1),
        eer,
        roc_auc,
        det_curve,
        verification_report,
        calibrate_threshold,
    ]


@pytest.mark.parametrize("call", _all_calls())
@pytest.mark.parametrize("which", ["genuine", "impostor"])
def test_empty_scores_raise(call: Callable[[Any, Any], object], which: str) -> None:
    args = ([], IMP) if which == "genuine" else (GEN, [])
    with pytest.raises(EmptyScoresError, match=which):
        call(*args)
    assert issubclass(EmptyScoresError, ValueError)


def test_threshold_at_fmr_empty_raises() -> None:
    with pytest.raises(EmptyScoresError):
        threshold_at_fmr(np.array([]), 0.1)


@pytest.mark.parametrize("call", _all_calls())
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("which", ["genuine", "impostor"])
def test_non_finite_scores_rejected(
    call: Callable[[Any, Any], object], bad: float, which: str
) -> None:
    g, i = [*GEN, bad], list(IMP)
    if which == "impostor":
        g, i = list(GEN), [*IMP, bad]
    with pytest.raises(InvalidScoresError, match=which):
        call(g, i)


def test_other_invalid_inputs() -> None:
    with pytest.raises(InvalidScoresError):
        fmr_fnmr(GEN, IMP, math.nan)
    with pytest.raises(InvalidScoresError, match="1-D"):
        roc_auc(np.ones((2, 2)), IMP)
    with pytest.raises(InvalidScoresError, match="numeric"):
        roc_auc(["a", "b"], IMP)
    for target in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="target FMR"):
            threshold_at_fmr(IMP, target)


# --------------------------------------------------------------------------- properties

# Mix continuous values with a coarse grid so ties are common.
score = st.one_of(
    st.floats(min_value=-1.0, max_value=1.0, allow_nan=False),
    st.integers(min_value=-4, max_value=4).map(lambda k: k / 4),
)
scores = st.lists(score, min_size=1, max_size=40).map(lambda xs: np.array(xs, dtype=np.float64))


@settings(deadline=None)
@given(scores, scores, score, score)
def test_fmr_fnmr_monotonic(gen: np.ndarray, imp: np.ndarray, a: float, b: float) -> None:
    lo, hi = min(a, b), max(a, b)
    fmr_lo, fnmr_lo = fmr_fnmr(gen, imp, lo)
    fmr_hi, fnmr_hi = fmr_fnmr(gen, imp, hi)
    assert fmr_hi <= fmr_lo
    assert fnmr_hi >= fnmr_lo


@settings(deadline=None)
@given(scores, st.floats(min_value=0.0, max_value=1.0))
def test_threshold_at_fmr_meets_target_and_is_minimal(imp: np.ndarray, target: float) -> None:
    t = threshold_at_fmr(imp, target)
    assert fmr_fnmr([0.0], imp, t)[0] <= target
    if t > imp.min():
        # Any smaller threshold admits one more tie group and breaks the target.
        assert fmr_fnmr([0.0], imp, below(t))[0] > target


@settings(deadline=None)
@given(scores, scores)
def test_auc_matches_bruteforce(gen: np.ndarray, imp: np.ndarray) -> None:
    wins = sum(1.0 if g > i else 0.5 if g == i else 0.0 for g in gen for i in imp)
    assert roc_auc(gen, imp) == pytest.approx(wins / (gen.size * imp.size))


@settings(deadline=None)
@given(scores, scores, st.floats(min_value=0.0, max_value=1.0), st.integers(1, 50))
def test_generalized_tar_never_exceeds_plain(
    gen: np.ndarray, imp: np.ndarray, target: float, n_fte: int
) -> None:
    plain = tar_at_fmr(gen, imp, target)
    general = generalized_tar_at_fmr(gen, imp, target, n_fte_genuine=n_fte)
    assert general <= plain
    if plain > 0:
        assert general < plain
    report = verification_report(gen, imp, n_fte_genuine=n_fte, fmr_targets=(target,))
    assert report.gtar_at_fmr[target] <= report.tar_at_fmr[target]


@settings(deadline=None)
@given(scores, scores)
def test_det_curve_and_eer_consistent(gen: np.ndarray, imp: np.ndarray) -> None:
    fmr, fnmr, thr = det_curve(gen, imp)
    assert np.all(np.diff(thr) > 0)
    assert np.all(np.diff(fmr) <= 0)
    assert np.all(np.diff(fnmr) >= 0)
    assert (fmr[0], fnmr[0], fmr[-1], fnmr[-1]) == (1.0, 0.0, 0.0, 1.0)
    value, t = eer(gen, imp)
    assert t in thr
    at_t = fmr_fnmr(gen, imp, t)
    assert value == pytest.approx(sum(at_t) / 2)
    assert abs(at_t[0] - at_t[1]) <= np.min(np.abs(fmr - fnmr)) + 1e-12


# --------------------------------------------------------------------------- calibration


def test_calibration_enough_impostors() -> None:
    rng = np.random.default_rng(7)
    gen, imp = rng.normal(0.6, 0.1, 200), rng.normal(0.0, 0.1, 400)
    cal = calibrate_threshold(gen, imp, target_fmr=1e-2, dataset="synthetic", created_at=FIXED_TIME)
    # 400 >= 3 / 1e-2 = 300: the empirical threshold stands alone.
    assert not cal.low_confidence
    assert cal.method == "empirical"
    assert cal.threshold == threshold_at_fmr(imp, 1e-2)
    assert cal.tail_threshold is None
    assert cal.achieved_fmr <= 1e-2
    assert cal.achieved_fmr == fmr_fnmr(gen, imp, cal.threshold)[0]
    assert cal.fnmr_at_threshold == fmr_fnmr(gen, imp, cal.threshold)[1]
    assert (cal.n_impostor, cal.n_genuine, cal.dataset) == (400, 200, "synthetic")
    assert cal.created_at == "2025-01-02T03:04:05+00:00"
    assert "provisional" not in cal.note
    assert ThresholdCalibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal


def test_calibration_too_few_impostors_uses_tail() -> None:
    rng = np.random.default_rng(11)
    gen, imp = rng.normal(0.6, 0.1, 500), rng.normal(0.0, 0.1, 3301)
    cal = calibrate_threshold(gen, imp, target_fmr=1e-4, dataset="synthetic")
    # 3301 < 3 / 1e-4 = 30000: low confidence. The Gaussian quantile mean + 3.72 sd lies
    # above the largest of 3301 normal draws (about 3.4 sd), so the tail sets the threshold.
    assert cal.low_confidence
    empirical = threshold_at_fmr(imp, 1e-4)
    tail = gaussian_tail_threshold(imp, 1e-4)
    assert tail is not None
    assert cal.method == "gaussian_tail"
    assert cal.threshold == tail == max(tail, empirical)
    assert cal.empirical_threshold == empirical
    assert cal.achieved_fmr == 0.0
    assert cal.note == (
        "Only 3301 impostor pairs: fewer than 3/FMR = 30000, so the threshold at FMR 1e-4 is "
        "extrapolated from the tail (Gaussian fit) and provisional."
    )
    assert ThresholdCalibration.from_dict(cal.to_dict()) == cal


def test_calibration_too_few_impostors_empirical_wins() -> None:
    # One far outlier: the max impostor (0.9) is above mean + 3.09 sd of this sample, so the
    # empirical threshold (just above 0.9) is the stricter one and is kept.
    imp = np.array([0.0] * 20 + [0.9])
    cal = calibrate_threshold([0.95, 0.5], imp, target_fmr=1e-3)
    assert cal.low_confidence
    assert cal.method == "empirical"
    assert cal.threshold == above(0.9)
    assert cal.tail_threshold is not None
    assert cal.tail_threshold < cal.threshold
    assert "provisional" in cal.note
    assert cal.fnmr_at_threshold == 0.5


def test_calibration_single_impostor_has_no_tail() -> None:
    cal = calibrate_threshold([0.9], [0.2], target_fmr=1e-2)
    assert cal.low_confidence
    assert cal.tail_threshold is None
    assert cal.threshold == above(0.2)
    assert "too few to fit a tail" in cal.note


def test_calibration_rejects_bad_target() -> None:
    with pytest.raises(ValueError, match="target FMR"):
        calibrate_threshold(GEN, IMP, target_fmr=0.0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"threshold": "high"}, "threshold"),
        ({"threshold": math.nan}, "threshold"),
        ({"n_impostor": -1}, "n_impostor"),
        ({"low_confidence": False}, "low_confidence"),  # 5 impostors cannot support 1e-2
        ({"target_fmr": 2.0}, "target_fmr"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"method": "guess"}, "method"),
    ],
)
def test_calibration_from_dict_rejects_bad_data(change: dict[str, Any], field: str) -> None:
    data = calibrate_threshold(GEN, IMP, target_fmr=1e-2).to_dict() | change
    with pytest.raises(ServiceError) as info:
        ThresholdCalibration.from_dict(data)
    assert info.value.code is ReasonCode.CALIBRATION_INVALID
    assert info.value.context["field"] == field


def test_calibration_from_dict_missing_field() -> None:
    data = calibrate_threshold(GEN, IMP, target_fmr=1e-2).to_dict()
    del data["threshold"]
    with pytest.raises(ServiceError, match="missing field 'threshold'"):
        ThresholdCalibration.from_dict(data)


# --------------------------------------------------------------------------- plots and imports


def test_plot_det_writes_png(tmp_path: Any) -> None:
    rng = np.random.default_rng(3)
    curves = {}
    for name, shift in (("model A", 3.0), ("model B", 2.0)):
        fmr, fnmr, _ = det_curve(rng.normal(shift, 1, 2000), rng.normal(0, 1, 5000))
        curves[name] = (fmr, fnmr)
    out = plot_det(curves, tmp_path / "det.png", title="Synthetic DET")
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 1000


def test_plot_det_needs_curves(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="no curves"):
        plot_det({}, tmp_path / "det.png", "empty")


def test_evaluation_imports_no_models_or_matplotlib() -> None:
    code = (
        "import sys, faceproof.evaluation\n"
        "heavy = {'matplotlib', 'cv2', 'onnxruntime', 'dlib', 'PIL', 'scipy'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
