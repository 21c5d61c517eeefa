"""Face core: detection, subject choice, alignment geometry, head pose, quality and embedders."""

from __future__ import annotations

import io
import json
import math
import re
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import longest_number_list
from faceproof.capture import decode_image
from faceproof.comparison import FaceComparer
from faceproof.errors import FaceError
from faceproof.faces.analyzer import FaceAnalyzer
from faceproof.faces.embedders import SFaceEmbedder
from faceproof.faces.geometry import (
    ARCFACE_TEMPLATE_112,
    align_face,
    estimate_head_pose,
    similarity_transform,
)
from faceproof.faces.matcher import MatcherCalibration, cosine
from faceproof.faces.quality import assess_quality
from faceproof.faces.types import BoundingBox, FaceDetection, FaceObservation
from faceproof.reasons import ReasonCode

if TYPE_CHECKING:
    from conftest import Images

SFACE = "sface-2021dec-int8bq"
DLIB = "dlib-resnet-v1"


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def detect(comparer: FaceComparer, rgb: np.ndarray[Any, Any]) -> list[FaceDetection]:
    return comparer.analyzer.detector.detect(np.ascontiguousarray(rgb))


def pixels(data: bytes) -> np.ndarray[Any, Any]:
    return decode_image(data).pixels


# --- detection --------------------------------------------------------------------------------


def test_detector_finds_one_face_with_plausible_landmarks(
    comparer: FaceComparer, rgb: np.ndarray[Any, Any]
) -> None:
    faces = detect(comparer, rgb)
    assert len(faces) == 1
    face = faces[0]
    assert face.confidence >= 0.8
    box = face.box
    # A head-and-shoulders portrait: the face is a sizeable part of the 512 px frame, taller
    # than wide, and entirely inside the image.
    assert 0.1 * 512 < box.width < 0.5 * 512
    assert 1.0 <= box.height / box.width <= 1.6
    assert box.x >= 0
    assert box.y >= 0
    assert box.x + box.width <= 512
    assert box.y + box.height <= 512

    for x, y in face.landmarks:
        assert box.x <= x <= box.x + box.width
        assert box.y <= y <= box.y + box.height
    right_eye, left_eye, nose, right_mouth, left_mouth = face.landmarks
    # YuNet order: the subject's right eye and mouth corner are on the image's left.
    assert right_eye[0] < left_eye[0]
    assert right_mouth[0] < left_mouth[0]
    assert right_eye[0] < nose[0] < left_eye[0]
    # Eyes above the nose tip above the mouth (image y grows downwards).
    assert max(right_eye[1], left_eye[1]) < nose[1] < min(right_mouth[1], left_mouth[1])
    # Inter-eye distance is a plausible fraction of the face width.
    assert 0.3 * box.width < face.inter_eye_distance < 0.7 * box.width


def test_detection_scales_with_the_image(
    comparer: FaceComparer, images: Images, rgb: np.ndarray[Any, Any]
) -> None:
    # 1024 px is shrunk to YuNet's 640 input and mapped back: the box must come back ~2x.
    base = detect(comparer, rgb)[0]
    double = np.asarray(images.portrait.resize((1024, 1024), Image.Resampling.BICUBIC))
    faces = detect(comparer, double)
    assert len(faces) == 1
    big = faces[0]
    assert big.box.width / base.box.width == pytest.approx(2.0, rel=0.1)
    assert big.box.height / base.box.height == pytest.approx(2.0, rel=0.1)
    assert big.box.center[0] / base.box.center[0] == pytest.approx(2.0, rel=0.05)
    assert big.box.center[1] / base.box.center[1] == pytest.approx(2.0, rel=0.05)
    tolerance = 0.15 * 2 * base.inter_eye_distance
    np.testing.assert_allclose(big.landmark_array(), 2 * base.landmark_array(), atol=tolerance)


def test_detection_on_a_wide_letterboxed_image_maps_back_to_image_pixels(
    comparer: FaceComparer, images: Images, rgb: np.ndarray[Any, Any]
) -> None:
    # 1200x600: shrunk to 640x320 and padded at the bottom; the face sits at x offset 600.
    base = detect(comparer, rgb)[0]
    canvas = Image.new("RGB", (1200, 600), (90, 90, 90))
    canvas.paste(images.portrait, (600, 44))
    faces = detect(comparer, np.asarray(canvas))
    assert len(faces) == 1
    moved = faces[0]
    tolerance = 0.1 * base.box.width
    assert moved.box.x == pytest.approx(base.box.x + 600, abs=tolerance)
    assert moved.box.y == pytest.approx(base.box.y + 44, abs=tolerance)
    assert moved.box.width == pytest.approx(base.box.width, rel=0.15)


# --- choosing the subject face ----------------------------------------------------------------


def make_detection(x: float, y: float, w: float, h: float, confidence: float) -> FaceDetection:
    """A detection with landmarks placed inside its box like a frontal face's."""
    points = tuple(
        (x + fx * w, y + fy * h)
        for fx, fy in ((0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.35, 0.8), (0.65, 0.8))
    )
    return FaceDetection(BoundingBox(x, y, w, h), points, confidence)  # type: ignore[arg-type]


def test_rank_prefers_confident_central_face_over_larger_off_centre_one() -> None:
    from faceproof.faces.detector import rank_subject_faces

    width, height = 640, 480
    central = make_detection(300, 220, 40, 50, confidence=0.95)
    # Four times wider and in the corner, as a blurred background blob can be, but less sure.
    corner = make_detection(0, 0, 200, 250, confidence=0.70)
    for order in ([central, corner], [corner, central]):
        ranked = rank_subject_faces(order, width, height)
        assert ranked[0] is central
        assert len(ranked) == 2


def test_rank_lets_confidence_lead_over_centrality() -> None:
    from faceproof.faces.detector import rank_subject_faces

    weak_central = make_detection(300, 220, 40, 50, confidence=0.55)
    sure_corner = make_detection(0, 0, 200, 250, confidence=0.99)
    assert rank_subject_faces([weak_central, sure_corner], 640, 480)[0] is sure_corner
    assert rank_subject_faces([], 640, 480) == []


def test_rank_breaks_a_confidence_tie_by_centrality() -> None:
    from faceproof.faces.detector import rank_subject_faces

    same_size = [make_detection(0, 0, 60, 70, 0.9), make_detection(290, 205, 60, 70, 0.9)]
    assert rank_subject_faces(same_size, 640, 480)[0] is same_size[1]


def test_detection_types_validate() -> None:
    with pytest.raises(ValueError, match="positive size"):
        BoundingBox(0, 0, 0, 10)
    with pytest.raises(ValueError, match="confidence"):
        make_detection(0, 0, 10, 10, confidence=1.5)
    with pytest.raises(ValueError, match="5 landmarks"):
        FaceDetection(BoundingBox(0, 0, 10, 10), ((1.0, 1.0),) * 4, 0.9)  # type: ignore[arg-type]


# --- the analyzer: second faces ---------------------------------------------------------------


def test_second_clear_face_is_rejected_unless_allowed(
    comparer: FaceComparer, images: Images
) -> None:
    two = decode_image(images.two_faces)
    with pytest.raises(FaceError) as info:
        comparer.analyzer.observe(two)
    assert info.value.code is ReasonCode.FACE_MULTIPLE
    assert info.value.context["face_count"] == 2

    # Evaluation mode (press photos with bystanders) keeps the subject and warns instead.
    lenient = FaceAnalyzer(
        comparer.analyzer.embedders, detector=comparer.analyzer.detector, allow_multiple_faces=True
    )
    observation, _ = lenient.observe(two)
    assert observation.face_count == 2
    assert ReasonCode.FACE_MULTIPLE in observation.reasons


def test_small_face_in_the_background_is_not_a_second_person(
    comparer: FaceComparer, images: Images
) -> None:
    canvas = Image.new("RGB", (1024, 1024), (100, 100, 100))
    canvas.paste(images.portrait.resize((1024, 1024)), (0, 0))
    canvas.paste(images.portrait.resize((224, 224)), (790, 790))  # a face ~20 % as wide
    decoded = decode_image(encode(canvas, "PNG"))
    # The detector does see both faces, so it is the analyzer's rule that keeps this usable.
    assert len(detect(comparer, decoded.pixels)) == 2
    observation, subject = comparer.analyzer.observe(decoded)
    assert observation.face_count == 1
    assert ReasonCode.FACE_MULTIPLE not in observation.reasons
    assert subject.box.width > 150  # the large face is the subject


# --- alignment --------------------------------------------------------------------------------


def similarity_matrix(scale: float, degrees: float, tx: float, ty: float) -> np.ndarray[Any, Any]:
    a = math.radians(degrees)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return np.array([[c, -s, tx], [s, c, ty]])


def apply(matrix: np.ndarray[Any, Any], points: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(points, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2]


@pytest.mark.parametrize(
    ("scale", "degrees", "tx", "ty"),
    [(1.7, 23.0, 12.5, -40.0), (0.3, -170.0, 300.0, 5.0), (4.0, 90.0, 0.0, 0.0), (1, 0, 0, 0)],
)
def test_similarity_transform_recovers_a_known_similarity(
    scale: float, degrees: float, tx: float, ty: float
) -> None:
    src = np.random.default_rng(7).uniform(-50, 150, size=(5, 2))
    expected = similarity_matrix(scale, degrees, tx, ty)
    matrix = similarity_transform(src, apply(expected, src))
    assert matrix.shape == (2, 3)
    np.testing.assert_allclose(matrix, expected, rtol=0, atol=1e-9)


def test_similarity_transform_never_reflects() -> None:
    src = ARCFACE_TEMPLATE_112.copy()
    mirrored = src * np.array([-1.0, 1.0])  # a reflection is not a similarity
    matrix = similarity_transform(src, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_align_face_puts_landmarks_on_the_template() -> None:
    # Five bright dots at a known similarity of the template (rotated 15°, x2.5, shifted) in a
    # black image: after alignment they must sit on the template points.
    size = 224
    forward = similarity_matrix(2.5, 15.0, 120.0, 60.0)
    landmarks = apply(forward, ARCFACE_TEMPLATE_112)
    canvas = np.zeros((480, 480, 3), dtype=np.uint8)
    for x, y in landmarks:
        cv2.circle(canvas, (round(x), round(y)), 5, (255, 255, 255), thickness=-1)
        # round() moves a dot by < 0.5 px (0.2 px after alignment); the tolerance allows for it.

    aligned = align_face(canvas, landmarks, size)
    assert aligned.shape == (size, size, 3)
    assert aligned.dtype == np.uint8
    mask = (aligned[:, :, 0] > 127).astype(np.uint8)
    n, _, _, centroids = cv2.connectedComponentsWithStats(mask)
    found = centroids[1:]  # label 0 is the background
    assert n - 1 == 5
    template = ARCFACE_TEMPLATE_112 * (size / 112)
    for point in template:
        nearest = found[np.argmin(np.linalg.norm(found - point, axis=1))]
        np.testing.assert_allclose(nearest, point, atol=1.0)


# --- head pose --------------------------------------------------------------------------------


def test_head_pose_frontal_and_synthetic_yaw(
    comparer: FaceComparer, rgb: np.ndarray[Any, Any]
) -> None:
    face = detect(comparer, rgb)[0]
    landmarks = face.landmark_array().astype(np.float64)
    yaw, pitch, roll = estimate_head_pose(landmarks)
    assert all(math.isfinite(v) for v in (yaw, pitch, roll))
    assert abs(yaw) < 10  # the astronaut looks straight at the camera
    assert abs(roll) < 10

    # Turning the head moves the nose tip sideways between the eyes: shift it either way.
    shift = 0.25 * face.inter_eye_distance
    yaws = {}
    for direction in (-1, 1):
        turned = landmarks.copy()
        turned[2, 0] += direction * shift
        yaws[direction], _, _ = estimate_head_pose(turned)
    assert np.sign(yaws[-1]) != np.sign(yaws[1])
    assert min(abs(yaws[-1]), abs(yaws[1])) > abs(yaw) + 5


def test_strong_synthetic_yaw_is_flagged_as_yaw_not_pitch(
    comparer: FaceComparer, rgb: np.ndarray[Any, Any]
) -> None:
    face = detect(comparer, rgb)[0]
    assert not {ReasonCode.QUALITY_POSE_YAW, ReasonCode.QUALITY_POSE_PITCH} & set(
        assess_quality(rgb, face).codes
    )
    # Only the nose tip moves, sideways, well beyond an eye: a head turned far to one side. The
    # eyes and mouth keep their height, so nothing suggests a nod.
    wrong = []
    for shift in (0.75, 1.0, 1.25):
        for direction in (-1, 1):
            points = [list(p) for p in face.landmarks]
            points[2][0] += direction * shift * face.inter_eye_distance
            landmarks = tuple((x, y) for x, y in points)
            turned = FaceDetection(face.box, landmarks, face.confidence)  # type: ignore[arg-type]
            quality = assess_quality(rgb, turned)
            codes = set(quality.codes)
            if ReasonCode.QUALITY_POSE_YAW not in codes or ReasonCode.QUALITY_POSE_PITCH in codes:
                yaw, pitch = quality.value("yaw"), quality.value("pitch")
                wrong.append(f"{direction * shift:+} IED: yaw {yaw:.1f}, pitch {pitch:.1f}")
    assert wrong == []


# --- quality ----------------------------------------------------------------------------------

EXPOSURE_AND_BLUR = {
    ReasonCode.QUALITY_BLURRY,
    ReasonCode.QUALITY_UNDEREXPOSED,
    ReasonCode.QUALITY_OVEREXPOSED,
}


def observe(comparer: FaceComparer, data: bytes) -> FaceObservation:
    observation, _ = comparer.analyzer.observe(decode_image(data))
    return observation


def test_clean_portrait_has_no_blur_or_exposure_warning(
    comparer: FaceComparer, images: Images
) -> None:
    observation = observe(comparer, images.jpeg)
    assert not EXPOSURE_AND_BLUR & set(observation.quality.codes)
    assert all(item.ok for item in observation.quality.items if item.code is None)
    assert observation.face_count == 1


@pytest.mark.parametrize(
    ("variant", "code", "measure", "direction"),
    [
        ("blurred", ReasonCode.QUALITY_BLURRY, "sharpness", -1),
        ("dark", ReasonCode.QUALITY_UNDEREXPOSED, "brightness", -1),
        ("bright", ReasonCode.QUALITY_OVEREXPOSED, "brightness", +1),
    ],
)
def test_degraded_portrait_is_flagged(
    comparer: FaceComparer,
    images: Images,
    variant: str,
    code: ReasonCode,
    measure: str,
    direction: int,
) -> None:
    clean = observe(comparer, images.jpeg).quality
    degraded = observe(comparer, getattr(images, variant))
    assert code in degraded.quality.codes
    assert code in degraded.reasons  # quality codes are carried into the observation's reasons
    assert direction * (degraded.quality.value(measure) - clean.value(measure)) > 0
    if code is ReasonCode.QUALITY_OVEREXPOSED:
        assert ReasonCode.QUALITY_UNDEREXPOSED not in degraded.quality.codes
    if code is ReasonCode.QUALITY_UNDEREXPOSED:
        assert ReasonCode.QUALITY_OVEREXPOSED not in degraded.quality.codes


def test_face_too_small_is_a_rejection_not_a_warning(
    comparer: FaceComparer, images: Images
) -> None:
    with pytest.raises(FaceError) as info:
        observe(comparer, images.small_face)
    assert info.value.code is ReasonCode.FACE_TOO_SMALL
    assert info.value.context["face_width_px"] < 32


# --- embedders --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faces(comparer: FaceComparer, images: Images) -> dict[str, tuple[Any, FaceDetection]]:
    """Pixels and the detected face for the portrait and genuine copies of it."""
    out = {}
    for name in ("jpeg", "flipped", "relit"):
        rgb = pixels(getattr(images, name))
        out[name] = (rgb, detect(comparer, rgb)[0])
    return out


@pytest.mark.parametrize("model_id", [SFACE, DLIB])
def test_embedding_is_a_deterministic_unit_128_vector(
    comparer: FaceComparer, faces: dict[str, tuple[Any, FaceDetection]], model_id: str
) -> None:
    embedder = comparer.analyzer.embedders[model_id]
    rgb, face = faces["jpeg"]
    first = embedder.embed(rgb, face)
    assert first.shape == (128,)
    assert first.dtype == np.float32
    assert np.all(np.isfinite(first))
    assert float(np.linalg.norm(first)) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(embedder.embed(rgb, face), first)


@pytest.mark.parametrize("copy", ["flipped", "relit"])
def test_genuine_copies_embed_close(
    comparer: FaceComparer, faces: dict[str, tuple[Any, FaceDetection]], copy: str
) -> None:
    calibration = MatcherCalibration.load()
    rgb, face = faces["jpeg"]
    other_rgb, other_face = faces[copy]
    sface = comparer.analyzer.embedders[SFACE]
    assert cosine(sface.embed(rgb, face), sface.embed(other_rgb, other_face)) > 0.6
    # dlib's cosines are all high (impostor mean ~0.85), so judge it on its impostor z-scale.
    dlib = comparer.analyzer.embedders[DLIB]
    c = cosine(dlib.embed(rgb, face), dlib.embed(other_rgb, other_face))
    assert calibration.norms[DLIB].z(c) > calibration.threshold


def test_sface_flip_averaging_makes_embeddings_more_mirror_invariant(
    comparer: FaceComparer, faces: dict[str, tuple[Any, FaceDetection]]
) -> None:
    (rgb, face), (mirror, mirror_face) = faces["jpeg"], faces["flipped"]
    plain = comparer.analyzer.embedders[SFACE]
    averaged = SFaceEmbedder(flip=True)
    plain_cos = cosine(plain.embed(rgb, face), plain.embed(mirror, mirror_face))
    averaged_cos = cosine(averaged.embed(rgb, face), averaged.embed(mirror, mirror_face))
    assert averaged_cos > plain_cos
    assert float(np.linalg.norm(averaged.embed(rgb, face))) == pytest.approx(1.0, abs=1e-5)


# --- what may be shown: no embeddings ---------------------------------------------------------

FLOAT = re.compile(r"-?\d+\.\d+(?:e-?\d+)?")


def test_face_template_repr_shows_no_embedding_numbers(
    comparer: FaceComparer, images: Images
) -> None:
    template = comparer.extend(comparer.template(images.jpeg))
    assert set(template.embeddings) == {SFACE, DLIB}
    for text in (repr(template), str(template), f"{template}", f"{template!r}"):
        assert "redacted" in text
        assert FLOAT.search(text) is None, text
        for vector in template.embeddings.values():
            for value in vector[:16]:
                assert f"{value:.4f}" not in text


def collect_numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in collect_numbers(v)]
    if isinstance(value, list | tuple):
        return [n for v in value for n in collect_numbers(v)]
    return []


def test_face_observation_dict_has_geometry_and_quality_only(
    comparer: FaceComparer, images: Images
) -> None:
    data = comparer.template(images.jpeg).observation.to_dict()
    json.dumps(data)  # serialisable as is
    assert set(data) == {
        "box",
        "detection_confidence",
        "inter_eye_px",
        "face_count",
        "image_size",
        "quality",
        "reasons",
    }
    assert set(data["quality"]) >= {"face_width", "sharpness", "brightness", "yaw", "pitch"}
    # An embedding is 128 numbers; the whole observation holds a few dozen at most, and no list
    # longer than a bounding box.
    assert longest_number_list(data) <= 4
    assert len(collect_numbers(data)) < 64
