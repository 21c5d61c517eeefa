"""The HTTP service: FastAPI app factory, problem+json errors, sessions and capture routes."""

from faceproof.api.app import create_app

__all__ = ["create_app"]
