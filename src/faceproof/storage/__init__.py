"""Persistence for non-biometric records: tenants, keys, sessions, decisions, audit log."""

from faceproof.storage.db import Database, upgrade

__all__ = ["Database", "upgrade"]
