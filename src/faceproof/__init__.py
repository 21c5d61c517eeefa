"""faceproof: face authentication for identity proofing. Keeps no biometric data.

The public surface: `compare()`, `FaceComparer`, `CompareResult`, the errors and reason codes.
Heavy modules (onnxruntime, OpenCV, dlib) load on first use, so `import faceproof` stays cheap.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# onnxruntime's wheel otherwise writes a device id and an event database under ~/.cache and
# $TMPDIR when imported, and tries to upload them: a self-hosted service that keeps nothing must
# not. It is read when onnxruntime is imported; every faceproof module imports this package
# first, so setting it here (not left to the operator) covers them all.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

from faceproof.errors import (
    DataFileError,
    FaceError,
    FaceproofError,
    ImageError,
    InputError,
    ModelError,
    ServiceError,
)
from faceproof.reasons import Reason, ReasonCode, Severity, describe

if TYPE_CHECKING:
    from faceproof.comparison import CompareResult, FaceComparer, compare

__all__ = [
    "CompareResult",
    "DataFileError",
    "FaceComparer",
    "FaceError",
    "FaceproofError",
    "ImageError",
    "InputError",
    "ModelError",
    "Reason",
    "ReasonCode",
    "ServiceError",
    "Severity",
    "compare",
    "describe",
]

_LAZY = {"compare", "FaceComparer", "CompareResult"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from faceproof import comparison

        return getattr(comparison, name)
    raise AttributeError(f"module 'faceproof' has no attribute {name!r}")
