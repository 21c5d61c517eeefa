"""1:1 comparison: a cascade over two recognisers with z-normalised score fusion.

Score scale: every recogniser's cosine similarity is z-normalised against its impostor
distribution (mean 0, sd 1 for impostors), so scores from different models share one scale.
The fused score is the weighted mean of those z-scores, normalised again to the impostor
distribution of the fusion. Higher means more alike; a pair matches when score >= threshold.

Quality-aware weights: SFace degrades sharply for small faces (under ~50 px wide), dlib much
less, so the secondary recogniser's weight ramps from `secondary_weight_small` (smaller face's
inter-eye distance at or below `weight_ramp_px[0]`) to `weights[secondary]` (at or above
`weight_ramp_px[1]`).

Cascade: the fast primary recogniser (SFace) decides alone when its z-score is far from the
threshold. Inside the calibrated uncertainty band the second recogniser (dlib) runs and the
fused score decides. The band is fitted so that, on the calibration pairs, the primary-only
decision outside it never disagreed with the fused decision.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from faceproof.errors import ModelError
from faceproof.faces.types import FaceTemplate
from faceproof.reasons import ReasonCode

__all__ = [
    "MatchDetails",
    "MatcherCalibration",
    "ScoreNormalisation",
    "cosine",
    "match_templates",
]


def cosine(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


@dataclass(frozen=True, slots=True)
class ScoreNormalisation:
    """Impostor mean and sd of one score, for z-normalisation."""

    impostor_mean: float
    impostor_std: float

    def z(self, score: float) -> float:
        return (score - self.impostor_mean) / self.impostor_std


@dataclass(frozen=True, slots=True)
class MatcherCalibration:
    """Everything the matcher needs to turn two templates into a decision, with provenance."""

    primary: str
    secondary: str | None
    flip: bool
    norms: dict[str, ScoreNormalisation]
    weights: dict[str, float]  # primary weight 1; secondary weight for normal-size faces
    secondary_weight_small: float  # secondary weight when the smaller face is small
    weight_ramp_px: tuple[float, float]  # inter-eye px over which the weight ramps
    fusion_norm: ScoreNormalisation
    threshold: float
    fmr_target: float
    band_low: float  # second opinion when threshold - band_low <= z_primary < threshold + band_high
    band_high: float
    dataset: str
    n_genuine: int
    n_impostor: int
    low_confidence: bool
    note: str
    command: str
    created_at: str
    measured: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatcherCalibration:
        try:
            values = dict(data)
            values["norms"] = {k: ScoreNormalisation(**v) for k, v in data["norms"].items()}
            values["fusion_norm"] = ScoreNormalisation(**data["fusion_norm"])
            values["weight_ramp_px"] = tuple(data["weight_ramp_px"])
            return cls(**values)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(ReasonCode.CALIBRATION_INVALID, f"bad calibration: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path | None = None) -> MatcherCalibration:
        """The operator's calibration file, or the default shipped with the package."""
        try:
            if path is None:
                text = resources.files("faceproof.faces").joinpath("calibration.json").read_text()
            else:
                text = Path(path).read_text(encoding="utf-8")
            return cls.from_dict(json.loads(text))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(
                ReasonCode.CALIBRATION_INVALID, f"calibration file unreadable: {exc}"
            ) from exc

    @classmethod
    def uncalibrated(
        cls, primary: str, secondary: str | None, *, flip: bool = False
    ) -> MatcherCalibration:
        """A structural calibration (which models, no fitted numbers) for `faceproof calibrate`."""
        unit = ScoreNormalisation(0.0, 1.0)
        models = [primary] + ([secondary] if secondary else [])
        return cls(
            primary=primary,
            secondary=secondary,
            flip=flip,
            norms={m: unit for m in models},
            weights={m: 1.0 for m in models},
            secondary_weight_small=1.0,
            weight_ramp_px=(0.0, 0.0),
            fusion_norm=unit,
            threshold=float("inf"),
            fmr_target=1e-4,
            band_low=0.0,
            band_high=0.0,
            dataset="uncalibrated",
            n_genuine=0,
            n_impostor=0,
            low_confidence=True,
            note="not calibrated: rejects every pair",
            command="",
            created_at="",
        )

    @property
    def models(self) -> tuple[str, ...]:
        return (self.primary,) + ((self.secondary,) if self.secondary else ())

    def needs_second_opinion(self, z_primary: float) -> bool:
        if self.secondary is None:
            return False
        return self.threshold - self.band_low <= z_primary < self.threshold + self.band_high

    def secondary_weight(self, min_inter_eye_px: float) -> float:
        assert self.secondary is not None
        low, high = self.weight_ramp_px
        large = self.weights[self.secondary]
        if high <= low:
            return large
        t = min(1.0, max(0.0, (min_inter_eye_px - low) / (high - low)))
        return self.secondary_weight_small + t * (large - self.secondary_weight_small)

    def fuse(self, z_primary: float, z_secondary: float, min_inter_eye_px: float) -> float:
        w = self.secondary_weight(min_inter_eye_px)
        mean = (self.weights[self.primary] * z_primary + w * z_secondary) / (
            self.weights[self.primary] + w
        )
        return self.fusion_norm.z(mean)


@dataclass(frozen=True, slots=True)
class MatchDetails:
    """How a score came about: raw cosines, z-scores and which path of the cascade ran."""

    score: float
    threshold: float
    match: bool
    path: str  # "primary_only" | "fusion"
    cosines: dict[str, float]
    z_scores: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "models": sorted(self.cosines),
            "cosine": {k: round(v, 4) for k, v in self.cosines.items()},
            "z": {k: round(v, 3) for k, v in self.z_scores.items()},
        }


def match_templates(
    calibration: MatcherCalibration, a: FaceTemplate, b: FaceTemplate
) -> MatchDetails:
    """Score two templates that already carry every embedding the chosen path needs."""
    cosines = {
        m: cosine(a.embeddings[m], b.embeddings[m]) for m in a.embeddings if m in b.embeddings
    }
    z_scores = {m: calibration.norms[m].z(c) for m, c in cosines.items() if m in calibration.norms}
    if calibration.secondary is not None and calibration.secondary in z_scores:
        min_ied = min(
            a.observation.detection.inter_eye_distance, b.observation.detection.inter_eye_distance
        )
        score = calibration.fuse(
            z_scores[calibration.primary], z_scores[calibration.secondary], min_ied
        )
        path = "fusion"
    else:
        score, path = z_scores[calibration.primary], "primary_only"
    return MatchDetails(
        score=score,
        threshold=calibration.threshold,
        match=score >= calibration.threshold,
        path=path,
        cosines=cosines,
        z_scores=z_scores,
    )
