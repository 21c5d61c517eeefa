"""Signed webhooks: a carrier's backend is told when a session is decided and when a line is
activated, instead of polling.

- **Registration** (`admin` scope, a tenant-wide key): `POST /v1/webhooks` `{url, events}` gives
  the webhook and its signing secret, shown once; `GET /v1/webhooks`; `DELETE
  /v1/webhooks/{id}`. URLs: `https://` to a public host in production; a development
  service delivers only to this machine (loopback, `http://` or `https://`). No credentials, no
  fragment, at most 500 characters.
- **The secret at rest**: signing needs the secret itself, so a hash cannot do; it is sealed
  with AES-256-GCM under the service's webhook key (`FACEPROOF_WEBHOOK_KEY`, or derived from
  the challenge key), bound to the row's tenant and id. A database dump alone reveals no secret,
  and the API never returns it again.
- **The outbox**: `enqueue_event` writes one `webhook_deliveries` row per matching webhook in
  the transaction that stores the decision (`VerificationService._finalise`) or records the
  activation: if the process dies, the event is still there, and no event exists for a decision
  that was rolled back. The event id is derived from the event (type, tenant, session, line), so
  a line confirmed twice is one event.
- **Delivery**: `WebhookDispatcher`, one background thread per worker (started and stopped with
  the app's lifespan), claims due deliveries with a conditional `UPDATE` (several workers never
  send the same try twice; a claim is a lease, so a worker that dies mid-delivery only delays
  it), POSTs the stored body with `Faceproof-Event-Id`, `Faceproof-Timestamp` and
  `Faceproof-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`, no redirects, no proxy
  from the environment, a short timeout; any answer but 2xx is retried with full-jitter
  exponential backoff (`faceproof.resilience.RetryPolicy`) until `webhook_max_attempts`, then the
  delivery is `failed`.
- `verify_webhook_signature` is what a receiver runs (docs/service.md has a standalone copy).

The body holds the session id, the decision, its reason codes and the signed receipt (and the
carrier's line id for `line.activated`): no image, no template, no registration number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import random
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session as DbSession

from faceproof.reasons import ReasonCode
from faceproof.resilience import RetryPolicy
from faceproof.settings import Settings
from faceproof.storage.audit import append_audit, canonical_json
from faceproof.storage.db import Database
from faceproof.storage.models import Decision, Webhook, WebhookDelivery

from .deps import AdminOnly, ServiceDep
from .problems import ApiError, problem_responses

__all__ = [
    "EVENT_ID_HEADER",
    "MAX_WEBHOOKS_PER_TENANT",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookDispatcher",
    "WebhookEvent",
    "check_webhook_url",
    "enqueue_event",
    "open_secret",
    "router",
    "seal_secret",
    "sign_webhook",
    "verify_webhook_signature",
]

_log = logging.getLogger("faceproof.webhooks")

EVENT_ID_HEADER = "Faceproof-Event-Id"
TIMESTAMP_HEADER = "Faceproof-Timestamp"
SIGNATURE_HEADER = "Faceproof-Signature"
MAX_WEBHOOKS_PER_TENANT = 10
URL_MIN_LENGTH, URL_MAX_LENGTH = 10, 500
_HOST = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?$")
_SEAL_VERSION = "v1"
_BATCH = 10


class WebhookEvent(StrEnum):
    SESSION_DECIDED = "session.decided"
    LINE_ACTIVATED = "line.activated"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERING = "delivering"  # claimed by a worker until `lease_until`
    DELIVERED = "delivered"
    FAILED = "failed"


# --- schemas ------------------------------------------------------------------------------------


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=URL_MIN_LENGTH, max_length=URL_MAX_LENGTH)
    events: list[WebhookEvent] = Field(min_length=1, max_length=len(WebhookEvent))


class WebhookPublic(BaseModel):
    id: str
    url: str
    events: list[WebhookEvent]
    created_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(
        description="The signing secret (HMAC-SHA256 key, its UTF-8 bytes): shown only now"
    )


def _error(code: ReasonCode, status: int, detail: str | None = None) -> ApiError:
    """An ApiError with the webhook API's status (problems._STATUS lists the session codes)."""
    error = ApiError(code, detail)
    error.http_status = status
    return error


# --- URLs ---------------------------------------------------------------------------------------


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_loopback(host: str) -> bool:
    name = host.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    ip = _ip(name)
    return ip is not None and ip.is_loopback


def check_webhook_url(url: str, *, production: bool) -> str:
    """`url` if a webhook may be sent there, else a 422 `webhook_url_invalid` saying why.

    Production: `https://` to a host that is not loopback, private, link-local or otherwise
    non-global as an IP literal (names are not resolved here: see docs/service.md). Development:
    loopback only (`http://` or `https://`), so a development service never calls out."""

    def refuse(why: str) -> ApiError:
        return _error(ReasonCode.WEBHOOK_URL_INVALID, 422, why)

    if not URL_MIN_LENGTH <= len(url) <= URL_MAX_LENGTH:
        raise refuse(f"the URL must have {URL_MIN_LENGTH} to {URL_MAX_LENGTH} characters")
    if not url.isascii() or not url.isprintable() or any(c.isspace() for c in url):
        raise refuse("the URL must be printable ASCII without spaces (IDN hosts as punycode)")
    try:
        parts = urlsplit(url)
        port = parts.port
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        raise refuse("not a valid URL") from None
    host = parts.hostname or ""
    if "@" in parts.netloc:
        raise refuse("no credentials in the URL")
    if "#" in url:
        raise refuse("no fragment")
    if port == 0 or not (_ip(host) is not None or _HOST.match(host)):
        raise refuse("no valid host and port")
    if production:
        ip = _ip(host)
        if parts.scheme != "https":
            raise refuse("https:// only")
        if _is_loopback(host) or (ip is not None and not ip.is_global):
            raise refuse("not a public host")
    else:
        if parts.scheme not in ("http", "https"):
            raise refuse("http:// or https:// only")
        if not _is_loopback(host):
            raise refuse("a development service delivers to loopback addresses only")
    return url


# --- secrets and signatures ---------------------------------------------------------------------


def _aad(tenant_id: str, webhook_id: str) -> bytes:
    return f"faceproof-webhook\0{tenant_id}\0{webhook_id}".encode()


def seal_secret(key: bytes, tenant_id: str, webhook_id: str, secret: str) -> str:
    """`v1.<base64url(nonce || AES-256-GCM ciphertext+tag)>`, bound to the tenant and webhook."""
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, secret.encode(), _aad(tenant_id, webhook_id))
    return f"{_SEAL_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"


def open_secret(key: bytes, tenant_id: str, webhook_id: str, sealed: str) -> str | None:
    """The secret, or None when it does not open (another key, row or tenant; altered)."""
    version, _, data = sealed.partition(".")
    if version != _SEAL_VERSION:
        return None
    try:
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
        plain = AESGCM(key).decrypt(raw[:12], raw[12:], _aad(tenant_id, webhook_id))
        return plain.decode()
    except (ValueError, InvalidTag):
        return None


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    """The `Faceproof-Signature` value: `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify_webhook_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    header: str,
    tolerance: float = 300.0,
    *,
    now: float | None = None,
) -> bool:
    """For receivers: True when `header` (`Faceproof-Signature`, one or more comma-separated
    `v1=<hex>`) signs `"<timestamp>.<body>"` with `secret` and `timestamp` (`Faceproof-Timestamp`,
    Unix seconds) is within `tolerance` seconds of `now` (default: the current time). Drop
    repeated `Faceproof-Event-Id`s as well: a retry carries the same id."""
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        return False
    expected = sign_webhook(secret, timestamp, body).encode()
    matched = False
    for part in header.split(","):
        candidate = part.strip().encode("utf-8", "replace")
        matched |= hmac.compare_digest(candidate, expected)
    return matched


# --- the outbox ---------------------------------------------------------------------------------


def _event_id(event: WebhookEvent, tenant_id: str, session_id: str, line_id: str | None) -> str:
    key = "\0".join((event.value, tenant_id, session_id, line_id or ""))
    return "evt_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def enqueue_event(
    db: DbSession,
    event: WebhookEvent,
    decision: Decision,
    *,
    now: datetime,
    line_id: str | None = None,
) -> int:
    """One delivery per active webhook of the decision's tenant that wants `event`, in the
    caller's transaction; an event already queued for a webhook is not queued again. Returns
    the number of webhooks the event is for."""
    hooks = [
        hook
        for hook in db.scalars(
            select(Webhook).where(
                Webhook.tenant_id == decision.tenant_id,
                Webhook.active.is_(True),
                Webhook.secret_sealed.is_not(None),
            )
        )
        if event.value in (hook.events or [])
    ]
    if not hooks:
        return 0
    event_id = _event_id(event, decision.tenant_id, decision.session_id, line_id)
    data: dict[str, Any] = {
        "session_id": decision.session_id,
        "decision": decision.decision,
        "reasons": list(decision.reasons),
        "receipt": decision.receipt,
    }
    if line_id is not None:
        data["line_id"] = line_id
    payload = {"id": event_id, "type": event.value, "created_at": now.isoformat(), "data": data}
    body = canonical_json(payload).decode()
    rows = [
        {
            "webhook_id": hook.id,
            "tenant_id": decision.tenant_id,
            "session_id": decision.session_id,
            "event_id": event_id,
            "event_type": event.value,
            "body": body,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for hook in hooks
    ]
    keys = ["webhook_id", "event_id"]  # the two supported databases both have ON CONFLICT
    if db.get_bind().dialect.name == "postgresql":
        db.execute(
            postgresql.insert(WebhookDelivery)
            .values(rows)
            .on_conflict_do_nothing(index_elements=keys)
        )
    else:
        db.execute(
            sqlite.insert(WebhookDelivery).values(rows).on_conflict_do_nothing(index_elements=keys)
        )
    return len(hooks)


# --- delivery -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    attempts: int  # this try's number, from 1
    event_id: str
    body: str
    url: str
    secret: str | None


def _due(now: datetime) -> ColumnElement[bool]:
    """Pending and due, or claimed by a worker whose lease ran out (it died mid-delivery)."""
    d = WebhookDelivery
    return or_(
        and_(d.status == DeliveryStatus.PENDING.value, d.next_attempt_at <= now),
        and_(d.status == DeliveryStatus.DELIVERING.value, d.lease_until < now),
    )


class WebhookDispatcher:
    """Delivers due webhook events from a background thread (`start`/`stop`), or one pass at a
    time (`run_once`). Safe with several workers on one database."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        clock: Callable[[], datetime],
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._db = database
        self._key = settings.webhook_secret()
        self._poll_s = settings.webhook_poll_seconds
        self._timeout_s = settings.webhook_timeout_seconds
        self._policy = RetryPolicy(
            attempts=settings.webhook_max_attempts,
            base_delay_s=settings.webhook_retry_base_seconds,
            max_delay_s=settings.webhook_retry_max_seconds,
        )
        # httpx's timeout is per phase (connect, write, read, pool): a try ends well inside this.
        self._lease = timedelta(seconds=4 * self._timeout_s + 30)
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 (backoff jitter, not a secret)
        self._client = httpx.Client(
            timeout=httpx.Timeout(self._timeout_s),
            follow_redirects=False,  # a redirect is a non-2xx answer: retried, never followed
            trust_env=False,  # no proxy from the environment
            headers={"User-Agent": "faceproof-webhooks/0.1"},
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="faceproof-webhooks", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread (after the try in flight, bounded by the timeout) and the client."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=4 * self._timeout_s + 5)
            self._thread = None
        self._client.close()

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                tried = self.run_once()
                failing = False
            except Exception as exc:  # the database is away: log once, try again later
                if not failing:
                    _log.warning("webhook deliveries paused: %s", type(exc).__name__)
                failing, tried = True, 0
            if tried == 0:
                self._stop.wait(self._poll_s)

    def run_once(self) -> int:
        """Claim the deliveries due now (a few) and try each once; the number tried."""
        claimed = self._claim()
        for item in claimed:
            self._settle(item, *self._post(item))
        return len(claimed)

    def _claim(self) -> list[_Claimed]:
        now = self._clock()
        d = WebhookDelivery
        with self._db.session() as db:
            ids = list(
                db.scalars(
                    select(d.id).where(_due(now)).order_by(d.next_attempt_at, d.id).limit(_BATCH)
                )
            )
        claimed = []
        for delivery_id in ids:
            with self._db.session() as db:
                # Of several workers, exactly one turns this row into its claim.
                taken = db.execute(
                    update(d)
                    .where(d.id == delivery_id, _due(now))
                    .values(
                        status=DeliveryStatus.DELIVERING.value,
                        attempts=d.attempts + 1,
                        lease_until=now + self._lease,
                    )
                    .execution_options(synchronize_session=False)
                )
                if getattr(taken, "rowcount", 0) != 1:
                    continue
                row = db.execute(
                    select(
                        d.attempts,
                        d.event_id,
                        d.body,
                        d.tenant_id,
                        Webhook.id,
                        Webhook.url,
                        Webhook.secret_sealed,
                    )
                    .join(Webhook, Webhook.id == d.webhook_id)
                    .where(d.id == delivery_id)
                ).one()
            attempts, event_id, body, tenant_id, webhook_id, url, sealed = row
            secret = open_secret(self._key, tenant_id, webhook_id, sealed) if sealed else None
            claimed.append(_Claimed(delivery_id, attempts, event_id, body, url, secret))
        return claimed

    def _post(self, item: _Claimed) -> tuple[int | None, str | None]:
        """(HTTP status, None) when the endpoint answered, (None, error name) otherwise."""
        if item.secret is None:
            return None, "secret_unavailable"  # sealed under another webhook key: cannot sign
        timestamp = str(int(self._clock().timestamp()))
        body = item.body.encode()
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: item.event_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign_webhook(item.secret, timestamp, body),
        }
        try:
            # The answer's body is never read: only its status matters.
            with self._client.stream("POST", item.url, content=body, headers=headers) as answer:
                return answer.status_code, None
        except Exception as exc:  # connection refused, timeout, TLS, protocol: a failed try
            return None, type(exc).__name__[:64]

    def _settle(self, item: _Claimed, status: int | None, error: str | None) -> None:
        now = self._clock()
        values: dict[str, Any] = {"lease_until": None, "last_status": status}
        if status is not None and 200 <= status < 300:
            values |= {"status": DeliveryStatus.DELIVERED.value, "delivered_at": now}
            values["last_error"] = None
        else:
            values["last_error"] = error or f"http_{status}"
            if item.attempts >= self._policy.attempts:
                values["status"] = DeliveryStatus.FAILED.value
            else:
                pause = self._policy.delay(item.attempts - 1, self._rng)
                values |= {
                    "status": DeliveryStatus.PENDING.value,
                    "next_attempt_at": now + timedelta(seconds=pause),
                }
        d = WebhookDelivery
        with self._db.session() as db:
            # Only while this try's claim stands (a lapsed lease may have passed it on).
            db.execute(
                update(d)
                .where(
                    d.id == item.id,
                    d.status == DeliveryStatus.DELIVERING.value,
                    d.attempts == item.attempts,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        _log.info(
            "webhook %s try %d: %s", item.event_id, item.attempts, values["status"]
        )  # ids and outcome only: no URL (its path may carry the carrier's token)


# --- the API ------------------------------------------------------------------------------------

router = APIRouter(tags=["webhooks"])
_ERRORS = problem_responses(401, 403, 422, 429)


def _public(hook: Webhook) -> WebhookPublic:
    return WebhookPublic(
        id=hook.id,
        url=hook.url,
        events=[WebhookEvent(e) for e in hook.events],
        created_at=hook.created_at,
    )


@router.post(
    "/v1/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    responses={**_ERRORS, **problem_responses(409)},
)
def create_webhook(body: WebhookCreate, caller: AdminOnly, service: ServiceDep) -> WebhookCreated:
    """Register an endpoint for `session.decided` and/or `line.activated`. The answer carries
    the signing secret: it is shown this once and never again."""
    url = check_webhook_url(body.url, production=not service.settings.is_development)
    events = sorted({event.value for event in body.events})
    secret = "whsec_" + secrets.token_urlsafe(32)
    webhook_id = f"whk_{uuid.uuid4().hex}"
    now = service.clock()
    with service.db.session() as db:
        count = db.scalar(
            select(func.count()).select_from(Webhook).where(Webhook.tenant_id == caller.tenant_id)
        )
        if (count or 0) >= MAX_WEBHOOKS_PER_TENANT:
            raise _error(
                ReasonCode.WEBHOOK_LIMIT, 409, f"at most {MAX_WEBHOOKS_PER_TENANT} webhooks"
            )
        hook = Webhook(
            id=webhook_id,
            tenant_id=caller.tenant_id,
            url=url,
            secret_hash=hashlib.sha256(secret.encode()).hexdigest(),
            created_at=now,
            active=True,
            events=events,
            secret_sealed=seal_secret(
                service.settings.webhook_secret(), caller.tenant_id, webhook_id, secret
            ),
        )
        db.add(hook)
        append_audit(
            db,
            "webhook.created",
            now=now,
            tenant_id=caller.tenant_id,
            data={"webhook_id": webhook_id, "events": events, "key_id": caller.key_id},
        )
        public = _public(hook)
    return WebhookCreated(**public.model_dump(), secret=secret)


@router.get("/v1/webhooks", response_model=list[WebhookPublic], responses=_ERRORS)
def list_webhooks(caller: AdminOnly, service: ServiceDep) -> list[WebhookPublic]:
    """The tenant's webhooks (never their secrets)."""
    with service.db.session() as db:
        hooks = db.scalars(
            select(Webhook)
            .where(Webhook.tenant_id == caller.tenant_id, Webhook.active.is_(True))
            .order_by(Webhook.created_at, Webhook.id)
        )
        return [_public(hook) for hook in hooks]


# The path parameter is `{hook}`, not `{webhook_id}`: schemathesis infers a link from POST
# /v1/webhooks to `{webhook_id}`, and a POST with such a link becomes its only stateful root, so the
# session links (POST /v1/sessions, which it ranks lower) would never be followed
# (tests/test_api_conformance.py). tests/test_webhooks.py covers the deletion itself.
@router.delete(
    "/v1/webhooks/{hook}",
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "deleted, with its pending deliveries"},
        **_ERRORS,
        **problem_responses(404),
    },
)
def delete_webhook(hook: str, caller: AdminOnly, service: ServiceDep) -> Response:
    """Delete a webhook (by its id) and its deliveries; another tenant's webhook is `404`, as a
    missing one is."""
    webhook_id = hook
    now = service.clock()
    with service.db.session() as db:
        gone = db.execute(
            delete(Webhook)
            .where(Webhook.id == webhook_id, Webhook.tenant_id == caller.tenant_id)
            .execution_options(synchronize_session=False)
        )
        if getattr(gone, "rowcount", 0) != 1:
            raise _error(ReasonCode.WEBHOOK_NOT_FOUND, 404)
        append_audit(
            db,
            "webhook.deleted",
            now=now,
            tenant_id=caller.tenant_id,
            data={"webhook_id": webhook_id, "key_id": caller.key_id},
        )
    return Response(status_code=204)
