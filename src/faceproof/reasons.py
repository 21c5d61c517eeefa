"""Reason codes: the stable vocabulary every decision and error explains itself with.

Codes are part of the public contract (CLI JSON, API problem+json, receipts): never rename one,
only add. Each code has a Korean and an English message for people to read.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Reason", "ReasonCode", "Severity", "describe"]


class Severity(StrEnum):
    """How a reason bears on the outcome."""

    INFO = "info"  # explains a positive outcome
    WARNING = "warning"  # worth knowing, does not block
    REJECT = "reject"  # blocks the outcome on its own


class ReasonCode(StrEnum):
    # Image intake (capture/)
    IMAGE_EMPTY = "image_empty"
    IMAGE_TOO_LARGE = "image_too_large"
    IMAGE_TOO_MANY_PIXELS = "image_too_many_pixels"
    IMAGE_DECOMPRESSION_BOMB = "image_decompression_bomb"
    IMAGE_UNSUPPORTED_FORMAT = "image_unsupported_format"
    IMAGE_CORRUPT = "image_corrupt"
    IMAGE_TRUNCATED = "image_truncated"
    IMAGE_ANIMATED = "image_animated"
    IMAGE_TOO_SMALL = "image_too_small"
    IMAGE_UNREADABLE_FILE = "image_unreadable_file"
    # Faces (faces/)
    FACE_NOT_FOUND = "face_not_found"
    FACE_MULTIPLE = "face_multiple"
    FACE_TOO_SMALL = "face_too_small"
    FACE_SMALL = "face_small"
    QUALITY_BLURRY = "quality_blurry"
    QUALITY_UNDEREXPOSED = "quality_underexposed"
    QUALITY_OVEREXPOSED = "quality_overexposed"
    QUALITY_POSE_YAW = "quality_pose_yaw"
    QUALITY_POSE_PITCH = "quality_pose_pitch"
    QUALITY_EYES_NOT_VISIBLE = "quality_eyes_not_visible"
    # Matching
    MATCH_ACCEPTED = "match_accepted"
    MATCH_REJECTED = "match_rejected"
    MATCH_SECOND_OPINION = "match_second_opinion"
    THRESHOLD_LOW_CONFIDENCE = "threshold_low_confidence"
    # Models and configuration (server side)
    MODEL_MISSING = "model_missing"
    MODEL_CHECKSUM_MISMATCH = "model_checksum_mismatch"
    MODEL_LOAD_FAILED = "model_load_failed"
    CALIBRATION_INVALID = "calibration_invalid"
    LABELS_INVALID = "labels_invalid"


@dataclass(frozen=True, slots=True)
class _Text:
    severity: Severity
    en: str
    ko: str


_CATALOG: dict[ReasonCode, _Text] = {
    ReasonCode.IMAGE_EMPTY: _Text(
        Severity.REJECT, "The image is empty.", "이미지가 비어 있습니다."
    ),
    ReasonCode.IMAGE_TOO_LARGE: _Text(
        Severity.REJECT, "The image file is too large.", "이미지 파일이 너무 큽니다."
    ),
    ReasonCode.IMAGE_TOO_MANY_PIXELS: _Text(
        Severity.REJECT,
        "The image has too many pixels.",
        "이미지의 픽셀 수가 너무 많습니다.",
    ),
    ReasonCode.IMAGE_DECOMPRESSION_BOMB: _Text(
        Severity.REJECT,
        "The image expands to far more data than its file size allows (decompression bomb).",
        "이미지가 파일 크기에 비해 비정상적으로 큰 데이터로 풀립니다(압축 폭탄).",
    ),
    ReasonCode.IMAGE_UNSUPPORTED_FORMAT: _Text(
        Severity.REJECT,
        "The file is not a supported image (JPEG, PNG, WebP or HEIC).",
        "지원하지 않는 이미지 형식입니다(JPEG, PNG, WebP, HEIC만 가능).",
    ),
    ReasonCode.IMAGE_CORRUPT: _Text(
        Severity.REJECT, "The image data is corrupt.", "이미지 데이터가 손상되었습니다."
    ),
    ReasonCode.IMAGE_TRUNCATED: _Text(
        Severity.REJECT,
        "The image is truncated (incomplete upload?).",
        "이미지가 잘려 있습니다(업로드가 끝나지 않았을 수 있습니다).",
    ),
    ReasonCode.IMAGE_ANIMATED: _Text(
        Severity.REJECT,
        "Animated images are not accepted; send one still photo.",
        "움직이는 이미지는 받을 수 없습니다. 정지 사진 한 장을 보내 주세요.",
    ),
    ReasonCode.IMAGE_TOO_SMALL: _Text(
        Severity.REJECT, "The image is too small.", "이미지가 너무 작습니다."
    ),
    ReasonCode.IMAGE_UNREADABLE_FILE: _Text(
        Severity.REJECT, "The image file cannot be read.", "이미지 파일을 읽을 수 없습니다."
    ),
    ReasonCode.FACE_NOT_FOUND: _Text(
        Severity.REJECT, "No face was found in the image.", "이미지에서 얼굴을 찾지 못했습니다."
    ),
    ReasonCode.FACE_MULTIPLE: _Text(
        Severity.REJECT,
        "More than one face is in the image; only the applicant may be in the photo.",
        "이미지에 얼굴이 여러 개 있습니다. 신청인 한 명만 나오도록 촬영해 주세요.",
    ),
    ReasonCode.FACE_TOO_SMALL: _Text(
        Severity.REJECT,
        "The face is too small to compare reliably.",
        "얼굴이 너무 작아 신뢰할 수 있게 비교할 수 없습니다.",
    ),
    ReasonCode.FACE_SMALL: _Text(
        Severity.WARNING,
        "The face is small; accuracy may be lower.",
        "얼굴이 작아 정확도가 낮을 수 있습니다.",
    ),
    ReasonCode.QUALITY_BLURRY: _Text(Severity.WARNING, "The face is blurry.", "얼굴이 흐릿합니다."),
    ReasonCode.QUALITY_UNDEREXPOSED: _Text(
        Severity.WARNING, "The face is too dark.", "얼굴이 너무 어둡습니다."
    ),
    ReasonCode.QUALITY_OVEREXPOSED: _Text(
        Severity.WARNING, "The face is too bright (over-exposed).", "얼굴이 너무 밝습니다."
    ),
    ReasonCode.QUALITY_POSE_YAW: _Text(
        Severity.WARNING,
        "The head is turned sideways; look straight at the camera.",
        "고개가 옆으로 돌아가 있습니다. 카메라를 정면으로 봐 주세요.",
    ),
    ReasonCode.QUALITY_POSE_PITCH: _Text(
        Severity.WARNING,
        "The head is tilted up or down; look straight at the camera.",
        "고개가 위나 아래로 기울어져 있습니다. 카메라를 정면으로 봐 주세요.",
    ),
    ReasonCode.QUALITY_EYES_NOT_VISIBLE: _Text(
        Severity.WARNING,
        "The eyes are not clearly visible (sunglasses, glare or shadow?).",
        "눈이 잘 보이지 않습니다(선글라스, 반사광 또는 그림자).",
    ),
    ReasonCode.MATCH_ACCEPTED: _Text(
        Severity.INFO,
        "The faces match at the configured false-match target.",
        "설정된 오인식률 기준에서 두 얼굴이 일치합니다.",
    ),
    ReasonCode.MATCH_REJECTED: _Text(
        Severity.REJECT,
        "The faces do not match at the configured false-match target.",
        "설정된 오인식률 기준에서 두 얼굴이 일치하지 않습니다.",
    ),
    ReasonCode.MATCH_SECOND_OPINION: _Text(
        Severity.INFO,
        "The score was near the threshold, so a second recogniser was consulted.",
        "점수가 기준값에 가까워 두 번째 인식 모델을 함께 사용했습니다.",
    ),
    ReasonCode.THRESHOLD_LOW_CONFIDENCE: _Text(
        Severity.WARNING,
        "The threshold was calibrated on fewer impostor pairs than 3/FMR; treat it as provisional.",
        "기준값 보정에 사용된 타인 쌍이 3/FMR보다 적어 잠정적인 값입니다.",
    ),
    ReasonCode.MODEL_MISSING: _Text(
        Severity.REJECT, "A model file is missing.", "모델 파일이 없습니다."
    ),
    ReasonCode.MODEL_CHECKSUM_MISMATCH: _Text(
        Severity.REJECT,
        "A model file does not match its pinned SHA-256.",
        "모델 파일의 SHA-256이 고정값과 다릅니다.",
    ),
    ReasonCode.MODEL_LOAD_FAILED: _Text(
        Severity.REJECT, "A model could not be loaded.", "모델을 불러오지 못했습니다."
    ),
    ReasonCode.CALIBRATION_INVALID: _Text(
        Severity.REJECT,
        "The calibration file is missing or invalid.",
        "보정 파일이 없거나 올바르지 않습니다.",
    ),
    ReasonCode.LABELS_INVALID: _Text(
        Severity.REJECT,
        "The labels or pairs file is invalid.",
        "라벨 또는 쌍 파일이 올바르지 않습니다.",
    ),
}


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason code with its severity and bilingual message, as shown to people."""

    code: ReasonCode
    severity: Severity
    message_en: str
    message_ko: str

    def to_dict(self) -> dict[str, str]:
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "message_en": self.message_en,
            "message_ko": self.message_ko,
        }


def describe(code: ReasonCode) -> Reason:
    text = _CATALOG[code]
    return Reason(code, text.severity, text.en, text.ko)
