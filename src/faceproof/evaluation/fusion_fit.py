"""Fit the matcher's calibration (z-norms, fusion weight, threshold, cascade band) from pairs.

Procedure, in order, all on the calibration pairs:
1. z-normalise each recogniser's cosine by its impostor mean and sd;
2. choose the secondary recogniser's fusion weight (primary weight 1) from a fixed grid by the
   highest TAR at FMR 1e-3, ties to the lower EER;
3. z-normalise the fused mean by its own impostor distribution;
4. set the threshold on the fused score for the target FMR (evaluation.calibration);
5. set the cascade band: outside [threshold - low, threshold + high) the primary z-score alone
   must have agreed with the fused decision on every calibration pair with normal-size faces,
   plus a safety margin; and no impostor may be fast-accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from faceproof.evaluation.calibration import calibrate_threshold
from faceproof.evaluation.metrics import eer, tar_at_fmr
from faceproof.faces.matcher import MatcherCalibration, ScoreNormalisation

__all__ = ["PairScores", "cascade_scores", "fit_matcher_calibration"]

FloatArray = npt.NDArray[np.float64]
_WEIGHT_GRID = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
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


def _fused_raw(z: dict[str, FloatArray], weights: dict[str, float]) -> FloatArray:
    total = sum(weights.values())
    stacked = np.stack([weights[m] * z[m] for m in weights])
    return np.asarray(stacked.sum(axis=0) / total, dtype=np.float64)


def _z(norm: ScoreNormalisation, values: FloatArray) -> FloatArray:
    return np.asarray((values - norm.impostor_mean) / norm.impostor_std, dtype=np.float64)


def fit_matcher_calibration(
    scores: PairScores,
    *,
    primary: str,
    secondary: str | None,
    flip: bool,
    fmr_target: float,
    small_face_inter_eye_px: float,
    dataset: str,
    command: str,
) -> MatcherCalibration:
    imp = ~scores.genuine
    models = [primary] + ([secondary] if secondary else [])
    norms = {m: _norm(scores.cosines[m][imp]) for m in models}
    z = {m: _z(norms[m], scores.cosines[m]) for m in models}

    weights = {primary: 1.0}
    if secondary:
        best: tuple[float, float, float] | None = None
        for w in _WEIGHT_GRID:
            fused = _fused_raw(z, {primary: 1.0, secondary: w})
            key = (tar_at_fmr(fused[~imp], fused[imp], 1e-3), -eer(fused[~imp], fused[imp])[0], w)
            if best is None or key[:2] > best[:2]:
                best = key
        assert best is not None
        weights[secondary] = best[2]
    fused_raw = _fused_raw(z, weights)
    fusion_norm = _norm(fused_raw[imp])
    fused = _z(fusion_norm, fused_raw)
    decision = fused if secondary else z[primary]
    threshold_cal = calibrate_threshold(decision[~imp], decision[imp], fmr_target, dataset=dataset)
    threshold = threshold_cal.threshold

    band_low = band_high = 0.0
    if secondary:
        normal = scores.min_inter_eye_px >= small_face_inter_eye_px
        zp = z[primary]
        accepted = normal & (fused >= threshold)
        rejected = normal & (fused < threshold)
        if accepted.any():
            band_low = max(0.0, threshold - float(zp[accepted].min())) + _BAND_MARGIN
        widest_reject = float(zp[rejected].max()) - threshold if rejected.any() else 0.0
        widest_impostor = float(zp[imp].max()) - threshold
        band_high = max(0.0, widest_reject, widest_impostor) + _BAND_MARGIN

    return MatcherCalibration(
        primary=primary,
        secondary=secondary,
        flip=flip,
        norms=norms,
        weights=weights,
        fusion_norm=fusion_norm,
        threshold=threshold,
        fmr_target=fmr_target,
        band_low=band_low,
        band_high=band_high,
        small_face_inter_eye_px=small_face_inter_eye_px,
        dataset=dataset,
        n_genuine=int((~imp).sum()),
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
    zs = _z(cal.norms[cal.secondary], scores.cosines[cal.secondary])
    fused = _z(cal.fusion_norm, _fused_raw({cal.primary: zp, cal.secondary: zs}, cal.weights))
    second = (scores.min_inter_eye_px < cal.small_face_inter_eye_px) | (
        (zp >= cal.threshold - cal.band_low) & (zp < cal.threshold + cal.band_high)
    )
    return np.where(second, fused, zp), second.astype(np.float64)
