"""Face quality in the spirit of ISO/IEC 29794-5: each measure with a value, a bound and a code.

Bounds are deliberately lenient: quality items explain a result and warn a capture client; only
a face too small to compare rejects on its own. They were set by inspecting the shared face data
(ORL, BBT crops, press photos), not tuned against the match threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from faceproof.faces.geometry import ARCFACE_TEMPLATE_112, align_face, estimate_head_pose
from faceproof.faces.types import FaceDetection, QualityAssessment, QualityItem
from faceproof.reasons import ReasonCode

__all__ = ["QualityBounds", "assess_quality"]


@dataclass(frozen=True, slots=True)
class QualityBounds:
    min_face_width_px: float = 32.0  # below: reject, too few pixels to compare
    small_inter_eye_px: float = 30.0  # below: warn; SFace degrades for faces under ~50 px wide
    min_sharpness: float = 60.0  # variance of the Laplacian on the 112 px aligned face
    min_brightness: float = 45.0  # mean luma of the aligned face, 0..255
    max_brightness: float = 215.0
    max_abs_yaw_deg: float = 35.0
    max_abs_pitch_deg: float = 30.0
    min_eye_contrast: float = 0.35  # eye-region contrast relative to the whole face


def _eye_contrast(grey: npt.NDArray[np.generic]) -> float:
    """Contrast in the two eye regions relative to the face: sunglasses and shadow flatten it."""
    face_std = float(grey[30:100, 20:92].std()) + 1e-6
    ratios = []
    for x, y in ARCFACE_TEMPLATE_112[:2]:
        patch = grey[int(y) - 7 : int(y) + 7, int(x) - 11 : int(x) + 11]
        ratios.append(float(patch.std()) / face_std)
    return min(ratios)


def assess_quality(
    rgb: npt.NDArray[np.uint8], face: FaceDetection, bounds: QualityBounds = QualityBounds()
) -> QualityAssessment:
    aligned = align_face(rgb, face.landmark_array(), 112)
    grey = cv2.cvtColor(aligned, cv2.COLOR_RGB2GRAY)
    centre = grey[24:104, 16:96]
    sharpness = float(cv2.Laplacian(centre, cv2.CV_64F).var())
    brightness = float(centre.mean())
    yaw, pitch, _ = estimate_head_pose(face.landmark_array())
    eye_contrast = _eye_contrast(grey)
    ied = face.inter_eye_distance

    def item(
        name: str, value: float, unit: str, bound: str, ok: bool, code: ReasonCode
    ) -> QualityItem:
        return QualityItem(name, value, unit, bound, ok, None if ok else code)

    exposure_ok = bounds.min_brightness <= brightness <= bounds.max_brightness
    exposure_code = (
        ReasonCode.QUALITY_UNDEREXPOSED
        if brightness < bounds.min_brightness
        else ReasonCode.QUALITY_OVEREXPOSED
    )
    return QualityAssessment(
        (
            item(
                "face_width",
                face.box.width,
                "px",
                f">= {bounds.min_face_width_px:g}",
                face.box.width >= bounds.min_face_width_px,
                ReasonCode.FACE_TOO_SMALL,
            ),
            item(
                "inter_eye_distance",
                ied,
                "px",
                f">= {bounds.small_inter_eye_px:g}",
                ied >= bounds.small_inter_eye_px,
                ReasonCode.FACE_SMALL,
            ),
            item(
                "sharpness",
                sharpness,
                "laplacian_var",
                f">= {bounds.min_sharpness:g}",
                sharpness >= bounds.min_sharpness,
                ReasonCode.QUALITY_BLURRY,
            ),
            item(
                "brightness",
                brightness,
                "luma",
                f"{bounds.min_brightness:g}..{bounds.max_brightness:g}",
                exposure_ok,
                exposure_code,
            ),
            item(
                "yaw",
                yaw,
                "deg",
                f"|yaw| <= {bounds.max_abs_yaw_deg:g}",
                math.isfinite(yaw) and abs(yaw) <= bounds.max_abs_yaw_deg,
                ReasonCode.QUALITY_POSE_YAW,
            ),
            item(
                "pitch",
                pitch,
                "deg",
                f"|pitch| <= {bounds.max_abs_pitch_deg:g}",
                math.isfinite(pitch) and abs(pitch) <= bounds.max_abs_pitch_deg,
                ReasonCode.QUALITY_POSE_PITCH,
            ),
            item(
                "eye_contrast",
                eye_contrast,
                "ratio",
                f">= {bounds.min_eye_contrast:g}",
                eye_contrast >= bounds.min_eye_contrast,
                ReasonCode.QUALITY_EYES_NOT_VISIBLE,
            ),
        )
    )
