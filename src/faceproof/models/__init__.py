"""Pinned, checksummed models and the runtimes that load them."""

from faceproof.models.registry import (
    REGISTRY,
    ModelSpec,
    get_spec,
    operator_recogniser_spec,
    resolve_model_file,
    sha256_file,
)

__all__ = [
    "REGISTRY",
    "ModelSpec",
    "get_spec",
    "operator_recogniser_spec",
    "resolve_model_file",
    "sha256_file",
]
