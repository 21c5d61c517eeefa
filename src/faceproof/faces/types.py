"""Small frozen types that flow from detection to comparison.

`FaceObservation` is safe to serialise and log (geometry and quality only). `FaceTemplate`
holds embeddings: it lives in memory for one comparison and is never serialised, logged or
persisted — its repr is redacted so that a stray log line cannot leak it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from faceproof.reasons import ReasonCode

__all__ = [
    "BoundingBox",
    "FaceDetection",
    "FaceObservation",
    "FaceTemplate",
    "Point",
    "QualityAssessment",
    "QualityItem",
]

Point = tuple[float, float]
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class BoundingBox:
    x: float
    y: float
    width: float
    height: float

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"box needs a positive size, got {self.width}x{self.height}")

    @property
    def center(self) -> Point:
        return (self.x + self.width / 2, self.y + self.height / 2)

    def to_dict(self) -> dict[str, float]:
        return {
            k: round(v, 1)
            for k, v in zip(("x", "y", "width", "height"), self.astuple(), strict=True)
        }

    def astuple(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.width, self.height)


@dataclass(frozen=True, slots=True)
class FaceDetection:
    """One detected face in original-image pixel coordinates.

    Landmarks are YuNet's five points in its order: the subject's right eye (image left),
    left eye, nose tip, right mouth corner, left mouth corner.
    """

    box: BoundingBox
    landmarks: tuple[Point, Point, Point, Point, Point]
    confidence: float

    def __post_init__(self) -> None:
        if len(self.landmarks) != 5:
            raise ValueError(f"expected 5 landmarks, got {len(self.landmarks)}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")

    @property
    def inter_eye_distance(self) -> float:
        (rx, ry), (lx, ly) = self.landmarks[0], self.landmarks[1]
        return float(np.hypot(lx - rx, ly - ry))

    def landmark_array(self) -> FloatArray:
        return np.asarray(self.landmarks, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class QualityItem:
    """One ISO/IEC 29794-5-style measure: its value, the bound it was held to, and a verdict."""

    name: str
    value: float
    unit: str
    bound: str
    ok: bool
    code: ReasonCode | None  # set when not ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": round(self.value, 3),
            "unit": self.unit,
            "bound": self.bound,
            "ok": self.ok,
            **({"code": self.code.value} if self.code else {}),
        }


@dataclass(frozen=True, slots=True)
class QualityAssessment:
    items: tuple[QualityItem, ...]

    @property
    def codes(self) -> tuple[ReasonCode, ...]:
        return tuple(item.code for item in self.items if item.code is not None)

    def value(self, name: str) -> float:
        for item in self.items:
            if item.name == name:
                return item.value
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {item.name: item.to_dict() for item in self.items}


@dataclass(frozen=True, slots=True)
class FaceObservation:
    """The subject face of one image: where it is, how good it is, what else was seen."""

    detection: FaceDetection
    quality: QualityAssessment
    face_count: int
    image_width: int
    image_height: int
    reasons: tuple[ReasonCode, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": self.detection.box.to_dict(),
            "detection_confidence": round(self.detection.confidence, 4),
            "inter_eye_px": round(self.detection.inter_eye_distance, 1),
            "face_count": self.face_count,
            "image_size": [self.image_width, self.image_height],
            "quality": self.quality.to_dict(),
            "reasons": [code.value for code in self.reasons],
        }


@dataclass(frozen=True, slots=True, eq=False)
class FaceTemplate:
    """Embeddings of one face, per recogniser id. In memory only; never persisted."""

    observation: FaceObservation
    embeddings: dict[str, FloatArray] = field(repr=False)
    # Kept so that a second recogniser can run later (cascade) without decoding again.
    _pixels: npt.NDArray[np.uint8] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"FaceTemplate(models={sorted(self.embeddings)}, embeddings=<redacted>)"
