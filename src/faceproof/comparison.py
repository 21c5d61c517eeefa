"""1:1 face comparison: two images in, a calibrated, explained decision out.

This is the engine behind `faceproof compare` and `faceproof.compare()`. Models load once per
`FaceComparer`; build one per process (or worker) and reuse it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceproof.capture import DecodedImage, decode_image, load_image
from faceproof.errors import InputError, ModelError
from faceproof.faces.analyzer import FaceAnalyzer
from faceproof.faces.embedders import DlibEmbedder, Embedder, OnnxArcFaceEmbedder, SFaceEmbedder
from faceproof.faces.matcher import MatchDetails, MatcherCalibration, match_templates
from faceproof.faces.types import FaceObservation, FaceTemplate
from faceproof.models.registry import OPERATOR_RECOGNISER_ID, ModelSpec
from faceproof.reasons import ReasonCode, describe

__all__ = ["CompareResult", "FaceComparer", "ImageInput", "TemplateCache", "compare"]

ImageInput = DecodedImage | bytes | str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class CompareResult:
    """The decision and everything needed to explain and audit it. No embeddings, no pixels."""

    score: float  # higher = more alike; same units as `threshold`
    match: bool
    threshold: float
    fmr_target: float
    reasons: tuple[ReasonCode, ...]
    face_a: FaceObservation
    face_b: FaceObservation
    details: MatchDetails
    calibration_source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "match": self.match,
            "threshold": round(self.threshold, 4),
            "fmr_target": self.fmr_target,
            "reasons": [code.value for code in self.reasons],
            "messages": [describe(code).to_dict() for code in self.reasons],
            "matcher": self.details.to_dict(),
            "calibration": self.calibration_source,
            "faces": {"a": self.face_a.to_dict(), "b": self.face_b.to_dict()},
        }


class FaceComparer:
    """Detector, recognisers and calibration, loaded once."""

    def __init__(
        self,
        calibration: MatcherCalibration | None = None,
        *,
        operator_model: ModelSpec | None = None,
        allow_multiple_faces: bool = False,
        threads: int = 1,
    ) -> None:
        """`operator_model`: an opt-in ONNX recogniser (see `models.operator_recogniser_spec`);
        the calibration must name it (`faceproof calibrate --recogniser-onnx ...` makes one)."""
        self.calibration = calibration or MatcherCalibration.load()
        embedders: dict[str, Embedder] = {}
        for model_id in self.calibration.models:
            embedders[model_id] = _build_embedder(
                model_id, self.calibration.flip, threads, operator_model
            )
        self.analyzer = FaceAnalyzer(embedders, allow_multiple_faces=allow_multiple_faces)

    def template(self, image: ImageInput) -> FaceTemplate:
        """Subject face and primary embedding. Raises ImageError / FaceError for unusable input."""
        return self.analyzer.template(_decode(image), [self.calibration.primary])

    def compare_templates(self, a: FaceTemplate, b: FaceTemplate) -> CompareResult:
        cal = self.calibration
        primary = match_templates(cal, _only(a, cal.primary), _only(b, cal.primary))
        details = primary
        if cal.needs_second_opinion(primary.score):
            details = match_templates(cal, self.extend(a), self.extend(b))
        reasons: list[ReasonCode] = [
            ReasonCode.MATCH_ACCEPTED if details.match else ReasonCode.MATCH_REJECTED
        ]
        if details.path == "fusion":
            reasons.append(ReasonCode.MATCH_SECOND_OPINION)
        if cal.low_confidence:
            reasons.append(ReasonCode.THRESHOLD_LOW_CONFIDENCE)
        for code in a.observation.reasons + b.observation.reasons:
            if code not in reasons:
                reasons.append(code)
        return CompareResult(
            score=details.score,
            match=details.match,
            threshold=details.threshold,
            fmr_target=cal.fmr_target,
            reasons=tuple(reasons),
            face_a=a.observation,
            face_b=b.observation,
            details=details,
            calibration_source=cal.dataset,
        )

    def extend(self, template: FaceTemplate) -> FaceTemplate:
        """The template with every recogniser of the calibration (the cascade's second opinion)."""
        return self.analyzer.extend(template, self.calibration.models)

    def compare(self, a: ImageInput, b: ImageInput) -> CompareResult:
        """Raises ImageError / FaceError with `context["image"]` = "a" or "b": which one failed."""
        return self.compare_templates(
            self._labelled_template("a", a), self._labelled_template("b", b)
        )

    def _labelled_template(self, label: str, image: ImageInput) -> FaceTemplate:
        try:
            return self.template(image)
        except InputError as exc:
            exc.context.setdefault("image", label)
            raise


class TemplateCache:
    """Templates for a batch of comparisons: each distinct image is decoded and embedded once.

    Unusable images are remembered as their InputError, so a bad file fails every pair it is in
    without being decoded again. In memory only, for the life of the batch.
    """

    def __init__(self, comparer: FaceComparer, base: Path | None = None) -> None:
        self.comparer = comparer
        self.base = base or Path()
        self._templates: dict[str, FaceTemplate | InputError] = {}

    def get(self, path: str) -> FaceTemplate | InputError:
        if path not in self._templates:
            try:
                self._templates[path] = self.comparer.template(self.base / path)
            except InputError as exc:
                self._templates[path] = exc
        return self._templates[path]


def _only(template: FaceTemplate, model_id: str) -> FaceTemplate:
    return FaceTemplate(template.observation, {model_id: template.embeddings[model_id]})


def _build_embedder(
    model_id: str, flip: bool, threads: int, operator_model: ModelSpec | None
) -> Embedder:
    if operator_model is not None and model_id == operator_model.model_id:
        return OnnxArcFaceEmbedder(operator_model, threads=threads)
    if model_id == OPERATOR_RECOGNISER_ID:
        raise ModelError(
            ReasonCode.MODEL_MISSING,
            "the calibration names an operator recogniser; pass its path and SHA-256",
        )
    if model_id == SFaceEmbedder.model_id:
        return SFaceEmbedder(flip=flip, threads=threads)
    if model_id == DlibEmbedder.model_id:
        return DlibEmbedder(threads=threads)
    raise ValueError(f"no embedder for {model_id!r}")


def _decode(image: ImageInput) -> DecodedImage:
    if isinstance(image, DecodedImage):
        return image
    if isinstance(image, bytes):
        return decode_image(image)
    return load_image(Path(image))


_default: FaceComparer | None = None
_default_lock = threading.Lock()


def compare(a: ImageInput, b: ImageInput) -> CompareResult:
    """Compare two face images with the packaged models and calibration."""
    global _default
    with _default_lock:
        if _default is None:
            _default = FaceComparer()
    return _default.compare(a, b)
