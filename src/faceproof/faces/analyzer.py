"""From a decoded image to the subject face, its quality and its embeddings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from faceproof.capture import DecodedImage
from faceproof.errors import FaceError
from faceproof.faces.detector import FaceDetector, YuNetDetector, rank_subject_faces
from faceproof.faces.embedders import Embedder
from faceproof.faces.quality import QualityBounds, assess_quality
from faceproof.faces.types import FaceDetection, FaceObservation, FaceTemplate
from faceproof.reasons import ReasonCode

__all__ = ["FaceAnalyzer"]

# Another face counts as "a second person" only when it is confident and not a speck in the
# background: crowds behind an applicant should warn, not confuse.
_EXTRA_FACE_MIN_CONFIDENCE = 0.75
_EXTRA_FACE_MIN_RELATIVE_WIDTH = 0.35


class FaceAnalyzer:
    """Detects the subject face and embeds it with any of the configured recognisers."""

    def __init__(
        self,
        embedders: Mapping[str, Embedder],
        *,
        detector: FaceDetector | None = None,
        bounds: QualityBounds | None = None,
        allow_multiple_faces: bool = False,
    ) -> None:
        self.detector: FaceDetector = detector or YuNetDetector()
        self.embedders = dict(embedders)
        self.bounds = bounds or QualityBounds()
        # Evaluation sets (press photos with bystanders) allow them; a verification does not.
        self.allow_multiple_faces = allow_multiple_faces

    def observe(self, image: DecodedImage) -> tuple[FaceObservation, FaceDetection]:
        rgb = image.pixels
        ranked = rank_subject_faces(self.detector.detect(rgb), image.width, image.height)
        if not ranked:
            raise FaceError(ReasonCode.FACE_NOT_FOUND)
        subject = ranked[0]
        others = [
            d
            for d in ranked[1:]
            if d.confidence >= _EXTRA_FACE_MIN_CONFIDENCE
            and d.box.width >= _EXTRA_FACE_MIN_RELATIVE_WIDTH * subject.box.width
        ]
        if others and not self.allow_multiple_faces:
            # Identity proofing compares one person: a second clear face makes it ambiguous whose
            # face is being matched (or that someone else is in the frame helping).
            raise FaceError(
                ReasonCode.FACE_MULTIPLE,
                f"{1 + len(others)} faces were found; only the applicant may be in the photo.",
                face_count=1 + len(others),
            )
        quality = assess_quality(rgb, subject, self.bounds)
        if ReasonCode.FACE_TOO_SMALL in quality.codes:
            raise FaceError(
                ReasonCode.FACE_TOO_SMALL,
                f"The face is {subject.box.width:.0f} px wide; at least "
                f"{self.bounds.min_face_width_px:.0f} px are needed.",
                face_width_px=round(subject.box.width, 1),
            )
        reasons = ((ReasonCode.FACE_MULTIPLE,) if others else ()) + quality.codes
        observation = FaceObservation(
            detection=subject,
            quality=quality,
            face_count=1 + len(others),
            image_width=image.width,
            image_height=image.height,
            reasons=reasons,
        )
        return observation, subject

    def template(self, image: DecodedImage, models: Iterable[str]) -> FaceTemplate:
        observation, subject = self.observe(image)
        embeddings = {m: self.embedders[m].embed(image.pixels, subject) for m in models}
        return FaceTemplate(observation, embeddings, image.pixels)

    def extend(self, template: FaceTemplate, models: Iterable[str]) -> FaceTemplate:
        """Add embeddings from more recognisers to a template (the cascade's second opinion).

        The template is extended in place, so a face compared many times is embedded once.
        """
        missing = [m for m in models if m not in template.embeddings]
        if not missing:
            return template
        pixels = template._pixels
        if pixels is None:
            raise ValueError("template was created without pixels; cannot add recognisers")
        for m in missing:
            template.embeddings[m] = self.embedders[m].embed(pixels, template.observation.detection)
        return template
