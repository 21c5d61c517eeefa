"""YuNet face detection on onnxruntime, and the choice of the subject face."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from faceproof.faces.types import BoundingBox, FaceDetection
from faceproof.models.onnx_runtime import load_onnx_session
from faceproof.models.registry import get_spec

__all__ = ["FaceDetector", "YuNetDetector", "rank_subject_faces"]

_STRIDES = (8, 16, 32)


class FaceDetector(Protocol):
    model_id: str

    def detect(self, rgb: npt.NDArray[np.uint8]) -> list[FaceDetection]: ...


class YuNetDetector:
    """YuNet 2023mar, run as OpenCV's FaceDetectorYN runs it: the image (shrunk so its long side
    is at most 640 px) is zero-padded bottom-right to a multiple of 32."""

    model_id = "yunet-2023mar-int8bq"
    input_size = 640  # the long side YuNet was exported for; larger images are shrunk to it
    _divisor = 32  # the coarsest stride

    def __init__(
        self, *, score_threshold: float = 0.5, nms_threshold: float = 0.3, threads: int = 1
    ) -> None:
        self._session = load_onnx_session(
            get_spec(self.model_id), threads=threads, dynamic_spatial=True
        )
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold

    def detect(self, rgb: npt.NDArray[np.uint8]) -> list[FaceDetection]:
        height, width = rgb.shape[:2]
        # Never upscale: on small crops, upscaled input gave worse landmarks and tripled the
        # SFace EER on the BBT crops. Large images are shrunk to fit the fixed 640 input.
        scale = min(1.0, self.input_size / max(height, width))
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        resized = (
            rgb if scale == 1.0 else cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA)
        )
        pad_h = -(-new_h // self._divisor) * self._divisor
        pad_w = -(-new_w // self._divisor) * self._divisor
        canvas = np.zeros((pad_h, pad_w, 3), dtype=np.float32)
        canvas[:new_h, :new_w] = resized[:, :, ::-1]  # YuNet was trained on BGR
        blob = canvas.transpose(2, 0, 1)[np.newaxis]
        outputs = self._session.run(None, {"input": blob})
        return self._decode(outputs, 1.0 / scale, width, height, pad_w)

    def _decode(
        self, outputs: Sequence[Any], inv_scale: float, width: int, height: int, pad_w: int
    ) -> list[FaceDetection]:
        boxes: list[list[float]] = []
        scores: list[float] = []
        points: list[npt.NDArray[np.float32]] = []
        n = len(_STRIDES)
        for i, stride in enumerate(_STRIDES):
            cols = pad_w // stride
            cls = np.clip(outputs[i].reshape(-1), 0, 1)
            obj = np.clip(outputs[i + n].reshape(-1), 0, 1)
            score = np.sqrt(cls * obj)
            keep = np.nonzero(score >= self.score_threshold)[0]
            if keep.size == 0:
                continue
            bbox = outputs[i + 2 * n].reshape(-1, 4)[keep]
            kps = outputs[i + 3 * n].reshape(-1, 10)[keep]
            col = (keep % cols).astype(np.float32)
            row = (keep // cols).astype(np.float32)
            cx = (col + bbox[:, 0]) * stride
            cy = (row + bbox[:, 1]) * stride
            w = np.exp(bbox[:, 2]) * stride
            h = np.exp(bbox[:, 3]) * stride
            for j in range(keep.size):
                boxes.append(
                    [float(cx[j] - w[j] / 2), float(cy[j] - h[j] / 2), float(w[j]), float(h[j])]
                )
                scores.append(float(score[keep[j]]))
                pts = np.empty((5, 2), dtype=np.float32)
                pts[:, 0] = (kps[j, 0::2] + col[j]) * stride
                pts[:, 1] = (kps[j, 1::2] + row[j]) * stride
                points.append(pts)
        if not boxes:
            return []
        kept = cv2.dnn.NMSBoxes(boxes, scores, self.score_threshold, self.nms_threshold)
        detections = []
        for idx in np.asarray(kept).reshape(-1):
            x, y, w, h = (v * inv_scale for v in boxes[idx])
            # Clip to the image: letterbox padding can push boxes past the real edge.
            x0, y0 = max(0.0, x), max(0.0, y)
            x1, y1 = min(float(width), x + w), min(float(height), y + h)
            if x1 - x0 < 1 or y1 - y0 < 1:
                continue
            pts = points[idx] * inv_scale
            landmarks = tuple((float(px), float(py)) for px, py in pts)
            detections.append(
                FaceDetection(
                    box=BoundingBox(x0, y0, x1 - x0, y1 - y0),
                    landmarks=landmarks,  # type: ignore[arg-type]
                    confidence=min(1.0, scores[idx]),
                )
            )
        return detections


def rank_subject_faces(
    detections: Sequence[FaceDetection], width: int, height: int
) -> list[FaceDetection]:
    """Order faces by how likely each is the subject: confident, central and not tiny.

    The largest box is not a safe choice: a blurred background produced a larger false face
    in the shared data. Confidence leads; centrality and relative size break near-ties.
    """
    if not detections:
        return []
    largest = max(d.box.width * d.box.height for d in detections)
    half_diagonal = math.hypot(width, height) / 2

    def priority(det: FaceDetection) -> float:
        cx, cy = det.box.center
        off_centre = math.hypot(cx - width / 2, cy - height / 2) / half_diagonal
        relative_size = math.sqrt(det.box.width * det.box.height / largest)
        return det.confidence + 0.15 * (1 - off_centre) + 0.15 * relative_size

    return sorted(detections, key=priority, reverse=True)
