"""Tenants and scoped API keys. Only a SHA-256 of each key is stored.

A key is `fpk_<prefix>_<secret>`: the prefix (public, unique) finds the row, the SHA-256 of the
whole key is compared in constant time. Unknown prefixes are compared against a dummy hash so
that a miss costs the same as a wrong secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from faceproof.storage.audit import append_audit
from faceproof.storage.models import ApiKey, Tenant

__all__ = [
    "Scope",
    "authenticate_key",
    "bootstrap_development_tenant",
    "create_api_key",
    "create_tenant",
    "hash_secret",
    "list_tenants",
    "revoke_api_key",
]

_KEY_PREFIX = "fpk"
_DUMMY_HASH = hashlib.sha256(b"faceproof-dummy-key").hexdigest()


class Scope(StrEnum):
    SESSIONS_WRITE = "sessions:write"
    SESSIONS_READ = "sessions:read"
    ADMIN = "admin"


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def create_tenant(db: DbSession, name: str, *, now: datetime) -> Tenant:
    tenant = Tenant(id=f"ten_{uuid.uuid4().hex[:20]}", name=name, created_at=now, active=True)
    db.add(tenant)
    db.flush()
    append_audit(db, "tenant.created", now=now, tenant_id=tenant.id)
    return tenant


def bootstrap_development_tenant(
    db: DbSession, *, now: datetime, store_id: str = "store-001"
) -> dict[str, str] | None:
    """On a development service's first start (no tenant yet): a tenant with a store key (the
    clerk console) and an admin key (the dashboard), so that the web pages work at once. Returns
    the plaintext keys to show once, or None when a tenant exists already."""
    if db.scalars(select(Tenant.id).limit(1)).first() is not None:
        return None
    tenant = create_tenant(db, "development", now=now)
    rw = [Scope.SESSIONS_WRITE, Scope.SESSIONS_READ]
    _, store_key = create_api_key(
        db, tenant.id, rw, now=now, label="development store", store_id=store_id
    )
    _, admin_key = create_api_key(db, tenant.id, [Scope.ADMIN], now=now, label="development")
    return {"tenant": tenant.id, "store": store_id, "store_key": store_key, "admin_key": admin_key}


def list_tenants(db: DbSession) -> list[Tenant]:
    return list(db.scalars(select(Tenant).order_by(Tenant.created_at, Tenant.id)))


def create_api_key(
    db: DbSession,
    tenant_id: str,
    scopes: list[Scope],
    *,
    now: datetime,
    label: str = "",
    store_id: str | None = None,
) -> tuple[ApiKey, str]:
    """The stored row and the plaintext key (shown once, never stored). A `store_id` limits
    the key to that store's sessions (a clerk's console)."""
    if db.get(Tenant, tenant_id) is None:
        raise LookupError(f"no tenant {tenant_id}")
    prefix = secrets.token_hex(8)
    plaintext = f"{_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        id=f"key_{uuid.uuid4().hex[:20]}",
        tenant_id=tenant_id,
        prefix=prefix,
        key_hash=hash_secret(plaintext),
        scopes=" ".join(sorted({s.value for s in scopes})),
        label=label,
        created_at=now,
        store_id=store_id,
    )
    db.add(key)
    db.flush()
    append_audit(
        db,
        "api_key.created",
        now=now,
        tenant_id=tenant_id,
        data={"key_id": key.id, "scopes": key.scopes, "store_id": store_id},
    )
    return key, plaintext


def revoke_api_key(db: DbSession, key_id: str, *, now: datetime) -> bool:
    key = db.get(ApiKey, key_id)
    if key is None:
        return False
    if key.revoked_at is None:
        key.revoked_at = now
        append_audit(
            db, "api_key.revoked", now=now, tenant_id=key.tenant_id, data={"key_id": key_id}
        )
    return True


def authenticate_key(db: DbSession, presented: str) -> ApiKey | None:
    """The active key matching `presented`, or None. Constant time in the secret."""
    parts = presented.split("_", 2)
    prefix = parts[1] if len(parts) == 3 and parts[0] == _KEY_PREFIX else ""
    key = db.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).first() if prefix else None
    stored = key.key_hash if key is not None else _DUMMY_HASH
    ok = hmac.compare_digest(stored, hash_secret(presented))
    if key is None or not ok or key.revoked_at is not None:
        return None
    tenant = db.get(Tenant, key.tenant_id)
    if tenant is None or not tenant.active:
        return None
    return key
