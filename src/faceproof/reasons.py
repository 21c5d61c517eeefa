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
    # Liveness (liveness/)
    LIVENESS_PASSED = "liveness_passed"
    CHALLENGE_NOT_FOLLOWED = "challenge_not_followed"
    CHALLENGE_EXPIRED = "challenge_expired"
    CHALLENGE_UNKNOWN = "challenge_unknown"
    PLANAR_MOTION = "planar_motion"
    SCREEN_DETECTED = "screen_detected"
    PRINT_DETECTED = "print_detected"
    FACE_CHANGED = "face_changed"
    FRAME_TIMING = "frame_timing"
    TOO_DARK = "too_dark"
    CLIP_CORRUPT = "clip_corrupt"
    CLIP_TOO_SHORT = "clip_too_short"
    CLIP_TOO_LONG = "clip_too_long"
    MOTION_INSUFFICIENT = "motion_insufficient"
    PRESENTATION_ATTACK = "presentation_attack"  # the operator's learned PAD model
    FRAMES_OUT_OF_ORDER = "frames_out_of_order"
    FRAMES_MALFORMED = "frames_malformed"
    # Documents (documents/)
    CARD_NOT_FOUND = "card_not_found"
    CARD_CUT_OFF = "card_cut_off"
    CARD_TOO_SMALL = "card_too_small"
    CARD_BLURRY = "card_blurry"
    CARD_GLARE = "card_glare"
    CARD_SCREENSHOT = "card_screenshot"  # a screenshot, or a photo of a screen
    DOCUMENT_TYPE_UNKNOWN = "document_type_unknown"
    FIELD_UNREADABLE = "field_unreadable"
    RRN_INVALID = "rrn_invalid"
    RRN_CHECK_DIGIT = "rrn_check_digit"
    LICENCE_NUMBER_INVALID = "licence_number_invalid"
    PASSPORT_NUMBER_INVALID = "passport_number_invalid"
    MRZ_INVALID = "mrz_invalid"
    MRZ_MISMATCH = "mrz_mismatch"
    DOCUMENT_EXPIRED = "document_expired"
    ISSUE_DATE_IN_FUTURE = "issue_date_in_future"
    PORTRAIT_NO_FACE = "portrait_no_face"
    PORTRAIT_TOO_SMALL = "portrait_too_small"
    ISSUER_CONFIRMED = "issuer_confirmed"
    ISSUER_NOT_FOUND = "issuer_not_found"
    ISSUER_REVOKED = "issuer_revoked"
    ISSUER_LOST = "issuer_lost"
    ISSUER_SUPERSEDED = "issuer_superseded"
    ISSUER_UNAVAILABLE = "issuer_unavailable"
    # Service (api/, storage/, privacy/)
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN_SCOPE = "forbidden_scope"
    SESSION_NOT_FOUND = "session_not_found"
    SESSION_EXPIRED = "session_expired"
    SESSION_STATE = "session_state"
    TOKEN_INVALID = "token_invalid"  # noqa: S105 - a reason code, not a secret
    TOKEN_EXPIRED = "token_expired"  # noqa: S105
    TOKEN_REPLAYED = "token_replayed"  # noqa: S105
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    UPLOAD_DECRYPTION_FAILED = "upload_decryption_failed"
    UPLOAD_NOT_ENCRYPTED = "upload_not_encrypted"
    MALFORMED_REQUEST = "malformed_request"
    RATE_LIMITED = "rate_limited"
    CONSENT_REQUIRED = "consent_required"
    CONSENT_DECLINED = "consent_declined"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    RECEIPT_INVALID = "receipt_invalid"
    INTERNAL_ERROR = "internal_error"
    LIVENESS_NOT_PERFORMED = "liveness_not_performed"
    ACTIVATION_SUBJECT_MISMATCH = "activation_subject_mismatch"
    DOCUMENT_NOT_VERIFIED = "document_not_verified"

    # Policy (policy/)
    POLICY_ALLOWED = "policy_allowed"
    POLICY_LINE_LIMIT = "policy_line_limit"
    POLICY_BLOCKED = "policy_blocked"
    POLICY_BARRED = "policy_barred"
    POLICY_POSSIBLE_STOLEN_CARD = "policy_possible_stolen_card"
    POLICY_STORE_VELOCITY = "policy_store_velocity"
    POLICY_INVALID = "policy_invalid"
    REGISTRY_UNAVAILABLE = "registry_unavailable"
    ALERT_NOT_SENT = "alert_not_sent"
    SHARED_STATE_UNAVAILABLE = "shared_state_unavailable"

    # Alternatives (alternatives/)
    MOBILE_ID_VERIFIED = "mobile_id_verified"
    MOBILE_ID_INVALID = "mobile_id_invalid"
    MOBILE_ID_UNTRUSTED_ISSUER = "mobile_id_untrusted_issuer"
    MOBILE_ID_EXPIRED = "mobile_id_expired"
    MOBILE_ID_REVOKED = "mobile_id_revoked"
    MOBILE_ID_NONCE_MISMATCH = "mobile_id_nonce_mismatch"
    MOBILE_ID_HOLDER_BINDING = "mobile_id_holder_binding"
    MOBILE_ID_CLOCK_SKEW = "mobile_id_clock_skew"
    MOBILE_ID_MISSING_CLAIMS = "mobile_id_missing_claims"
    MOBILE_ID_NOT_CONFIGURED = "mobile_id_not_configured"
    MANUAL_CHECK_RECORDED = "manual_check_recorded"
    MANUAL_ABSTRACT_NOT_SAME_DAY = "manual_abstract_not_same_day"
    MANUAL_CHECK_INVALID = "manual_check_invalid"

    # Webhooks (api/webhooks.py)
    WEBHOOK_NOT_FOUND = "webhook_not_found"
    WEBHOOK_URL_INVALID = "webhook_url_invalid"
    WEBHOOK_LIMIT = "webhook_limit"


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
    # --- Liveness (liveness/)
    ReasonCode.LIVENESS_PASSED: _Text(
        Severity.INFO,
        "The live-face check passed.",
        "실물 얼굴 확인을 통과했습니다.",
    ),
    ReasonCode.CHALLENGE_NOT_FOLLOWED: _Text(
        Severity.REJECT,
        "The requested movements were not performed in order and in time.",
        "요청한 동작을 순서와 시간 안에 수행하지 않았습니다.",
    ),
    ReasonCode.CHALLENGE_EXPIRED: _Text(
        Severity.REJECT,
        "The challenge has expired; request a new one.",
        "확인 요청 시간이 지났습니다. 새로 요청해 주세요.",
    ),
    ReasonCode.CHALLENGE_UNKNOWN: _Text(
        Severity.REJECT,
        "The challenge was not issued by this service or was already used.",
        "이 서비스가 발급하지 않았거나 이미 사용된 확인 요청입니다.",
    ),
    ReasonCode.PLANAR_MOTION: _Text(
        Severity.REJECT,
        "The face moved like a flat picture, not a real head.",
        "얼굴이 실제 머리가 아니라 평평한 사진처럼 움직였습니다.",
    ),
    ReasonCode.SCREEN_DETECTED: _Text(
        Severity.REJECT,
        "The face appears to be shown on a screen.",
        "얼굴이 화면에 표시된 것으로 보입니다.",
    ),
    ReasonCode.PRINT_DETECTED: _Text(
        Severity.REJECT,
        "The face appears to be a printed photo.",
        "얼굴이 인쇄된 사진으로 보입니다.",
    ),
    ReasonCode.PRESENTATION_ATTACK: _Text(
        Severity.REJECT,
        "The face anti-spoofing model judged this to be a photo, screen or mask, not a live face.",
        "위변조 판별 모델이 실제 얼굴이 아닌 사진, 화면 또는 마스크로 판단했습니다.",
    ),
    ReasonCode.FACE_CHANGED: _Text(
        Severity.REJECT,
        "A different face appeared during the clip.",
        "영상 도중 다른 얼굴이 나타났습니다.",
    ),
    ReasonCode.FRAME_TIMING: _Text(
        Severity.REJECT,
        "The frames' timing is not plausible for a live camera (duplicated, reordered or cut).",
        "프레임 시간이 실제 카메라 촬영으로 보기 어렵습니다(중복, 순서 바뀜 또는 잘림).",
    ),
    ReasonCode.TOO_DARK: _Text(
        Severity.REJECT,
        "The video is too dark to check; move to better light.",
        "영상이 너무 어둡습니다. 밝은 곳으로 이동해 주세요.",
    ),
    ReasonCode.CLIP_CORRUPT: _Text(
        Severity.REJECT,
        "The video cannot be decoded.",
        "영상을 해석할 수 없습니다.",
    ),
    ReasonCode.CLIP_TOO_SHORT: _Text(
        Severity.REJECT,
        "The video is too short to check.",
        "영상이 너무 짧아 확인할 수 없습니다.",
    ),
    ReasonCode.CLIP_TOO_LONG: _Text(
        Severity.REJECT,
        "The video is too long.",
        "영상이 너무 깁니다.",
    ),
    ReasonCode.MOTION_INSUFFICIENT: _Text(
        Severity.REJECT,
        "The head did not move enough to check that it is real; turn your head slowly.",
        "실제 얼굴인지 확인할 만큼 머리가 움직이지 않았습니다. 고개를 천천히 돌려 주세요.",
    ),
    ReasonCode.FRAMES_OUT_OF_ORDER: _Text(
        Severity.REJECT,
        "The frames' timestamps are not strictly increasing; send the frames in capture order.",
        "프레임 시각이 순서대로 증가하지 않습니다. 촬영한 순서대로 프레임을 보내 주세요.",
    ),
    ReasonCode.FRAMES_MALFORMED: _Text(
        Severity.REJECT,
        "The uploaded frames are malformed: one finite timestamp per frame (a JSON array of "
        "milliseconds) and frames of one size are needed.",
        "업로드한 프레임 형식이 올바르지 않습니다. 프레임마다 유한한 시각 하나(밀리초 단위 JSON "
        "배열)가 있어야 하고 모든 프레임의 크기가 같아야 합니다.",
    ),
    # --- Documents (documents/)
    ReasonCode.CARD_NOT_FOUND: _Text(
        Severity.REJECT,
        "No ID card was found in the image.",
        "이미지에서 신분증을 찾지 못했습니다.",
    ),
    ReasonCode.CARD_CUT_OFF: _Text(
        Severity.REJECT,
        "Part of the card is outside the photo.",
        "신분증 일부가 사진 밖으로 잘렸습니다.",
    ),
    ReasonCode.CARD_TOO_SMALL: _Text(
        Severity.REJECT,
        "The card is too small in the photo; move closer.",
        "사진 속 신분증이 너무 작습니다. 더 가까이 촬영해 주세요.",
    ),
    ReasonCode.CARD_BLURRY: _Text(
        Severity.REJECT,
        "The card is too blurred to read.",
        "신분증이 흐려서 읽을 수 없습니다.",
    ),
    ReasonCode.CARD_GLARE: _Text(
        Severity.REJECT,
        "Glare covers the text or the portrait.",
        "빛 반사가 글자나 사진을 가립니다.",
    ),
    ReasonCode.CARD_SCREENSHOT: _Text(
        Severity.REJECT,
        "This looks like a screenshot or a picture on a screen. Photograph the card itself.",
        "화면 캡처나 화면에 띄운 사진으로 보입니다. 신분증 실물을 직접 촬영해 주세요.",
    ),
    ReasonCode.DOCUMENT_TYPE_UNKNOWN: _Text(
        Severity.REJECT,
        "The document type could not be recognised.",
        "신분증 종류를 인식하지 못했습니다.",
    ),
    ReasonCode.FIELD_UNREADABLE: _Text(
        Severity.WARNING,
        "A field could not be read.",
        "일부 항목을 읽지 못했습니다.",
    ),
    ReasonCode.RRN_INVALID: _Text(
        Severity.REJECT,
        "The registration number is not valid (date or gender digit).",
        "주민(외국인)등록번호가 올바르지 않습니다(생년월일 또는 성별 자리).",
    ),
    ReasonCode.RRN_CHECK_DIGIT: _Text(
        Severity.WARNING,
        "The registration number's check digit does not match "
        "(normal for numbers issued since October 2020).",
        "등록번호 검증 숫자가 맞지 않습니다(2020년 10월 이후 발급 번호는 정상일 수 있음).",
    ),
    ReasonCode.LICENCE_NUMBER_INVALID: _Text(
        Severity.REJECT,
        "The driver's licence number is not valid.",
        "운전면허 번호가 올바르지 않습니다.",
    ),
    ReasonCode.PASSPORT_NUMBER_INVALID: _Text(
        Severity.REJECT,
        "The passport number is not valid.",
        "여권 번호가 올바르지 않습니다.",
    ),
    ReasonCode.MRZ_INVALID: _Text(
        Severity.REJECT,
        "The passport's machine-readable zone fails its check digits.",
        "여권 기계판독영역(MRZ)의 검증 숫자가 맞지 않습니다.",
    ),
    ReasonCode.MRZ_MISMATCH: _Text(
        Severity.REJECT,
        "The machine-readable zone disagrees with the printed fields.",
        "기계판독영역(MRZ)과 인쇄된 정보가 다릅니다.",
    ),
    ReasonCode.DOCUMENT_EXPIRED: _Text(
        Severity.REJECT,
        "The document has expired.",
        "신분증 유효기간이 지났습니다.",
    ),
    ReasonCode.ISSUE_DATE_IN_FUTURE: _Text(
        Severity.REJECT,
        "The issue date is in the future.",
        "발급일이 미래 날짜입니다.",
    ),
    ReasonCode.PORTRAIT_NO_FACE: _Text(
        Severity.REJECT,
        "No face was found in the card's portrait.",
        "신분증 사진에서 얼굴을 찾지 못했습니다.",
    ),
    ReasonCode.PORTRAIT_TOO_SMALL: _Text(
        Severity.WARNING,
        "The card's portrait is small; matching may be less accurate.",
        "신분증 사진이 작아 비교 정확도가 낮을 수 있습니다.",
    ),
    ReasonCode.ISSUER_CONFIRMED: _Text(
        Severity.INFO,
        "The issuing agency confirmed the card.",
        "발급기관이 신분증을 확인했습니다.",
    ),
    ReasonCode.ISSUER_NOT_FOUND: _Text(
        Severity.REJECT,
        "The issuing agency has no such card.",
        "발급기관에 해당 신분증이 없습니다.",
    ),
    ReasonCode.ISSUER_REVOKED: _Text(
        Severity.REJECT,
        "The issuing agency reports the card as revoked.",
        "발급기관이 취소된 신분증으로 확인했습니다.",
    ),
    ReasonCode.ISSUER_LOST: _Text(
        Severity.REJECT,
        "The card has been reported lost.",
        "분실 신고된 신분증입니다.",
    ),
    ReasonCode.ISSUER_SUPERSEDED: _Text(
        Severity.REJECT,
        "A newer card has been issued; this one is no longer valid.",
        "새 신분증이 발급되어 이 신분증은 더 이상 유효하지 않습니다.",
    ),
    ReasonCode.ISSUER_UNAVAILABLE: _Text(
        Severity.WARNING,
        "The issuer check is unavailable; the case goes to review.",
        "발급기관 확인을 할 수 없어 검토로 넘깁니다.",
    ),
    # --- Service (api/, storage/, privacy/)
    ReasonCode.UNAUTHORIZED: _Text(
        Severity.REJECT,
        "The API key is missing or not valid.",
        "API 키가 없거나 올바르지 않습니다.",
    ),
    ReasonCode.FORBIDDEN_SCOPE: _Text(
        Severity.REJECT,
        "The API key does not allow this action.",
        "이 API 키로는 이 작업을 할 수 없습니다.",
    ),
    ReasonCode.SESSION_NOT_FOUND: _Text(
        Severity.REJECT,
        "No such session (or it belongs to another tenant).",
        "해당 세션이 없습니다(또는 다른 사업자의 세션입니다).",
    ),
    ReasonCode.SESSION_EXPIRED: _Text(
        Severity.REJECT,
        "The session has expired.",
        "세션이 만료되었습니다.",
    ),
    ReasonCode.SESSION_STATE: _Text(
        Severity.REJECT,
        "This step is not allowed in the session's current state.",
        "현재 세션 상태에서는 이 단계를 진행할 수 없습니다.",
    ),
    ReasonCode.TOKEN_INVALID: _Text(
        Severity.REJECT,
        "The capture token is not valid.",
        "촬영 토큰이 올바르지 않습니다.",
    ),
    ReasonCode.TOKEN_EXPIRED: _Text(
        Severity.REJECT,
        "The capture token has expired.",
        "촬영 토큰이 만료되었습니다.",
    ),
    ReasonCode.TOKEN_REPLAYED: _Text(
        Severity.REJECT,
        "The capture token was already used.",
        "이미 사용된 촬영 토큰입니다.",
    ),
    ReasonCode.PAYLOAD_TOO_LARGE: _Text(
        Severity.REJECT,
        "The upload is too large.",
        "업로드가 너무 큽니다.",
    ),
    ReasonCode.UNSUPPORTED_MEDIA_TYPE: _Text(
        Severity.REJECT,
        "The upload's content type is not accepted.",
        "허용되지 않는 업로드 형식입니다.",
    ),
    ReasonCode.UPLOAD_DECRYPTION_FAILED: _Text(
        Severity.REJECT,
        "The encrypted upload could not be opened with this session's key.",
        "이 세션의 키로 암호화된 업로드를 열 수 없습니다.",
    ),
    ReasonCode.UPLOAD_NOT_ENCRYPTED: _Text(
        Severity.REJECT,
        "Uploads must be encrypted to this session's key.",
        "업로드는 이 세션의 키로 암호화해야 합니다.",
    ),
    ReasonCode.MALFORMED_REQUEST: _Text(
        Severity.REJECT,
        "The request is malformed.",
        "요청 형식이 올바르지 않습니다.",
    ),
    ReasonCode.RATE_LIMITED: _Text(
        Severity.REJECT,
        "Too many requests; try again shortly.",
        "요청이 너무 많습니다. 잠시 후 다시 시도해 주세요.",
    ),
    ReasonCode.CONSENT_REQUIRED: _Text(
        Severity.REJECT,
        "Biometric consent is required before face capture.",
        "얼굴 촬영 전에 생체정보 이용 동의가 필요합니다.",
    ),
    ReasonCode.CONSENT_DECLINED: _Text(
        Severity.INFO,
        "Biometric consent was declined; use the non-biometric alternative.",
        "생체정보 이용에 동의하지 않아 다른 본인확인 방법으로 안내합니다.",
    ),
    ReasonCode.ATTEMPTS_EXHAUSTED: _Text(
        Severity.REJECT,
        "No face-check attempts are left; use the non-biometric alternative.",
        "얼굴 확인 시도 횟수를 모두 사용했습니다. 다른 본인확인 방법을 이용해 주세요.",
    ),
    ReasonCode.RECEIPT_INVALID: _Text(
        Severity.REJECT,
        "The receipt's signature is not valid.",
        "결과 증명서의 서명이 올바르지 않습니다.",
    ),
    ReasonCode.INTERNAL_ERROR: _Text(
        Severity.REJECT,
        "An internal error occurred; nothing was stored.",
        "내부 오류가 발생했습니다. 아무것도 저장되지 않았습니다.",
    ),
    ReasonCode.LIVENESS_NOT_PERFORMED: _Text(
        Severity.WARNING,
        "No live-face check was performed, so a face match alone goes to review, never pass.",
        "실물 얼굴 확인을 하지 않아 얼굴이 일치해도 통과가 아닌 검토로 넘깁니다.",
    ),
    ReasonCode.ACTIVATION_SUBJECT_MISMATCH: _Text(
        Severity.REJECT,
        "The line's holder is not the person this session verified.",
        "개통하려는 회선의 명의자가 이 세션에서 확인한 사람과 다릅니다.",
    ),
    ReasonCode.DOCUMENT_NOT_VERIFIED: _Text(
        Severity.WARNING,
        "The ID document itself was not verified, so a face match goes to review, never pass.",
        "신분증 자체를 확인하지 않아 얼굴이 일치해도 통과가 아닌 검토로 넘깁니다.",
    ),
    # --- Policy (policy/)
    ReasonCode.POLICY_ALLOWED: _Text(
        Severity.INFO,
        "Subscription rules allow a new line for this person.",
        "가입 규정상 이 사람의 신규 회선 개통이 가능합니다.",
    ),
    ReasonCode.POLICY_LINE_LIMIT: _Text(
        Severity.REJECT,
        "This person has reached the limit of new lines across all carriers for this period.",
        "이 기간 동안 모든 통신사를 합한 신규 회선 개통 한도에 도달했습니다.",
    ),
    ReasonCode.POLICY_BLOCKED: _Text(
        Severity.REJECT,
        "The holder has blocked new subscriptions in their name.",
        "명의자가 본인 명의의 신규 가입을 차단해 두었습니다.",
    ),
    ReasonCode.POLICY_BARRED: _Text(
        Severity.REJECT,
        "This identity is barred from new lines after a confirmed fraud case.",
        "확인된 사기 사건으로 이 명의의 신규 회선 개통이 제한되어 있습니다.",
    ),
    ReasonCode.POLICY_POSSIBLE_STOLEN_CARD: _Text(
        Severity.WARNING,
        "Repeated failed face checks with this ID at several stores or carriers: review required.",
        "여러 매장 또는 통신사에서 이 신분증으로 얼굴 확인이 반복 실패하여 검토가 필요합니다.",
    ),
    ReasonCode.POLICY_STORE_VELOCITY: _Text(
        Severity.WARNING,
        "This store opened unusually many lines, or saw many failed checks, in the last hour: "
        "review required.",
        "이 매장에서 최근 1시간 동안 비정상적으로 많은 개통 또는 확인 실패가 있어 "
        "검토가 필요합니다.",
    ),
    ReasonCode.POLICY_INVALID: _Text(
        Severity.REJECT,
        "The policy rules file is invalid.",
        "가입 규정 파일이 올바르지 않습니다.",
    ),
    ReasonCode.REGISTRY_UNAVAILABLE: _Text(
        Severity.WARNING,
        "The cross-carrier line registry is unavailable; the case goes to review.",
        "통신사 공동 회선 등록부를 조회할 수 없어 검토로 넘깁니다.",
    ),
    ReasonCode.ALERT_NOT_SENT: _Text(
        Severity.WARNING,
        "The new-line alert could not be sent; it will be retried.",
        "신규 개통 알림을 보내지 못해 다시 시도합니다.",
    ),
    ReasonCode.SHARED_STATE_UNAVAILABLE: _Text(
        Severity.WARNING,
        "The service's shared state store is unavailable; try again shortly.",
        "서비스의 공유 상태 저장소를 사용할 수 없습니다. 잠시 후 다시 시도하세요.",
    ),
    # --- Alternatives (alternatives/)
    ReasonCode.MOBILE_ID_VERIFIED: _Text(
        Severity.INFO,
        "The government mobile ID was verified; no face data was used.",
        "모바일 신분증을 확인했습니다. 얼굴 정보는 사용하지 않았습니다.",
    ),
    ReasonCode.MOBILE_ID_INVALID: _Text(
        Severity.REJECT,
        "The mobile ID presentation is malformed or its signature is not valid.",
        "모바일 신분증 제시 정보의 형식이나 서명이 올바르지 않습니다.",
    ),
    ReasonCode.MOBILE_ID_UNTRUSTED_ISSUER: _Text(
        Severity.REJECT,
        "The mobile ID was issued by an issuer that is not on the trust list.",
        "신뢰 목록에 없는 발급기관의 모바일 신분증입니다.",
    ),
    ReasonCode.MOBILE_ID_EXPIRED: _Text(
        Severity.REJECT,
        "The mobile ID credential has expired.",
        "모바일 신분증의 유효기간이 지났습니다.",
    ),
    ReasonCode.MOBILE_ID_REVOKED: _Text(
        Severity.REJECT,
        "The mobile ID credential has been revoked.",
        "폐지된 모바일 신분증입니다.",
    ),
    ReasonCode.MOBILE_ID_NONCE_MISMATCH: _Text(
        Severity.REJECT,
        "The presentation was not made for this session (nonce or audience differs).",
        "이 세션을 위해 제시된 정보가 아닙니다(일회용 값 또는 대상 불일치).",
    ),
    ReasonCode.MOBILE_ID_HOLDER_BINDING: _Text(
        Severity.REJECT,
        "The presentation was not signed by the credential's holder.",
        "모바일 신분증 소지자가 서명한 제시 정보가 아닙니다.",
    ),
    ReasonCode.MOBILE_ID_CLOCK_SKEW: _Text(
        Severity.REJECT,
        "The presentation's time is too far from the server's clock.",
        "제시 정보의 시각이 서버 시각과 너무 다릅니다.",
    ),
    ReasonCode.MOBILE_ID_MISSING_CLAIMS: _Text(
        Severity.REJECT,
        "The presentation does not disclose the name, birth date and number.",
        "이름, 생년월일, 등록번호가 제시되지 않았습니다.",
    ),
    ReasonCode.MOBILE_ID_NOT_CONFIGURED: _Text(
        Severity.REJECT,
        "This service has no mobile-ID trust list configured; use another path.",
        "모바일 신분증 신뢰 목록이 설정되지 않았습니다. 다른 방법을 이용해 주세요.",
    ),
    ReasonCode.MANUAL_CHECK_RECORDED: _Text(
        Severity.INFO,
        "A clerk checked a same-day resident-registration abstract; no face data was used.",
        "직원이 당일 발급된 주민등록표 초본을 확인했습니다. 얼굴 정보는 사용하지 않았습니다.",
    ),
    ReasonCode.MANUAL_ABSTRACT_NOT_SAME_DAY: _Text(
        Severity.REJECT,
        "The resident-registration abstract was not issued today.",
        "주민등록표 초본이 오늘 발급된 것이 아닙니다.",
    ),
    ReasonCode.MANUAL_CHECK_INVALID: _Text(
        Severity.REJECT,
        "The manual check record is incomplete or malformed.",
        "직원 확인 기록이 불완전하거나 형식이 올바르지 않습니다.",
    ),
    # --- Webhooks (api/webhooks.py)
    ReasonCode.WEBHOOK_NOT_FOUND: _Text(
        Severity.REJECT,
        "No such webhook for this tenant.",
        "이 고객사에 해당 웹훅이 없습니다.",
    ),
    ReasonCode.WEBHOOK_URL_INVALID: _Text(
        Severity.REJECT,
        "The webhook URL is not allowed: HTTPS to a public host, no credentials in the URL.",
        "허용되지 않는 웹훅 주소입니다. "
        "공개 호스트의 HTTPS 주소만 되며 주소에 인증 정보를 넣을 수 없습니다.",
    ),
    ReasonCode.WEBHOOK_LIMIT: _Text(
        Severity.REJECT,
        "This tenant already has the most webhooks allowed; delete one first.",
        "이 고객사는 등록할 수 있는 웹훅 수를 모두 사용했습니다. 먼저 하나를 삭제하세요.",
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
