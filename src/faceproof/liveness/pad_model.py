"""An operator-supplied ONNX presentation-attack-detection (PAD) model: one more liveness cue.

faceproof ships no learned PAD model; the default engine works without one. An operator may plug
one in by path plus its SHA-256 (`FACEPROOF_PAD_MODEL_PATH`, `FACEPROOF_PAD_MODEL_SHA256`):
nothing is downloaded, the file is checked against the hash at load and refused on a mismatch
(`ModelError(model_checksum_mismatch)`), and a file that is not ONNX or does not fit the input
contract fails at load (`ModelError(model_load_failed)`), never at the first request.

`PadModelContract` describes what the model expects. Its defaults are MiniFASNet's published
convention (minivision Silent-Face-Anti-Spoofing, e.g. `2.7_80x80_MiniFASNetV2`): the face box
enlarged `crop_scale` times about its centre (the factor shrunk so the square fits the frame,
then shifted inside it), resized to 80x80, BGR, float 0..255 (their `to_tensor` does not divide
by 255), NCHW; the output is logits over 3 classes, softmax, index 1 = live.

`OnnxPadModel.live_probability` scores one frame; the engine (`LivenessEngine._pad_model`) runs
it on the frames its passive-cue check picked and takes the median. Crops live in memory only.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from faceproof.errors import ModelError
from faceproof.models.registry import ModelSpec, operator_model_spec
from faceproof.reasons import ReasonCode

if TYPE_CHECKING:
    import onnxruntime as ort

    from faceproof.settings import PadModelSettings

__all__ = [
    "PAD_MODEL_ID",
    "OnnxPadModel",
    "PadModel",
    "PadModelContract",
    "crop_box",
    "operator_pad_spec",
    "pad_model_from_env",
    "pad_model_from_settings",
]

PAD_MODEL_ID = "operator-pad"

Box = tuple[float, float, float, float]  # x, y, width, height in frame pixels


class PadModel(Protocol):
    """What the engine needs from a PAD cue (tests may pass any object with these)."""

    model_id: str  # goes into receipts: the id with the file's SHA-256 prefix
    threshold: float

    def live_probability(self, frame: npt.NDArray[np.uint8], box: Box) -> float: ...


@dataclass(frozen=True, slots=True)
class PadModelContract:
    """The model's input and output convention (defaults: MiniFASNetV2 at 80x80)."""

    input_size: int = 80  # square input, pixels
    crop_scale: float = 2.7  # face box side x this = the crop (MiniFASNetV1SE uses 4.0)
    channel_order: Literal["bgr", "rgb"] = "bgr"
    pixel_scale: float = 1.0  # input value = pixel (0..255) * pixel_scale + pixel_offset
    pixel_offset: float = 0.0
    output: Literal["logits", "probabilities"] = "logits"  # logits: softmax is applied
    live_index: int = 1  # the class that means "live"

    def __post_init__(self) -> None:
        problems = []
        if not 16 <= self.input_size <= 1024:
            problems.append("input_size must be 16..1024")
        if not 1.0 <= self.crop_scale <= 6.0:
            problems.append("crop_scale must be 1..6")
        if self.channel_order not in ("bgr", "rgb"):
            problems.append("channel_order must be bgr or rgb")
        if self.output not in ("logits", "probabilities"):
            problems.append("output must be logits or probabilities")
        if self.live_index < 0:
            problems.append("live_index must be >= 0")
        if not (math.isfinite(self.pixel_scale) and self.pixel_scale > 0):
            problems.append("pixel_scale must be > 0")
        if problems:
            raise ModelError(
                ReasonCode.MODEL_LOAD_FAILED, "PAD model contract: " + "; ".join(problems)
            )


def operator_pad_spec(path: str | os.PathLike[str], sha256: str) -> ModelSpec:
    """The operator's PAD model as a `ModelSpec`, so it is verified like every other model."""
    return operator_model_spec(
        path,
        sha256,
        model_id=f"{PAD_MODEL_ID}-{sha256.lower()[:12]}",
        task="pad",
        input_spec="NCHW float face crop (PadModelContract; default MiniFASNetV2 80x80 BGR)",
        accuracy_card="not measured by faceproof (docs/liveness.md, Operator PAD model)",
    )


def crop_box(
    frame_width: int, frame_height: int, box: Box, scale: float
) -> tuple[int, int, int, int]:
    """MiniFASNet's crop: the box scaled about its centre, the factor reduced so it fits the
    frame, then shifted inside it. Returns x0, y0, x1, y1 (inclusive)."""
    x, y, w, h = box
    w, h = max(w, 1.0), max(h, 1.0)
    scale = min((frame_height - 1) / h, (frame_width - 1) / w, scale)
    new_w, new_h = w * scale, h * scale
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = cx - new_w / 2, cy - new_h / 2
    x1, y1 = cx + new_w / 2, cy + new_h / 2
    if x0 < 0:
        x1, x0 = x1 - x0, 0.0
    if y0 < 0:
        y1, y0 = y1 - y0, 0.0
    if x1 > frame_width - 1:
        x0, x1 = x0 - (x1 - frame_width + 1), float(frame_width - 1)
    if y1 > frame_height - 1:
        y0, y1 = y0 - (y1 - frame_height + 1), float(frame_height - 1)
    return int(max(0.0, x0)), int(max(0.0, y0)), int(x1), int(y1)


class OnnxPadModel:
    """A verified onnxruntime session (one thread) with its contract and decision threshold.

    `run` is thread-safe in onnxruntime, so one instance may serve several engines.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sha256: str,
        *,
        contract: PadModelContract | None = None,
        threshold: float = 0.5,
        threads: int = 1,
    ) -> None:
        from faceproof.models.onnx_runtime import load_onnx_session

        if not 0.0 <= threshold <= 1.0:
            raise ModelError(ReasonCode.MODEL_LOAD_FAILED, "PAD threshold must be in [0, 1]")
        self.contract = contract or PadModelContract()
        self.threshold = threshold
        self.spec = operator_pad_spec(path, sha256)
        self.model_id = self.spec.model_id
        self.sha256 = self.spec.sha256
        self._session: ort.InferenceSession = load_onnx_session(self.spec, threads=threads)
        self._input = self._check_input()
        self._check_output()

    def _fail(self, why: str) -> ModelError:
        return ModelError(ReasonCode.MODEL_LOAD_FAILED, f"{self.model_id}: {why}")

    def _check_input(self) -> str:
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise self._fail(f"expected one input (a face crop), the model has {len(inputs)}")
        shape = list(inputs[0].shape)
        if len(shape) != 4:
            raise self._fail(
                f"input must be N x 3 x H x W (rank 4), the model's has rank {len(shape)}"
            )
        if inputs[0].type != "tensor(float)":
            raise self._fail(f"input must be float32, the model's is {inputs[0].type}")
        size = self.contract.input_size
        for axis, want in ((1, 3), (2, size), (3, size)):
            if isinstance(shape[axis], int) and shape[axis] != want:
                raise self._fail(f"input shape {shape} does not fit 1 x 3 x {size} x {size}")
        return str(inputs[0].name)

    def _check_output(self) -> None:
        """A dry run on a grey crop: the output must hold the live class and be finite."""
        size = self.contract.input_size
        blob = np.full((1, 3, size, size), 128.0 * self.contract.pixel_scale, np.float32)
        try:
            scores = self._scores(blob)
        except ModelError:
            raise
        except Exception as exc:  # onnxruntime raises its own unrelated types
            raise self._fail(f"a dry run failed ({type(exc).__name__})") from exc
        if scores.size < 2 or scores.size <= self.contract.live_index:
            raise self._fail(
                f"output has {scores.size} class(es); live_index {self.contract.live_index} "
                "needs more"
            )
        if not np.all(np.isfinite(scores)):
            raise self._fail("output is not finite on a grey crop")

    def _scores(self, blob: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        outputs = self._session.run(None, {self._input: blob})
        return np.asarray(outputs[0], dtype=np.float64).reshape(-1)

    def preprocess(self, frame: npt.NDArray[np.uint8], box: Box) -> npt.NDArray[np.float32]:
        """The contract's 1 x 3 x S x S input for the face at `box` in an RGB frame."""
        c = self.contract
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = crop_box(w, h, box, c.crop_scale)
        patch = np.ascontiguousarray(frame[y0 : y1 + 1, x0 : x1 + 1])
        if patch.size == 0:
            patch = np.ascontiguousarray(frame)
        resized = cv2.resize(patch, (c.input_size, c.input_size), interpolation=cv2.INTER_LINEAR)
        if c.channel_order == "bgr":
            resized = resized[:, :, ::-1]
        chw = resized.transpose(2, 0, 1).astype(np.float32) * c.pixel_scale + c.pixel_offset
        out: npt.NDArray[np.float32] = np.ascontiguousarray(chw[None], dtype=np.float32)
        return out

    def live_probability(self, frame: npt.NDArray[np.uint8], box: Box) -> float:
        """The model's probability (0..1) that the face at `box` in this RGB frame is live."""
        try:
            scores = self._scores(self.preprocess(frame, box))
        except Exception as exc:  # a model that passed the dry run should not fail here
            raise ModelError(
                ReasonCode.MODEL_LOAD_FAILED,
                f"{self.model_id} failed to run ({type(exc).__name__})",
            ) from exc
        if self.contract.output == "logits":
            shifted = np.exp(scores - scores.max())
            probs = shifted / shifted.sum()
        else:
            probs = np.clip(scores, 0.0, 1.0)
        value = float(probs[self.contract.live_index])
        return value if math.isfinite(value) else 0.0


def pad_model_from_settings(settings: PadModelSettings) -> OnnxPadModel | None:
    """The operator's PAD model from `FACEPROOF_PAD_MODEL_*`, loaded and verified; None if unset."""
    if settings.pad_model_path is None or settings.pad_model_sha256 is None:
        return None
    contract = PadModelContract(
        input_size=settings.pad_model_input_size,
        crop_scale=settings.pad_model_crop_scale,
        channel_order=settings.pad_model_channel_order,
        pixel_scale=settings.pad_model_pixel_scale,
        pixel_offset=settings.pad_model_pixel_offset,
        output=settings.pad_model_output,
        live_index=settings.pad_model_live_index,
    )
    return OnnxPadModel(
        settings.pad_model_path,
        settings.pad_model_sha256,
        contract=contract,
        threshold=settings.pad_model_threshold,
    )


def pad_model_from_env() -> OnnxPadModel | None:
    """As `pad_model_from_settings`, reading only `FACEPROOF_PAD_MODEL_*` (for the offline CLI,
    which must not need the service's secrets); bad values are a `ModelError`."""
    from pydantic import ValidationError

    from faceproof.settings import PadModelSettings

    try:
        settings = PadModelSettings()
    except ValidationError as exc:
        fields = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]}))
        why = fields or "path and SHA-256 go together"
        raise ModelError(
            ReasonCode.MODEL_LOAD_FAILED, f"FACEPROOF_PAD_MODEL_* settings are invalid ({why})"
        ) from None
    return pad_model_from_settings(settings)
