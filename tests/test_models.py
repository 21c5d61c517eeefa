"""Pinned models: checksums at load, the operator opt-in, graph normalisation, no network."""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import socket
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from faceproof.comparison import FaceComparer
from faceproof.errors import ModelError
from faceproof.examples import example_pair
from faceproof.faces.embedders import OnnxArcFaceEmbedder
from faceproof.faces.matcher import MatcherCalibration
from faceproof.models import (
    REGISTRY,
    get_spec,
    operator_recogniser_spec,
    resolve_model_file,
    sha256_file,
)
from faceproof.models.onnx_runtime import load_onnx_session, normalise_graph
from faceproof.models.registry import OPERATOR_RECOGNISER_ID
from faceproof.reasons import ReasonCode

YUNET = "yunet-2023mar-int8bq"
SFACE = "sface-2021dec-int8bq"


def copy_model(model_id: str, destination: Path) -> Path:
    target = destination / f"{model_id}.onnx"
    shutil.copyfile(resolve_model_file(get_spec(model_id)), target)
    return target


# --- the registry pins ------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", list(REGISTRY))
def test_registered_model_file_matches_its_pin(model_id: str) -> None:
    spec = REGISTRY[model_id]
    assert len(spec.sha256) == 64
    assert spec.sha256 == spec.sha256.lower()
    path = resolve_model_file(spec)  # raises on a mismatch: the same check runs at load
    assert path.is_file()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256
    assert sha256_file(path) == spec.sha256
    assert importlib.metadata.version(spec.source_package) == spec.source_version


def test_unknown_model_id_is_model_missing() -> None:
    with pytest.raises(ModelError) as info:
        get_spec("no-such-model")
    assert info.value.code is ReasonCode.MODEL_MISSING


# --- operator-supplied models by path + SHA-256 -----------------------------------------------


def test_tampered_model_fails_its_checksum(tmp_path: Path) -> None:
    original_sha = REGISTRY[YUNET].sha256
    path = copy_model(YUNET, tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    path.write_bytes(bytes(data))

    spec = operator_recogniser_spec(path, original_sha)
    with pytest.raises(ModelError) as info:
        resolve_model_file(spec)
    assert info.value.code is ReasonCode.MODEL_CHECKSUM_MISMATCH
    for load in (load_onnx_session, OnnxArcFaceEmbedder):
        with pytest.raises(ModelError) as info:
            load(spec)
        assert info.value.code is ReasonCode.MODEL_CHECKSUM_MISMATCH
    # Without verification the same file would be found: it is the hash that refuses it.
    assert resolve_model_file(spec, verify=False) == path.resolve()


@pytest.mark.parametrize(
    "sha", ["", "abc", "g" * 64, "0" * 63, "0" * 65, " " + "0" * 63, "sha256:" + "0" * 57]
)
def test_malformed_sha256_is_refused(tmp_path: Path, sha: str) -> None:
    path = copy_model(SFACE, tmp_path)
    with pytest.raises(ModelError) as info:
        operator_recogniser_spec(path, sha)
    assert info.value.code is ReasonCode.MODEL_CHECKSUM_MISMATCH


def test_missing_operator_model_is_model_missing(tmp_path: Path) -> None:
    spec = operator_recogniser_spec(tmp_path / "absent.onnx", REGISTRY[SFACE].sha256)
    with pytest.raises(ModelError) as info:
        resolve_model_file(spec)
    assert info.value.code is ReasonCode.MODEL_MISSING


def test_operator_model_with_correct_sha_loads_and_embeds(
    tmp_path: Path, rgb: np.ndarray[Any, Any], comparer: FaceComparer
) -> None:
    path = copy_model(SFACE, tmp_path)
    sha = sha256_file(path)
    spec = operator_recogniser_spec(path, sha.upper())  # hex case does not matter
    assert spec.sha256 == sha
    assert spec.model_id == OPERATOR_RECOGNISER_ID
    assert spec.external_path == str(path.resolve())

    embedder = OnnxArcFaceEmbedder(spec)
    face = comparer.analyzer.detector.detect(rgb)[0]
    vector = embedder.embed(rgb, face)
    assert vector.shape == (128,)
    assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(embedder.embed(rgb, face), vector)


def test_operator_model_needs_its_path_when_the_calibration_names_it(tmp_path: Path) -> None:
    structure = MatcherCalibration.uncalibrated(OPERATOR_RECOGNISER_ID, None)
    with pytest.raises(ModelError) as info:
        FaceComparer(structure)
    assert info.value.code is ReasonCode.MODEL_MISSING

    path = copy_model(SFACE, tmp_path)
    spec = operator_recogniser_spec(path, sha256_file(path))
    comparer = FaceComparer(structure, operator_model=spec)
    a, b = example_pair()
    result = comparer.compare(a, b)
    # Uncalibrated: the threshold is +inf, so it can only reject, but it runs end to end.
    assert result.match is False
    assert result.details.path == "primary_only"
    assert set(result.details.cosines) == {OPERATOR_RECOGNISER_ID}
    assert result.details.cosines[OPERATOR_RECOGNISER_ID] > 0.5  # a genuine pair


# --- graph normalisation ----------------------------------------------------------------------

EXPECTED_OUTPUTS = {
    YUNET: [
        (1, 6400, 1),
        (1, 1600, 1),
        (1, 400, 1),
        (1, 6400, 1),
        (1, 1600, 1),
        (1, 400, 1),
        (1, 6400, 4),
        (1, 1600, 4),
        (1, 400, 4),
        (1, 6400, 10),
        (1, 1600, 10),
        (1, 400, 10),
    ],
    SFACE: [(1, 128)],
}
EXPECTED_INPUT = {YUNET: [1, 3, 640, 640], SFACE: [1, 3, 112, 112]}


def quiet_session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(
        model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )


def run_on_zeros(session: ort.InferenceSession, shape: list[int]) -> list[Any]:
    name = session.get_inputs()[0].name
    return list(session.run(None, {name: np.zeros(shape, dtype=np.float32)}))


@pytest.mark.parametrize("model_id", [YUNET, SFACE])
def test_normalise_graph_makes_the_shipped_model_run(model_id: str) -> None:
    path = resolve_model_file(get_spec(model_id))
    shape = EXPECTED_INPUT[model_id]

    # As shipped, onnxruntime refuses to run it (why normalise_graph exists).
    raw = quiet_session(onnx.load(str(path)))
    with pytest.raises((ort.capi.onnxruntime_pybind11_state.Fail, ValueError)):
        run_on_zeros(raw, shape)

    session = quiet_session(normalise_graph(onnx.load(str(path))))
    inputs = session.get_inputs()
    assert len(inputs) == 1  # only the image is fed
    assert list(inputs[0].shape) == shape
    outputs = run_on_zeros(session, shape)
    assert [o.shape for o in outputs] == EXPECTED_OUTPUTS[model_id]
    assert all(np.all(np.isfinite(o)) for o in outputs)


@pytest.mark.parametrize("model_id", [YUNET, SFACE])
def test_normalise_graph_is_idempotent_and_leaves_the_file_alone(model_id: str) -> None:
    spec = get_spec(model_id)
    path = resolve_model_file(spec)
    once = normalise_graph(onnx.load(str(path))).SerializeToString()
    twice = normalise_graph(onnx.ModelProto.FromString(once)).SerializeToString()
    assert once == twice
    load_onnx_session(spec)
    assert sha256_file(path) == spec.sha256  # fixed in memory only


# --- nothing is fetched at run time -----------------------------------------------------------


def test_models_load_and_compare_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)

    comparer = FaceComparer()  # a fresh one: every model is located and loaded again
    a, b = example_pair()
    result = comparer.compare(a, b)
    assert result.match is True
    assert attempts == []
