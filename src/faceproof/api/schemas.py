"""Request and response bodies. Routes return `*Public` schemas, never table rows."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CaptureStatePublic",
    "ChallengeAction",
    "ChallengePublic",
    "Channel",
    "ConsentChoice",
    "ConsentCreate",
    "DecisionPublic",
    "Jwk",
    "Jwks",
    "Problem",
    "Purpose",
    "SessionCreate",
    "SessionCreated",
    "SessionPublic",
    "StatusPublic",
    "StepPublic",
]


class Channel(StrEnum):
    IN_STORE = "in_store"
    ONLINE = "online"


class Purpose(StrEnum):
    NEW_LINE = "new_line"
    PORT_IN = "port_in"


class ConsentChoice(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionBase(_Strict):
    store_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    channel: Channel
    purpose: Purpose
    locale: str = Field(default="ko-KR", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")


class SessionCreate(SessionBase):
    pass


class ReasonPublic(BaseModel):
    code: str
    severity: str
    message_en: str
    message_ko: str


class DecisionPublic(BaseModel):
    decision: str
    reasons: list[str]
    messages: list[ReasonPublic]
    receipt: str
    decided_at: datetime


class AttemptPublic(BaseModel):
    number: int
    outcome: str
    reasons: list[str]


class SessionPublic(SessionBase):
    id: str
    state: str
    created_at: datetime
    expires_at: datetime
    attempts_used: int
    attempts_limit: int
    consent: str | None
    attempts: list[AttemptPublic]
    decision: DecisionPublic | None


class SessionCreated(SessionPublic):
    capture_url: str
    capture_token_expires_at: datetime


class ConsentCreate(_Strict):
    choice: ConsentChoice


class DocumentCheckPublic(BaseModel):
    name: str
    passed: bool
    code: str


class DocumentPublic(BaseModel):
    """The document step's result: no field values, no numbers."""

    status: str  # verified | unverified | rejected
    type: str | None
    checks: list[DocumentCheckPublic]
    # The subscription policy's outcome (decision, reasons, rules version, counts), when checked.
    policy: dict[str, Any] | None = None


class StepPublic(BaseModel):
    """What a capture step did: the session's state and, once final, the decision."""

    session_id: str
    state: str
    outcome: str | None = None  # the attempt's outcome (selfie) or step result
    reasons: list[str] = []
    messages: list[ReasonPublic] = []
    attempts_used: int
    attempts_left: int
    document: DocumentPublic | None = None  # the document step only
    decision: DecisionPublic | None = None


class CaptureStatePublic(StepPublic):
    """Where a capture session stands, for the capture page (e.g. after a reload)."""

    locale: str
    channel: str
    # The capture link works until then; `POST .../extend` moves it on (WCAG 2.2.1: a time
    # limit the person can extend), never past the session's own expiry.
    token_expires_at: datetime
    session_expires_at: datetime
    # The session's P-256 public key (JWK): encrypt photos and clips to it as a compact JWE
    # (alg ECDH-ES, enc A256GCM, `cty`, `fp_use`) and send them as `application/jose` parts.
    upload_key: dict[str, str]
    uploads_must_be_encrypted: bool


class ChallengeAction(BaseModel):
    action: str  # turn_left | turn_right | look_up | blink | open_mouth
    start_s: float  # seconds from the clip's first frame
    end_s: float


class ChallengePublic(BaseModel):
    """A signed liveness challenge: send `challenge` back unchanged with the clip."""

    challenge: str
    actions: list[ChallengeAction]
    record_seconds: float  # record at least this long, starting with a neutral, frontal face
    issued_at: datetime
    expires_at: datetime


class ActivationCreate(_Strict):
    """The carrier confirms a line for a passed session (`POST /v1/sessions/{id}/activation`)."""

    line_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    # The holder's registration number as printed on the card: checked against the session's
    # pseudonymous subject, sent on to the line registry, and not stored.
    number: str = Field(min_length=6, max_length=20, pattern=r"^[0-9A-Za-z-]+$")
    # The holder's contact on file (phone or e-mail) for the new-line alert; optional.
    contact: str | None = Field(default=None, max_length=200)


class ActivationPublic(BaseModel):
    session_id: str
    line_id: str
    recorded: bool
    alert_sent: bool


class MobileIdRequest(BaseModel):
    """What the wallet must bind its presentation to."""

    nonce: str
    audience: str


class MobileIdCreate(_Strict):
    presentation: str = Field(min_length=10, max_length=128 * 1024)


class ManualCheckCreate(_Strict):
    """A clerk's check of a same-day resident-registration abstract (no biometrics)."""

    clerk_id: str = Field(min_length=2, max_length=64)
    document_serial: str = Field(min_length=6, max_length=32)
    abstract_issued_on: date
    holder_matches: bool
    # The registration number on the abstract: for the subscription rules and the subject
    # pseudonym; not stored.
    number: str = Field(min_length=6, max_length=20, pattern=r"^[0-9A-Za-z-]+$")


class Problem(BaseModel):
    """An error, RFC 9457 problem+json, with the faceproof reason code in `code`."""

    type: str  # urn:faceproof:reason:<code>
    title: str
    status: int
    detail: str
    code: str
    message_ko: str
    instance: str | None = None  # the route template, never the raw path
    context: dict[str, str | int | float | bool] | None = None  # sizes, limits, labels
    errors: list[dict[str, str | list[str]]] | None = None  # malformed_request: {loc, msg}


class StatusPublic(BaseModel):
    status: str  # ok | ready


class Jwk(BaseModel):
    """One receipt verification key: OKP/Ed25519, public only."""

    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class Jwks(BaseModel):
    keys: list[Jwk]
