"""Errors as RFC 9457 problem+json, with the faceproof reason code in `code`.

Every FaceproofError is translated here, once, at the API edge. Validation errors become 422
`malformed_request`; a database that cannot be reached or written (PostgreSQL restarting, a full
disk) becomes 503 `internal_error` with `Retry-After` (the unit of work was rolled back: nothing
was decided); anything unexpected becomes a bare 500 `internal_error` (logged with its type
only, never returned with details or a traceback).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from faceproof.errors import FaceproofError, InputError
from faceproof.reasons import ReasonCode, describe

from .schemas import Problem

__all__ = [
    "PROBLEM_JSON",
    "ApiError",
    "install_problem_handlers",
    "problem_response",
    "problem_responses",
]

PROBLEM_JSON = "application/problem+json"
_log = logging.getLogger("faceproof.api")

_STATUS: dict[ReasonCode, int] = {
    ReasonCode.UNAUTHORIZED: 401,
    ReasonCode.FORBIDDEN_SCOPE: 403,
    ReasonCode.SESSION_NOT_FOUND: 404,
    ReasonCode.TOKEN_INVALID: 404,
    ReasonCode.SESSION_EXPIRED: 410,
    ReasonCode.TOKEN_EXPIRED: 410,
    ReasonCode.SESSION_STATE: 409,
    ReasonCode.TOKEN_REPLAYED: 409,
    ReasonCode.CONSENT_REQUIRED: 409,
    ReasonCode.ATTEMPTS_EXHAUSTED: 409,
    ReasonCode.CHALLENGE_UNKNOWN: 409,
    ReasonCode.CHALLENGE_EXPIRED: 410,
    ReasonCode.PAYLOAD_TOO_LARGE: 413,
    ReasonCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ReasonCode.UPLOAD_NOT_ENCRYPTED: 415,
    ReasonCode.MALFORMED_REQUEST: 422,
    ReasonCode.RATE_LIMITED: 429,
    ReasonCode.ACTIVATION_SUBJECT_MISMATCH: 422,
    ReasonCode.MOBILE_ID_NOT_CONFIGURED: 409,
    ReasonCode.INTERNAL_ERROR: 500,
}


class ApiError(InputError):
    """A service-level refusal; its HTTP status follows from the reason code."""

    def __init__(
        self, code: ReasonCode, detail: str | None = None, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(code, detail)
        self.http_status = _STATUS.get(code, 400)
        self.headers = dict(headers or {})


def problem_response(
    status: int,
    code: ReasonCode,
    detail: str | None = None,
    *,
    instance: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    reason = describe(code)
    body: dict[str, Any] = {
        "type": f"urn:faceproof:reason:{code.value}",
        "title": reason.message_en,
        "status": status,
        "detail": detail or reason.message_en,
        "code": code.value,
        "message_ko": reason.message_ko,
    }
    if instance:
        body["instance"] = instance
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for error statuses: problem+json bodies with the `Problem` schema."""
    content = {PROBLEM_JSON: {"schema": Problem.model_json_schema()}}
    return {
        status: {"description": "problem+json with a reason code", "content": content}
        for status in statuses
    }


def _route(request: Request) -> str:
    """The route template (`/v1/capture/{token}/selfie`), never the raw path: no token echoes."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def _safe_context(context: dict[str, Any]) -> dict[str, Any]:
    """Only scalar context (sizes, limits, labels) goes to the client."""
    return {k: v for k, v in context.items() if isinstance(v, str | int | float | bool)}


async def _faceproof_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FaceproofError)
    status = exc.http_status
    headers = dict(exc.headers) if isinstance(exc, ApiError) else {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status >= 500:
        _log.warning("service error %s on %s", exc.code.value, _route(request))
    extra = {"context": _safe_context(exc.context)} if _safe_context(exc.context) else None
    return problem_response(
        status, exc.code, exc.detail, instance=_route(request), extra=extra, headers=headers or None
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Field locations and messages only; never the submitted input values.
    errors = [
        {"loc": [str(part) for part in err.get("loc", ())], "msg": str(err.get("msg", ""))}
        for err in exc.errors()
    ]
    return problem_response(
        422,
        ReasonCode.MALFORMED_REQUEST,
        instance=_route(request),
        extra={"errors": errors},
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    # FastAPI answers a body it cannot parse at all (e.g. not UTF-8) with a bare 400; like
    # invalid JSON, that is a malformed request: 422, the one documented status for it.
    status = 422 if exc.status_code == 400 else exc.status_code
    return problem_response(
        status,
        ReasonCode.MALFORMED_REQUEST,
        str(exc.detail),
        instance=_route(request),
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # Handled here, not by the catch-all: Starlette re-raises what reaches the catch-all, so
    # the client would lose the connection and the log would get a traceback.
    _log.warning("database unavailable (%s) on %s", type(exc).__name__, _route(request))
    return problem_response(
        503,
        ReasonCode.INTERNAL_ERROR,
        "The database is unavailable: the step was not completed. Try again.",
        instance=_route(request),
        headers={"Retry-After": "2"},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    _log.error("unexpected %s on %s", type(exc).__name__, _route(request))
    return problem_response(500, ReasonCode.INTERNAL_ERROR)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FaceproofError, _faceproof_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for unavailable in (OperationalError, InterfaceError, PoolTimeoutError):
        app.add_exception_handler(unavailable, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)
