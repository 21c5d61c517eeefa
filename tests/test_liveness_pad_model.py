"""The operator-supplied ONNX PAD model (liveness/pad_model.py) as one more liveness cue.

Tiny ONNX models are built here with the `onnx` package and saved to `tmp_path`: one that always
says live, one that always says attack, one whose answer depends on the crop it is fed. They show
that the file is checked against its SHA-256, that a bad file fails at load, that an attack
verdict rejects an otherwise live generated clip with `presentation_attack`, that a live verdict
changes nothing, and that the settings reach the service and the CLI.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from faceproof.errors import ModelError
from faceproof.liveness import Clip, LivenessEngine
from faceproof.liveness.landmarks import FaceMeshLandmarker
from faceproof.liveness.pad_model import (
    OnnxPadModel,
    PadModelContract,
    crop_box,
    pad_model_from_settings,
)
from faceproof.liveness.synthetic import SceneKit, bona_fide_clip, encode_video
from faceproof.reasons import ReasonCode, describe
from faceproof.settings import PadModelSettings, Settings
from faceproof.verification import liveness_models

OPSET = [helper.make_opsetid("", 13)]
IR_VERSION = 8  # onnx 1.23 writes IR 14 by default, newer than onnxruntime 1.31 accepts


def _save(model: onnx.ModelProto, path: Path) -> tuple[Path, str]:
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def constant_model(path: Path, logits: tuple[float, ...], size: int = 80) -> tuple[Path, str]:
    """Always the same logits; it reads its input (mean x 0) so the input stays in the graph."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, len(logits)])
    zeros = helper.make_tensor("zeros", TensorProto.FLOAT, [1, len(logits)], [0.0] * len(logits))
    const = helper.make_tensor("const", TensorProto.FLOAT, [1, len(logits)], list(logits))
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["m"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Flatten", ["m"], ["m2"], axis=1),  # (1, 1)
        helper.make_node("Mul", ["m2", "zeros"], ["z"]),
        helper.make_node("Add", ["z", "const"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "constant_pad", [x], [y], [zeros, const])
    return _save(helper.make_model(graph, opset_imports=OPSET, ir_version=IR_VERSION), path)


def channel_mean_model(path: Path, size: int = 80) -> tuple[Path, str]:
    """Logits (0, (mean of input channel 0 - 128) / 8): live when channel 0 is bright."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])
    inits = [
        helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [1]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        helper.make_tensor("w", TensorProto.FLOAT, [1, 2], [0.0, 1.0 / 8.0]),
        helper.make_tensor("b", TensorProto.FLOAT, [1, 2], [0.0, -128.0 / 8.0]),
    ]
    nodes = [
        helper.make_node("Slice", ["input", "starts", "ends", "axes"], ["c0"]),
        helper.make_node("ReduceMean", ["c0"], ["m"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Flatten", ["m"], ["m2"], axis=1),
        helper.make_node("Mul", ["m2", "w"], ["mw"]),
        helper.make_node("Add", ["mw", "b"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "channel_mean_pad", [x], [y], inits)
    return _save(helper.make_model(graph, opset_imports=OPSET, ir_version=IR_VERSION), path)


def rank2_model(path: Path) -> tuple[Path, str]:
    """A classifier over a flat vector: not an image model."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 16])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 16])
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["out"])], "flat", [x], [y])
    return _save(helper.make_model(graph, opset_imports=OPSET, ir_version=IR_VERSION), path)


LIVE = (-6.0, 6.0, -6.0)  # MiniFASNet-like: 3 classes, index 1 = live
ATTACK = (6.0, -6.0, 0.0)


@pytest.fixture(scope="module")
def plain_engine(liveness_engine: LivenessEngine) -> LivenessEngine:
    """The session's engine (conftest), with no PAD model."""
    return liveness_engine


@pytest.fixture(scope="module")
def landmarker(liveness_engine: LivenessEngine) -> FaceMeshLandmarker:
    assert isinstance(liveness_engine.landmarker, FaceMeshLandmarker)
    return liveness_engine.landmarker


@pytest.fixture(scope="module")
def turns(scene_kit: SceneKit) -> Clip:
    return bona_fide_clip(scene_kit, "turns", seed=31)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pad_models")


def engine_with(plain: LivenessEngine, pad: Any) -> LivenessEngine:
    """The same loaded models as `plain`, plus a PAD model."""
    return LivenessEngine(
        detector=plain.detector,
        landmarker=plain.landmarker,
        embedder=plain.embedder,
        pad_model=pad,
    )


# --- loading: hash, file, contract --------------------------------------------------------------


def test_wrong_sha256_is_refused(models_dir: Path) -> None:
    path, digest = constant_model(models_dir / "live.onnx", LIVE)
    wrong = hashlib.sha256(b"another file").hexdigest()
    with pytest.raises(ModelError) as info:
        OnnxPadModel(path, wrong)
    assert info.value.code is ReasonCode.MODEL_CHECKSUM_MISMATCH
    with pytest.raises(ModelError) as info:
        OnnxPadModel(path, "abc123")  # not a SHA-256 at all
    assert info.value.code is ReasonCode.MODEL_CHECKSUM_MISMATCH
    assert OnnxPadModel(path, digest.upper()).sha256 == digest  # case does not matter


def test_missing_file_is_model_missing(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as info:
        OnnxPadModel(tmp_path / "absent.onnx", "0" * 64)
    assert info.value.code is ReasonCode.MODEL_MISSING


def test_bad_model_files_fail_at_load_with_a_clear_error(models_dir: Path) -> None:
    junk = models_dir / "junk.onnx"
    junk.write_bytes(b"this is not an onnx model " * 40)
    with pytest.raises(ModelError) as info:
        OnnxPadModel(junk, hashlib.sha256(junk.read_bytes()).hexdigest())
    assert info.value.code is ReasonCode.MODEL_LOAD_FAILED

    path, digest = rank2_model(models_dir / "rank2.onnx")
    with pytest.raises(ModelError) as info:
        OnnxPadModel(path, digest)
    assert info.value.code is ReasonCode.MODEL_LOAD_FAILED
    assert "rank 4" in str(info.value.detail)
    assert "rank 2" in str(info.value.detail)

    # A static 112x112 input does not fit the 80x80 contract.
    path, digest = constant_model(models_dir / "big.onnx", LIVE, size=112)
    with pytest.raises(ModelError) as info:
        OnnxPadModel(path, digest)
    assert info.value.code is ReasonCode.MODEL_LOAD_FAILED
    assert "112" in str(info.value.detail)
    assert OnnxPadModel(path, digest, contract=PadModelContract(input_size=112)).threshold == 0.5

    # One output class cannot hold "live" at index 1.
    path, digest = constant_model(models_dir / "one_class.onnx", (3.0,))
    with pytest.raises(ModelError) as info:
        OnnxPadModel(path, digest)
    assert "class" in str(info.value.detail)


def test_contract_values_are_checked() -> None:
    with pytest.raises(ModelError):
        PadModelContract(crop_scale=0.5)
    with pytest.raises(ModelError):
        PadModelContract(input_size=4)


# --- what the model is fed --------------------------------------------------------------------


def test_crop_follows_minifasnet_box_rules() -> None:
    # A 100 px box in the middle of a 640x480 frame, 2.7x: a 270 px square about its centre.
    assert crop_box(640, 480, (270, 190, 100, 100), 2.7) == (185, 105, 455, 375)
    # Near the left edge: shifted inside, same size.
    x0, y0, x1, y1 = crop_box(640, 480, (0, 190, 100, 100), 2.7)
    assert x0 == 0
    assert x1 - x0 == 270
    # Too big to fit: the factor shrinks to what the frame allows.
    x0, y0, x1, y1 = crop_box(640, 480, (220, 140, 200, 200), 2.7)
    assert y0 == 0
    assert y1 == 479
    assert 0 <= x0 < x1 <= 639


def test_model_sees_the_face_crop_in_the_contracts_channel_order(models_dir: Path) -> None:
    path, digest = channel_mean_model(models_dir / "channel.onnx")
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[150:330, 240:400, 0] = 255  # a red face region (RGB frame), dark around it
    box = (260.0, 170.0, 120.0, 140.0)
    bgr = OnnxPadModel(path, digest, contract=PadModelContract(output="logits", crop_scale=1.0))
    rgb = OnnxPadModel(path, digest, contract=PadModelContract(channel_order="rgb", crop_scale=1.0))
    # Channel 0 is blue in BGR (dark: attack) and red in RGB (bright: live).
    assert bgr.live_probability(frame, box) < 0.01
    assert rgb.live_probability(frame, box) > 0.99
    # Enlarging the crop takes in the dark surroundings: the mean, and so the answer, drops.
    wide = OnnxPadModel(path, digest, contract=PadModelContract(channel_order="rgb"))
    assert wide.live_probability(frame, box) < rgb.live_probability(frame, box)
    # Elsewhere in the frame there is no red: attack.
    assert rgb.live_probability(frame, (20.0, 20.0, 100.0, 100.0)) < 0.01


# --- in the engine ------------------------------------------------------------------------------


def test_attack_model_rejects_a_live_clip_with_its_own_reason(
    models_dir: Path, plain_engine: LivenessEngine, turns: Clip
) -> None:
    path, digest = constant_model(models_dir / "attack.onnx", ATTACK)
    pad = OnnxPadModel(path, digest)
    without = plain_engine.analyze(turns)
    assert without.live  # the generated head passes every built-in check
    result = engine_with(plain_engine, pad).analyze(turns)
    assert not result.live
    assert result.reasons == (ReasonCode.PRESENTATION_ATTACK,)
    check = result.check("pad_model")
    assert not check.passed
    assert check.code is ReasonCode.PRESENTATION_ATTACK
    assert check.details["live_probability"] < 0.01
    assert check.details["model"] == f"operator-pad-{digest[:12]}"
    # The same frames as the passive cues, one probability each.
    assert check.details["frames"] == result.check("passive").details["frames"]
    assert len(check.details["per_frame"]) == len(check.details["frames"]) == 3
    assert result.score < 0.5
    assert describe(ReasonCode.PRESENTATION_ATTACK).message_ko


def test_live_model_leaves_the_result_as_without_a_model(
    models_dir: Path, plain_engine: LivenessEngine, turns: Clip
) -> None:
    path, digest = constant_model(models_dir / "live.onnx", LIVE)
    without = plain_engine.analyze(turns)
    result = engine_with(plain_engine, OnnxPadModel(path, digest)).analyze(turns)
    assert result.live == without.live is True
    assert result.reasons == without.reasons
    assert result.score == pytest.approx(without.score, abs=1e-6)
    assert [c.name for c in result.checks] == [*(c.name for c in without.checks), "pad_model"]
    assert result.check("pad_model").passed


def test_threshold_decides_and_score_is_half_on_it(
    models_dir: Path, plain_engine: LivenessEngine, turns: Clip
) -> None:
    # Logits (0, 0): live probability exactly 0.5.
    path, digest = constant_model(models_dir / "even.onnx", (0.0, 0.0))
    lenient = engine_with(plain_engine, OnnxPadModel(path, digest, threshold=0.5))
    strict = engine_with(plain_engine, OnnxPadModel(path, digest, threshold=0.6))
    on = lenient.analyze(turns).check("pad_model")
    assert on.passed
    assert on.score == pytest.approx(0.5)
    below = strict.analyze(turns)
    assert ReasonCode.PRESENTATION_ATTACK in below.reasons
    assert below.check("pad_model").score == pytest.approx(0.5 * 0.5 / 0.6)


def test_receipt_models_list_the_pad_model(models_dir: Path, plain_engine: LivenessEngine) -> None:
    path, digest = constant_model(models_dir / "live.onnx", LIVE)
    ids = liveness_models(engine_with(plain_engine, OnnxPadModel(path, digest)))
    assert ids[-1] == f"operator-pad-{digest[:12]}"
    assert f"operator-pad-{digest[:12]}" not in liveness_models(plain_engine)


def test_pad_evaluation_report_names_the_pad_model(
    models_dir: Path, plain_engine: LivenessEngine
) -> None:
    from faceproof.evaluation.pad_eval import _engine_info

    path, digest = constant_model(models_dir / "live.onnx", LIVE)
    info = _engine_info(engine_with(plain_engine, OnnxPadModel(path, digest, threshold=0.6)))
    pad = info["models"][-1]
    assert pad == {"id": f"operator-pad-{digest[:12]}", "sha256": digest, "threshold": 0.6}


# --- settings: the service and the CLI ------------------------------------------------------


def test_settings_require_path_and_hash_together(models_dir: Path) -> None:
    with pytest.raises(ValueError, match="together"):
        PadModelSettings(pad_model_path=models_dir / "live.onnx")
    with pytest.raises(ValueError, match="pad_model_sha256"):
        PadModelSettings(pad_model_path=models_dir / "live.onnx", pad_model_sha256="xyz")
    assert pad_model_from_settings(PadModelSettings()) is None  # unset: no cue


def test_settings_reach_the_service(models_dir: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from faceproof.api.app import create_app
    from faceproof.privacy.receipts import ReceiptSigner

    path, digest = constant_model(models_dir / "attack.onnx", ATTACK)
    signer = ReceiptSigner(Ed25519PrivateKey.generate())

    def settings(**pad: Any) -> Settings:
        return Settings(data_dir=tmp_path / "data", liveness_slots=1, **pad)

    # A wrong hash stops the app from starting: no request ever meets an unverified model.
    wrong = hashlib.sha256(b"x").hexdigest()
    with pytest.raises(ModelError) as info:
        create_app(settings(pad_model_path=path, pad_model_sha256=wrong), signer=signer)
    assert info.value.code is ReasonCode.MODEL_CHECKSUM_MISMATCH

    app = create_app(
        settings(pad_model_path=path, pad_model_sha256=digest, pad_model_threshold=0.7),
        signer=signer,
        clock=lambda: datetime(2026, 5, 1, tzinfo=UTC),
    )
    try:
        with app.state.service._liveness.take() as engine:
            assert engine.pad_model is not None
            assert engine.pad_model.model_id == f"operator-pad-{digest[:12]}"
            assert engine.pad_model.threshold == 0.7
    finally:
        app.state.service.close()
        app.state.service.db.close()


def test_settings_reach_the_cli(
    models_dir: Path,
    tmp_path: Path,
    turns: Clip,
    cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, digest = constant_model(models_dir / "attack.onnx", ATTACK)
    video = tmp_path / "turns.mp4"  # a generated head (public-domain portrait), not a person
    video.write_bytes(encode_video(turns))
    monkeypatch.setenv("FACEPROOF_PAD_MODEL_PATH", str(path))
    monkeypatch.setenv("FACEPROOF_PAD_MODEL_SHA256", digest)
    run = cli("liveness", video, "--json")
    assert run.code == 1, run.output
    doc = run.json()
    assert "presentation_attack" in doc["reasons"]
    assert doc["checks"]["pad_model"]["details"]["model"] == f"operator-pad-{digest[:12]}"

    monkeypatch.setenv("FACEPROOF_PAD_MODEL_SHA256", "0" * 64)
    run = cli("liveness", video, "--json")
    assert run.code == 4  # server-side: the model, not the clip
    assert run.json()["reasons"] == ["model_checksum_mismatch"]

    monkeypatch.delenv("FACEPROOF_PAD_MODEL_SHA256")
    run = cli("liveness", video, "--json")
    assert run.code == 4
    assert run.json()["reasons"] == ["model_load_failed"]
    assert "Traceback" not in run.output


# --- SceneKit.from_portrait (the faces benchmark's scenes) ---------------------------------


def test_scene_kit_from_any_portrait_places_the_face_like_the_example(
    landmarker: FaceMeshLandmarker,
) -> None:
    from faceproof.errors import FaceError
    from faceproof.examples import example_portrait
    from faceproof.faces.detector import YuNetDetector

    detector = YuNetDetector()
    photo = np.asarray(example_portrait(), dtype=np.uint8)
    # A tight, small crop: the frame must be filled around it, with no second face.
    crop = np.ascontiguousarray(photo[40:220, 140:300])
    for source in (photo, crop):
        kit = SceneKit.from_portrait(source, landmarker, detector)
        assert kit.portrait.shape == (480, 640, 3)
        faces = detector.detect(kit.portrait)
        assert len([f for f in faces if f.confidence >= 0.75]) == 1
        box = faces[0].box
        assert 170 <= box.width <= 210  # ~190 px, as build() places the example
        assert abs(box.center[0] - 320) < 25
        assert abs(box.center[1] - 0.42 * 480) < 30
        assert kit.mesh.shape == (468, 3)
    with pytest.raises(FaceError):
        SceneKit.from_portrait(np.full((200, 200, 3), 128, np.uint8), landmarker, detector)
