"""Evaluate and calibrate the face matcher on an identity-labelled image set.

`run_face_evaluation` enrols every image once with every recogniser (in memory only), scores
all within-set pairs, and reports each single recogniser, the full fusion, and the product's
cascade (as calibrated) side by side, pooled and per set. `fit_calibration` turns the same pair
scores into a `MatcherCalibration` for a target FMR.
"""

from __future__ import annotations

import time
import zlib
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
from faceproof.evaluation.fusion_fit import (
    PairScores,
    cascade_scores,
    fit_matcher_calibration,
    fused_scores,
)
from faceproof.evaluation.metrics import det_curve, verification_report
from faceproof.faces.matcher import MatcherCalibration

__all__ = [
    "FaceEvaluation",
    "cross_validate",
    "fit_calibration",
    "run_face_evaluation",
    "score_labelled_set",
]


@dataclass
class FaceEvaluation:
    labels: str
    n_images: int
    fte_codes: dict[str, str]
    reports: dict[str, dict[str, Any]]  # strategy -> {"all": report, set: report, ...}
    det: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]
    second_opinion_rate: float
    median_ms_per_image: dict[str, float]
    cross_validation: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "n_images": self.n_images,
            "failures_to_enrol": self.fte_codes,
            "second_opinion_rate": self.second_opinion_rate,
            "median_ms_per_image": self.median_ms_per_image,
            "reports": self.reports,
            "cross_validation": self.cross_validation,
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
        dataset=dataset,
        command=command,
    )


def run_face_evaluation(
    comparer: FaceComparer,
    labels: str | Path,
    progress: Callable[[Iterable[int]], Iterable[int]] = lambda it: it,
    *,
    folds: int = 2,
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
        strategies["fusion"] = fused_scores(cal, scores)  # the cascade's upper bound
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
    names = np.array([img.identity for img in enrolled.images])
    identities = (names[pairs.left[usable]], names[pairs.right[usable]])
    cv = cross_validate(comparer, scores, identities, folds=folds) if folds > 1 else {}
    return FaceEvaluation(
        labels=str(labels),
        n_images=len(enrolled.images),
        fte_codes={str(enrolled.images[i].path): c for i, c in enrolled.fte_codes.items()},
        reports=reports,
        det=det,
        second_opinion_rate=float(second.mean()) if second.size else 0.0,
        median_ms_per_image={k: float(np.median(v) * 1000) for k, v in timings.items() if v},
        cross_validation=cv,
    )


def _fold_of(identity: str, folds: int) -> int:
    # A stable hash (not Python's salted hash) so folds are the same on every run.
    return zlib.crc32(identity.encode("utf-8")) % folds


def cross_validate(
    comparer: FaceComparer,
    scores: PairScores,
    identities: tuple[npt.NDArray[np.str_], npt.NDArray[np.str_]],
    *,
    folds: int,
) -> dict[str, Any]:
    """K-fold cross-validation by identity: calibrate on the other folds, test on this one.

    `identities` holds the identity of each scored pair's left and right image. A pair belongs
    to a fold when both its identities do; impostor pairs that straddle two folds are left out
    of both sides, so no test identity is ever seen in calibration. The numbers are the honest
    estimate of how the shipped calibration behaves on unseen people, pooled over folds.
    """
    left, right = identities
    fold_of = {i: _fold_of(str(i), folds) for i in np.unique(np.concatenate([left, right]))}
    left_fold = np.array([fold_of[i] for i in left])
    right_fold = np.array([fold_of[i] for i in right])
    same_fold = left_fold == right_fold
    pooled: dict[str, list[npt.NDArray[np.float64]]] = {"gen": [], "imp": []}
    errors = {"false_match": 0, "false_non_match": 0, "n_genuine": 0, "n_impostor": 0}
    second_rate = []
    for k in range(folds):
        test = same_fold & (left_fold == k)
        train = same_fold & (left_fold != k)
        cal = fit_calibration(
            comparer,
            scores.subset(train),
            fmr_target=comparer.calibration.fmr_target,
            dataset=f"fold {k} complement",
            command="",
        )
        held_out = scores.subset(test)
        decision, second = cascade_scores(cal, held_out)
        gen, imp = held_out.genuine, ~held_out.genuine
        pooled["gen"].append(decision[gen])
        pooled["imp"].append(decision[imp])
        errors["false_match"] += int((decision[imp] >= cal.threshold).sum())
        errors["false_non_match"] += int((decision[gen] < cal.threshold).sum())
        errors["n_genuine"] += int(gen.sum())
        errors["n_impostor"] += int(imp.sum())
        second_rate.append(float(second.mean()))
    gen_all, imp_all = np.concatenate(pooled["gen"]), np.concatenate(pooled["imp"])
    return {
        "folds": folds,
        "split": "by identity (crc32 of the identity label)",
        "operating_point": {
            "fmr": errors["false_match"] / max(1, errors["n_impostor"]),
            "fnmr": errors["false_non_match"] / max(1, errors["n_genuine"]),
            **errors,
        },
        "pooled_cascade_scores": verification_report(gen_all, imp_all).to_dict(),
        "second_opinion_rate": float(np.mean(second_rate)),
    }
