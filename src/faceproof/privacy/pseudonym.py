"""Pseudonymous subject ids: HMAC-SHA256 under the operator's secret key, scoped per tenant.

The same person (same document number) gets the same id within one tenant, and unlinkable ids
across tenants; without the key the id cannot be reversed or recomputed.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["subject_id"]


def subject_id(key: bytes, tenant_id: str, identifier: str) -> str:
    message = f"{tenant_id}\x00{identifier.strip().upper()}".encode()
    return "sub_" + hmac.new(key, message, hashlib.sha256).hexdigest()[:32]
