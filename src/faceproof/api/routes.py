"""HTTP routes. Thin: parse, authenticate, call the service in a thread pool, return schemas."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from faceproof.liveness.clip import DEFAULT_CLIP_LIMITS
from faceproof.reasons import ReasonCode

from .deps import CaptureLimit, ServiceDep, SessionsRead, SessionsWrite
from .problems import problem_response, problem_responses
from .schemas import (
    ActivationCreate,
    ActivationPublic,
    CaptureStatePublic,
    ChallengePublic,
    ConsentCreate,
    Jwks,
    ManualCheckCreate,
    MobileIdCreate,
    MobileIdRequest,
    SessionCreate,
    SessionCreated,
    SessionPublic,
    StatusPublic,
    StepPublic,
)
from .service import VerificationService
from .uploads import (
    FRAME_TYPES,
    IMAGE_TYPES,
    VIDEO_TYPES,
    read_clip_upload,
    read_frames_upload,
    read_image_upload,
)

__all__ = ["router"]

router = APIRouter()

# 429: rate limits; 503: models, the line registry or the database unavailable.
_PROBLEM = problem_responses(401, 403, 404, 409, 410, 413, 415, 422, 429, 503)
# The capture client's calls: bound to a capture token, rate-limited per client address.
capture = APIRouter(tags=["capture"], dependencies=[CaptureLimit], responses=_PROBLEM)
_CHALLENGE_FIELD: dict[str, Any] = {
    "type": "string",
    "description": "the challenge spec from POST .../challenge, unchanged",
}


def _multipart_body(
    file_part: str, types: frozenset[str], properties: dict[str, Any]
) -> dict[str, Any]:
    """OpenAPI for a required multipart body: `properties` (all required), whose `file_part`
    carries one of `types`."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": list(properties),
                        "properties": properties,
                    },
                    "encoding": {file_part: {"contentType": ", ".join(sorted(types))}},
                }
            },
        }
    }


_UPLOAD_BODY = _multipart_body(
    "image",
    IMAGE_TYPES,
    {
        "image": {
            "type": "string",
            "format": "binary",
            "description": "one still photo: " + ", ".join(sorted(IMAGE_TYPES)),
        }
    },
)
_CLIP_BODY = _multipart_body(
    "clip",
    VIDEO_TYPES,
    {
        "clip": {
            "type": "string",
            "format": "binary",
            "description": "the recorded clip: " + ", ".join(sorted(VIDEO_TYPES)),
        },
        "challenge": _CHALLENGE_FIELD,
    },
)
_FRAMES_BODY = _multipart_body(
    "frame",
    FRAME_TYPES,
    {
        "frame": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "minItems": 2,
            "maxItems": DEFAULT_CLIP_LIMITS.max_frames,
            "description": "the recorded frames in capture order, one part each, all of one "
            "size: " + ", ".join(sorted(FRAME_TYPES)),
        },
        "timestamps": {
            "type": "string",
            "description": "a JSON array of numbers, one per frame: milliseconds since the "
            "first frame (strictly increasing), e.g. [0, 66.7, 133.3]",
        },
        "challenge": _CHALLENGE_FIELD,
    },
)


def _upload_options(
    service: VerificationService, token: str, use: str, max_bytes: int | None = None
) -> dict[str, Any]:
    """Size cap and encryption for one capture step's upload: a part sent as
    `application/jose` is a JWE to the session's key (privacy/upload_crypto.py)."""
    return {
        "max_bytes": service.settings.max_upload_bytes if max_bytes is None else max_bytes,
        "opener": service.upload_opener(token, use),
        "require_encrypted": service.settings.require_encrypted_uploads,
    }


@router.get("/healthz", tags=["operations"], response_model=StatusPublic)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz", tags=["operations"], response_model=StatusPublic, responses=problem_responses(503)
)
def readyz(service: ServiceDep) -> Response:
    if not service.db.ping():
        return problem_response(503, ReasonCode.INTERNAL_ERROR, "database unreachable")
    return JSONResponse({"status": "ready"})


@router.get("/metrics", tags=["operations"], include_in_schema=False)
def metrics(service: ServiceDep) -> Response:
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/.well-known/jwks.json", tags=["receipts"], response_model=Jwks)
def jwks(service: ServiceDep) -> dict[str, Any]:
    return service.signer.jwks()


@router.post(
    "/v1/sessions",
    status_code=201,
    response_model=SessionCreated,
    tags=["sessions"],
    responses=_PROBLEM,
)
def create_session(
    body: SessionCreate, caller: SessionsWrite, service: ServiceDep
) -> SessionCreated:
    return service.create_session(caller.tenant_id, body, key_store=caller.store_id)


@router.get(
    "/v1/sessions/{session_id}",
    response_model=SessionPublic,
    tags=["sessions"],
    responses=_PROBLEM,
)
def get_session(session_id: str, caller: SessionsRead, service: ServiceDep) -> SessionPublic:
    return service.get_session(caller.tenant_id, session_id, key_store=caller.store_id)


@router.post(
    "/v1/sessions/{session_id}/activation",
    response_model=ActivationPublic,
    tags=["sessions"],
    responses=_PROBLEM,
)
def activate(
    session_id: str, body: ActivationCreate, caller: SessionsWrite, service: ServiceDep
) -> ActivationPublic:
    """The carrier opened the line: record it in the cross-carrier registry, alert the holder."""
    return service.activate(caller.tenant_id, session_id, body, key_store=caller.store_id)


@router.post(
    "/v1/sessions/{session_id}/manual-check",
    response_model=StepPublic,
    tags=["sessions"],
    responses=_PROBLEM,
)
def manual_check(
    session_id: str, body: ManualCheckCreate, caller: SessionsWrite, service: ServiceDep
) -> StepPublic:
    """The clerk's non-biometric path: a same-day resident-registration abstract."""
    return service.manual_check(caller.tenant_id, session_id, body, key_store=caller.store_id)


@capture.get("/v1/capture/{token}/mobile-id", response_model=MobileIdRequest)
def mobile_id_request(token: str, service: ServiceDep) -> MobileIdRequest:
    """The nonce and audience the wallet must bind its mobile-ID presentation to."""
    return service.mobile_id_request(token)


@capture.post("/v1/capture/{token}/mobile-id", response_model=StepPublic)
def mobile_id_present(token: str, body: MobileIdCreate, service: ServiceDep) -> StepPublic:
    """The non-biometric path: a mobile-ID presentation decides the session, no face data."""
    return service.mobile_id_present(token, body.presentation)


@capture.get("/v1/capture/{token}/state", response_model=CaptureStatePublic)
def capture_state(token: str, service: ServiceDep) -> CaptureStatePublic:
    """Where the session stands, for the capture page (resume after a reload)."""
    return service.capture_state(token)


@capture.post("/v1/capture/{token}/extend", response_model=CaptureStatePublic)
def extend(token: str, service: ServiceDep) -> CaptureStatePublic:
    """More time: the capture link lives another full TTL (at most to the session's expiry)."""
    return service.extend(token)


@capture.post("/v1/capture/{token}/consent", response_model=StepPublic)
def consent(token: str, body: ConsentCreate, service: ServiceDep) -> StepPublic:
    return service.consent(token, body.choice)


@capture.post(
    "/v1/capture/{token}/document",
    response_model=StepPublic,
    openapi_extra=_UPLOAD_BODY,
)
async def document(token: str, request: Request, service: ServiceDep) -> StepPublic:
    image = await read_image_upload(request, **_upload_options(service, token, "document"))
    return await run_in_threadpool(service.document, token, image)


@capture.post(
    "/v1/capture/{token}/selfie",
    response_model=StepPublic,
    openapi_extra=_UPLOAD_BODY,
)
async def selfie(token: str, request: Request, service: ServiceDep) -> StepPublic:
    image = await read_image_upload(request, **_upload_options(service, token, "selfie"))
    return await run_in_threadpool(service.selfie, token, image)


@capture.post("/v1/capture/{token}/challenge", response_model=ChallengePublic)
def challenge(token: str, service: ServiceDep) -> ChallengePublic:
    return service.challenge(token)


@capture.post(
    "/v1/capture/{token}/clip",
    response_model=StepPublic,
    openapi_extra=_CLIP_BODY,
)
async def clip(token: str, request: Request, service: ServiceDep) -> StepPublic:
    options = _upload_options(service, token, "clip", service.settings.max_clip_bytes)
    data, spec = await read_clip_upload(request, **options)
    return await run_in_threadpool(service.clip, token, spec, data)


@capture.post(
    "/v1/capture/{token}/frames",
    response_model=StepPublic,
    openapi_extra=_FRAMES_BODY,
)
async def frames(token: str, request: Request, service: ServiceDep) -> StepPublic:
    """The liveness attempt as still frames with timestamps (an SDK's alternative to a video):
    unusable frames are a 422 with their code before the challenge or an attempt is used."""
    options = _upload_options(service, token, "frames", service.settings.max_clip_bytes)
    upload = await read_frames_upload(request, max_frames=DEFAULT_CLIP_LIMITS.max_frames, **options)
    return await run_in_threadpool(
        service.frames, token, upload.challenge, upload.frames, upload.timestamps
    )


router.include_router(capture)
