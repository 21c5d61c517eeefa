"""Fit the matcher's calibration (z-norms, fusion weights, threshold, cascade band) from pairs.

Procedure, in order, all on the calibration pairs:
1. z-normalise each recogniser's cosine by its impostor mean and sd;
2. choose the secondary recogniser's weights (primary weight 1) from a fixed grid: one weight
   for normal faces, one for small faces, and where the ramp between them sits (inter-eye px);
   the highest TAR at FMR 1e-3 wins, ties to the lower EER;
3. z-normalise the fused mean by its own impostor distribution;
4. set the threshold on the fused score for the target FMR (evaluation.calibration);
5. set the cascade band: outside [threshold - low, threshold + high) the primary z-score alone
   must have agreed with the fused decision on every calibration pair, plus a safety margin,
   and no impostor may be fast-accepted.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from faceproof.evaluation.calibration import calibrate_threshold
from faceproof.evaluation.metrics import eer, tar_at_fmr
from faceproof.faces.matcher import MatcherCalibration, ScoreNormalisation

__all__ = ["PairScores", "cascade_scores", "fit_matcher_calibration", "fused_scores"]

FloatArray = npt.NDArray[np.float64]
_LARGE_FACE_WEIGHTS = (0.25, 0.5, 0.75, 1.0)
_SMALL_FACE_WEIGHTS = (0.5, 1.0, 1.5, 2.0)
_RAMP_STARTS_PX = (20.0, 25.0, 30.0)
_RAMP_WIDTH_PX = 10.0
_BAND_MARGIN = 0.25  # z units beyond the widest disagreement seen


@dataclass(frozen=True, slots=True)
class PairScores:
    """Cosine per recogniser for each pair, the pair's label, and its smaller inter-eye distance."""

    cosines: dict[str, FloatArray]
    genuine: npt.NDArray[np.bool_]
    min_inter_eye_px: FloatArray

    def subset(self, mask: npt.NDArray[np.bool_]) -> PairScores:
        return PairScores(
            {m: c[mask] for m, c in self.cosines.items()},
            self.genuine[mask],
            self.min_inter_eye_px[mask],
        )


def _norm(impostor: FloatArray) -> ScoreNormalisation:
    return ScoreNormalisation(float(np.mean(impostor)), float(np.std(impostor, ddof=1)))


def _z(norm: ScoreNormalisation, values: FloatArray) -> FloatArray:
    return np.asarray((values - norm.impostor_mean) / norm.impostor_std, dtype=np.float64)


def _secondary_weight(
    ied: FloatArray, large: float, small: float, ramp: tuple[float, float]
) -> FloatArray:
    t = np.clip((ied - ramp[0]) / (ramp[1] - ramp[0]), 0.0, 1.0)
    return np.asarray(small + t * (large - small), dtype=np.float64)


def _fused_mean(zp: FloatArray, zs: FloatArray, w: FloatArray) -> FloatArray:
    return np.asarray((zp + w * zs) / (1.0 + w), dtype=np.float64)


def fused_scores(cal: MatcherCalibration, scores: PairScores) -> FloatArray:
    """The full fusion's score for every pair (what the cascade approximates)."""
    assert cal.secondary is not None
    zp = _z(cal.norms[cal.primary], scores.cosines[cal.primary])
    zs = _z(cal.norms[cal.secondary], scores.cosines[cal.secondary])
    w = _secondary_weight(
        scores.min_inter_eye_px,
        cal.weights[cal.secondary],
        cal.secondary_weight_small,
        cal.weight_ramp_px,
    )
    return _z(cal.fusion_norm, _fused_mean(zp, zs, w))


def fit_matcher_calibration(
    scores: PairScores,
    *,
    primary: str,
    secondary: str | None,
    flip: bool,
    fmr_target: float,
    dataset: str,
    command: str,
) -> MatcherCalibration:
    imp = ~scores.genuine
    gen = scores.genuine
    models = [primary] + ([secondary] if secondary else [])
    norms = {m: _norm(scores.cosines[m][imp]) for m in models}
    zp = _z(norms[primary], scores.cosines[primary])

    weights = {primary: 1.0}
    small_weight, ramp = 1.0, (0.0, 0.0)
    decision = zp
    fusion_norm = ScoreNormalisation(0.0, 1.0)
    if secondary:
        zs = _z(norms[secondary], scores.cosines[secondary])
        best: tuple[float, float] | None = None
        choice = (1.0, 1.0, (0.0, _RAMP_WIDTH_PX))
        for large, small, start in itertools.product(
            _LARGE_FACE_WEIGHTS, _SMALL_FACE_WEIGHTS, _RAMP_STARTS_PX
        ):
            span = (start, start + _RAMP_WIDTH_PX)
            fused = _fused_mean(
                zp, zs, _secondary_weight(scores.min_inter_eye_px, large, small, span)
            )
            key = (tar_at_fmr(fused[gen], fused[imp], 1e-3), -eer(fused[gen], fused[imp])[0])
            if best is None or key > best:
                best, choice = key, (large, small, span)
        weights[secondary], small_weight, ramp = choice
        raw = _fused_mean(
            zp,
            zs,
            _secondary_weight(scores.min_inter_eye_px, weights[secondary], small_weight, ramp),
        )
        fusion_norm = _norm(raw[imp])
        decision = _z(fusion_norm, raw)

    threshold_cal = calibrate_threshold(decision[gen], decision[imp], fmr_target, dataset=dataset)
    threshold = threshold_cal.threshold

    band_low = band_high = 0.0
    if secondary:
        accepted = decision >= threshold
        if accepted.any():
            band_low = max(0.0, threshold - float(zp[accepted].min())) + _BAND_MARGIN
        widest_reject = float(zp[~accepted].max()) - threshold if (~accepted).any() else 0.0
        widest_impostor = float(zp[imp].max()) - threshold
        band_high = max(0.0, widest_reject, widest_impostor) + _BAND_MARGIN

    return MatcherCalibration(
        primary=primary,
        secondary=secondary,
        flip=flip,
        norms=norms,
        weights=weights,
        secondary_weight_small=small_weight,
        weight_ramp_px=ramp,
        fusion_norm=fusion_norm,
        threshold=threshold,
        fmr_target=fmr_target,
        band_low=band_low,
        band_high=band_high,
        dataset=dataset,
        n_genuine=int(gen.sum()),
        n_impostor=int(imp.sum()),
        low_confidence=threshold_cal.low_confidence,
        note=threshold_cal.note,
        command=command,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def cascade_scores(cal: MatcherCalibration, scores: PairScores) -> tuple[FloatArray, FloatArray]:
    """The product's decision score per pair, and whether the second recogniser ran (0/1)."""
    zp = _z(cal.norms[cal.primary], scores.cosines[cal.primary])
    if cal.secondary is None:
        return zp, np.zeros_like(zp)
    second = (zp >= cal.threshold - cal.band_low) & (zp < cal.threshold + cal.band_high)
    return np.where(second, fused_scores(cal, scores), zp), second.astype(np.float64)
