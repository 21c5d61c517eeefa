"""Face recognisers behind one small Protocol: image plus detection in, a unit vector out."""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np
import numpy.typing as npt

from faceproof.errors import ModelError
from faceproof.faces.geometry import align_face
from faceproof.faces.types import FaceDetection, FloatArray
from faceproof.models.onnx_runtime import load_onnx_session
from faceproof.models.registry import ModelSpec, get_spec, resolve_model_file
from faceproof.reasons import ReasonCode

__all__ = ["DlibEmbedder", "Embedder", "OnnxArcFaceEmbedder", "SFaceEmbedder", "l2_normalise"]


class Embedder(Protocol):
    model_id: str

    def embed(self, rgb: npt.NDArray[np.uint8], face: FaceDetection) -> FloatArray: ...


def l2_normalise(vector: npt.NDArray[np.floating]) -> FloatArray:
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


class SFaceEmbedder:
    """SFace (OpenCV Zoo) on onnxruntime: 112x112 ArcFace-aligned RGB, raw 0..255 input.

    RGB matters: OpenCV's FaceRecognizerSF swaps to RGB; feeding BGR cost about a point of TAR.
    With `flip=True` the embedding is the mean of the face and its mirror image.
    """

    model_id = "sface-2021dec-int8bq"

    def __init__(self, *, flip: bool = False, threads: int = 1) -> None:
        self._session = load_onnx_session(get_spec(self.model_id), threads=threads)
        self._input = self._session.get_inputs()[0].name
        self.flip = flip

    def _blob(self, crop: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        return crop.astype(np.float32).transpose(2, 0, 1)[np.newaxis]

    def embed(self, rgb: npt.NDArray[np.uint8], face: FaceDetection) -> FloatArray:
        crop = align_face(rgb, face.landmark_array(), 112)
        blobs = [self._blob(crop)]
        if self.flip:
            blobs.append(self._blob(np.ascontiguousarray(crop[:, ::-1])))
        batch = np.concatenate(blobs)
        features = np.concatenate(
            [self._session.run(None, {self._input: b[None]})[0] for b in batch]
        )
        return l2_normalise(np.mean([l2_normalise(f) for f in features], axis=0))


class OnnxArcFaceEmbedder:
    """An operator-supplied ArcFace-style ONNX recogniser (opt-in, by path and SHA-256)."""

    def __init__(self, spec: ModelSpec, *, threads: int = 1) -> None:
        self.model_id = spec.model_id
        self._session = load_onnx_session(spec, threads=threads)
        self._input = self._session.get_inputs()[0].name

    def embed(self, rgb: npt.NDArray[np.uint8], face: FaceDetection) -> FloatArray:
        crop = align_face(rgb, face.landmark_array(), 112).astype(np.float32)
        blob = ((crop - 127.5) / 127.5).transpose(2, 0, 1)[np.newaxis]
        return l2_normalise(self._session.run(None, {self._input: blob})[0])


class DlibEmbedder:
    """dlib's ResNet descriptor (face_recognition_models 0.3.0) on a YuNet-found face.

    dlib's 5-point shape model builds the 150x150 chip the descriptor expects; it is fitted on a
    square box derived from YuNet's landmarks, close to the boxes dlib's own detector makes.
    """

    model_id = "dlib-resnet-v1"

    def __init__(self, *, threads: int = 1) -> None:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - dlib-bin is a hard dependency
            raise ModelError(ReasonCode.MODEL_MISSING, "dlib (dlib-bin) is not installed") from exc
        self._dlib = dlib
        shape_path = resolve_model_file(get_spec("dlib-shape-predictor-5"))
        resnet_path = resolve_model_file(get_spec(self.model_id))
        try:
            self._shape = dlib.shape_predictor(str(shape_path))
            self._resnet = dlib.face_recognition_model_v1(str(resnet_path))
        except RuntimeError as exc:
            raise ModelError(ReasonCode.MODEL_LOAD_FAILED, "dlib model failed to load") from exc

    def chip(self, rgb: npt.NDArray[np.uint8], face: FaceDetection) -> npt.NDArray[np.uint8]:
        points = face.landmark_array()
        eyes_mid = points[:2].mean(axis=0)
        mouth_mid = points[3:].mean(axis=0)
        # dlib's HOG boxes span roughly brows to chin, centred a little below the eyes.
        span = 1.9 * float(np.linalg.norm(mouth_mid - eyes_mid)) + 0.9 * face.inter_eye_distance
        centre = eyes_mid + 0.55 * (mouth_mid - eyes_mid)
        half = span / 2
        rect = self._dlib.rectangle(
            round(centre[0] - half),
            round(centre[1] - half),
            round(centre[0] + half),
            round(centre[1] + half),
        )
        shape = self._shape(rgb, rect)
        return np.asarray(self._dlib.get_face_chip(rgb, shape, size=150, padding=0.25))

    def embed(self, rgb: npt.NDArray[np.uint8], face: FaceDetection) -> FloatArray:
        chip = np.ascontiguousarray(self.chip(rgb, face))
        return l2_normalise(np.asarray(self._resnet.compute_face_descriptor(chip)))
