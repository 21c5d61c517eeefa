"""Evaluate and calibrate the face matcher on an identity-labelled image set.

`run_face_evaluation` enrols every image once with every recogniser (in memory only), scores
all within-set pairs, and reports each single recogniser, the full fusion, and the product's
cascade (as calibrated) side by side, pooled and per set. `fit_calibration` turns the same pair
scores into a `MatcherCalibration` for a target FMR.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from faceproof.capture import load_image
from faceproof.comparison import FaceComparer
from faceproof.evaluation.datasets import (
    EnrolledSet,
    PairIndex,
    enrol,
    read_labels,
    within_set_pairs,
)
from faceproof.evaluation.fusion_fit import PairScores, cascade_scores, fit_matcher_calibration
from faceproof.evaluation.metrics import det_curve, verification_report
from faceproof.faces.matcher import MatcherCalibration

__all__ = ["FaceEvaluation", "fit_calibration", "run_face_evaluation", "score_labelled_set"]


@dataclass
class FaceEvaluation:
    labels: str
    n_images: int
    fte_codes: dict[str, str]
    reports: dict[str, dict[str, Any]]  # strategy -> {"all": report, set: report, ...}
    det: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]
    second_opinion_rate: float
    median_ms_per_image: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "n_images": self.n_images,
            "failures_to_enrol": self.fte_codes,
            "second_opinion_rate": self.second_opinion_rate,
            "median_ms_per_image": self.median_ms_per_image,
            "reports": self.reports,
        }


def score_labelled_set(
    comparer: FaceComparer,
    labels: str | Path,
    progress: Callable[[Iterable[int]], Iterable[int]] = lambda it: it,
) -> tuple[EnrolledSet, PairIndex, PairScores]:
    """Enrol every image with every recogniser and score all within-set pairs."""
    images = read_labels(labels)
    models = list(comparer.analyzer.embedders)
    timings: dict[str, list[float]] = {"detect+primary": [], "all": []}

    def embed_one(path: Path) -> tuple[dict[str, npt.NDArray[np.float32]], float]:
        start = time.perf_counter()
        template = comparer.template(load_image(path))
        timings["detect+primary"].append(time.perf_counter() - start)
        template = comparer.extend(template)
        timings["all"].append(time.perf_counter() - start)
        return dict(template.embeddings), template.observation.detection.inter_eye_distance

    enrolled = enrol(images, embed_one, models, progress)
    enrolled.seconds_per_image = timings
    pairs = within_set_pairs(images)
    usable = enrolled.enrolled[pairs.left] & enrolled.enrolled[pairs.right]
    scored = pairs.subset(usable)
    cosines = {
        m: np.einsum(
            "ij,ij->i",
            enrolled.embeddings[m][scored.left].astype(np.float64),
            enrolled.embeddings[m][scored.right].astype(np.float64),
        )
        for m in models
    }
    min_ied = np.minimum(enrolled.inter_eye_px[scored.left], enrolled.inter_eye_px[scored.right])
    return enrolled, pairs, PairScores(cosines, scored.genuine, min_ied)


def fit_calibration(
    comparer: FaceComparer, scores: PairScores, *, fmr_target: float, dataset: str, command: str
) -> MatcherCalibration:
    cal = comparer.calibration
    return fit_matcher_calibration(
        scores,
        primary=cal.primary,
        secondary=cal.secondary,
        flip=cal.flip,
        fmr_target=fmr_target,
        small_face_inter_eye_px=cal.small_face_inter_eye_px,
        dataset=dataset,
        command=command,
    )


def run_face_evaluation(
    comparer: FaceComparer,
    labels: str | Path,
    progress: Callable[[Iterable[int]], Iterable[int]] = lambda it: it,
) -> FaceEvaluation:
    enrolled, pairs, scores = score_labelled_set(comparer, labels, progress)
    cal = comparer.calibration
    usable = enrolled.enrolled[pairs.left] & enrolled.enrolled[pairs.right]
    n_fte_gen = int((pairs.genuine & ~usable).sum())
    n_fte_imp = int((~pairs.genuine & ~usable).sum())
    subsets = np.array([img.subset for img in enrolled.images])[pairs.left[usable]]

    strategies: dict[str, npt.NDArray[np.float64]] = {m: c for m, c in scores.cosines.items()}
    cascade, second = cascade_scores(cal, scores)
    if cal.secondary:
        strategies["fusion"] = _full_fusion(cal, scores)  # the cascade's upper bound
    strategies["product_cascade"] = cascade

    reports: dict[str, dict[str, Any]] = {}
    det = {}
    g = scores.genuine
    for name, s in strategies.items():
        per: dict[str, Any] = {
            "all": verification_report(
                s[g],
                s[~g],
                n_fte_genuine=n_fte_gen,
                n_fte_impostor=n_fte_imp,
                n_images=len(enrolled.images),
                n_fte_images=len(enrolled.fte_codes),
            ).to_dict()
        }
        for subset in np.unique(subsets):
            mask = subsets == subset
            if g[mask].any() and (~g[mask]).any():
                per[str(subset)] = verification_report(s[mask & g], s[mask & ~g]).to_dict()
        reports[name] = per
        fmr, fnmr, _ = det_curve(s[g], s[~g])
        det[name] = (fmr, fnmr)
    timings = enrolled.seconds_per_image
    return FaceEvaluation(
        labels=str(labels),
        n_images=len(enrolled.images),
        fte_codes={str(enrolled.images[i].path): c for i, c in enrolled.fte_codes.items()},
        reports=reports,
        det=det,
        second_opinion_rate=float(second.mean()) if second.size else 0.0,
        median_ms_per_image={k: float(np.median(v) * 1000) for k, v in timings.items() if v},
    )


def _full_fusion(cal: MatcherCalibration, scores: PairScores) -> npt.NDArray[np.float64]:
    assert cal.secondary is not None
    z = {
        m: (scores.cosines[m] - cal.norms[m].impostor_mean) / cal.norms[m].impostor_std
        for m in cal.models
    }
    raw = sum(cal.weights[m] * z[m] for m in cal.models) / sum(cal.weights[m] for m in cal.models)
    return np.asarray(cal.fusion_norm.z(raw), dtype=np.float64)  # type: ignore[arg-type]
