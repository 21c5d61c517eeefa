"""Dependencies through `Annotated`: the service, and API-key authentication with scopes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from faceproof.reasons import ReasonCode
from faceproof.storage.tenants import Scope, authenticate_key

from .problems import ApiError
from .service import VerificationService

__all__ = [
    "AdminOnly",
    "AnyCaller",
    "Caller",
    "CaptureLimit",
    "ServiceDep",
    "SessionsRead",
    "SessionsWrite",
]

_bearer = HTTPBearer(auto_error=False)


def get_service(request: Request) -> VerificationService:
    service = request.app.state.service
    assert isinstance(service, VerificationService)
    return service


ServiceDep = Annotated[VerificationService, Depends(get_service)]


@dataclass(frozen=True)
class Caller:
    tenant_id: str
    key_id: str
    scopes: frozenset[str]
    store_id: str | None = None  # a store's key sees only that store's sessions


def _caller(
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(ReasonCode.UNAUTHORIZED)
    with service.db.session() as db:
        key = authenticate_key(db, credentials.credentials)
        if key is None:
            raise ApiError(ReasonCode.UNAUTHORIZED)
        caller = Caller(key.tenant_id, key.id, frozenset(key.scopes.split()), key.store_id)
    service.tenant_limiter.hit(caller.tenant_id)
    return caller


def _client_limit(request: Request, service: ServiceDep) -> None:
    host = request.client.host if request.client else "unknown"
    service.client_limiter.hit(host)


CaptureLimit = Depends(_client_limit)


def _requiring(scope: Scope) -> Callable[[Caller], Caller]:
    """A dependency that demands `scope` (`admin` implies every scope)."""

    def check(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
        if scope.value not in caller.scopes and Scope.ADMIN.value not in caller.scopes:
            raise ApiError(ReasonCode.FORBIDDEN_SCOPE, f"this key lacks the {scope.value} scope")
        return caller

    return check


AnyCaller = Annotated[Caller, Depends(_caller)]  # any valid key, whatever its scopes
SessionsWrite = Annotated[Caller, Depends(_requiring(Scope.SESSIONS_WRITE))]
SessionsRead = Annotated[Caller, Depends(_requiring(Scope.SESSIONS_READ))]


def _tenant_admin(caller: Annotated[Caller, Depends(_requiring(Scope.ADMIN))]) -> Caller:
    """The `admin` scope, on a key of the whole tenant: a store's key sees only its store."""
    if caller.store_id is not None:
        raise ApiError(ReasonCode.FORBIDDEN_SCOPE, "a store's key cannot read tenant-wide data")
    return caller


AdminOnly = Annotated[Caller, Depends(_tenant_admin)]  # the carrier's admin (dashboard, audit)
