"""What the clerk console needs beyond the session API: who the key is, a session's status as
a live event stream (SSE), and the capture URL as a QR code for the customer's phone."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from typing import Any

import segno
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from faceproof.reasons import ReasonCode

from .deps import AnyCaller, ServiceDep, SessionsRead, SessionsWrite
from .problems import ApiError, problem_responses
from .service import SessionState

__all__ = ["router"]

router = APIRouter()

_EVENT_POLL_SECONDS = 1.0
_KEEPALIVE_SECONDS = 15.0
_STREAM_MAX_SECONDS = 15 * 60  # the client reconnects (EventSource semantics) after this
_FINAL_STATES = {SessionState.COMPLETED, SessionState.EXPIRED}


class WhoAmI(BaseModel):
    tenant_id: str
    key_id: str
    scopes: list[str]
    store_id: str | None


class CaptureQrCreate(BaseModel):
    capture_url: str = Field(min_length=10, max_length=300)


_ERRORS = problem_responses(401, 403, 404, 422, 429)


@router.get("/v1/whoami", response_model=WhoAmI, tags=["console"], responses=_ERRORS)
def whoami(caller: AnyCaller) -> WhoAmI:
    """The calling key's tenant, scopes and store (the console shows whom it is signed in as)."""
    return WhoAmI(
        tenant_id=caller.tenant_id,
        key_id=caller.key_id,
        scopes=sorted(caller.scopes),
        store_id=caller.store_id,
    )


@router.get(
    "/v1/sessions/{session_id}/events",
    tags=["console"],
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "text/event-stream: an `event: session` with the session (as "
            "GET /v1/sessions/{id}) whenever it changes, until it is completed or expired",
            "content": {
                "text/event-stream": {
                    # A stream of `event: session` / `data: <SessionPublic JSON>` blocks.
                    "schema": {"type": "string", "format": "event-stream"}
                }
            },
        },
        **_ERRORS,
    },
)
async def session_events(
    session_id: str, request: Request, caller: SessionsRead, service: ServiceDep
) -> StreamingResponse:
    """Server-sent events of one session's status, for the clerk watching a customer."""

    def read() -> Any:
        return service.get_session(caller.tenant_id, session_id, key_store=caller.store_id)

    first = await run_in_threadpool(read)  # a 404 before the stream starts, not inside it

    async def events() -> AsyncIterator[str]:
        current, last = first, ""
        started = quiet_since = time.monotonic()
        while True:
            payload = current.model_dump_json()
            if payload != last:
                yield f"event: session\ndata: {payload}\n\n"
                last, quiet_since = payload, time.monotonic()
            elif time.monotonic() - quiet_since >= _KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"  # proxies close idle connections
                quiet_since = time.monotonic()
            if current.state in _FINAL_STATES or time.monotonic() - started > _STREAM_MAX_SECONDS:
                return
            await asyncio.sleep(_EVENT_POLL_SECONDS)
            if await request.is_disconnected():
                return
            current = await run_in_threadpool(read)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post(
    "/v1/capture-qr",
    tags=["console"],
    response_class=Response,
    responses={
        200: {"description": "the QR code as SVG", "content": {"image/svg+xml": {}}},
        **_ERRORS,
    },
)
def capture_qr(body: CaptureQrCreate, caller: SessionsWrite, service: ServiceDep) -> Response:
    """The capture URL as a QR code, for the customer's phone to scan at the counter. Only this
    service's own capture URLs: the console cannot be made to draw other links."""
    del caller  # authenticated and scoped by the dependency
    prefix = service.settings.public_base_url.rstrip("/") + "/v1/capture/"
    if not body.capture_url.startswith(prefix) or len(body.capture_url) == len(prefix):
        raise ApiError(ReasonCode.MALFORMED_REQUEST, "not a capture URL of this service")
    out = io.BytesIO()
    segno.make_qr(body.capture_url, error="m").save(
        out, kind="svg", scale=6, border=2, xmldecl=False, title="capture URL"
    )
    return Response(out.getvalue(), media_type="image/svg+xml")
