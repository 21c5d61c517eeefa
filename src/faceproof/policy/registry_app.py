"""`faceproof registry serve`: the cross-carrier line registry as an HTTP service.

Every carrier's faceproof calls it. Carriers send the registration number over TLS; the
registry turns it into an HMAC under a key only it holds and stores nothing else about the
person. Answers are counts and flags, never another carrier's records. An *authority* key (the
holder's authenticated channel, e.g. an M-Safer-style service, or the regulator) may set
subscription blocks and bars.
"""

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Header
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from faceproof.api.problems import ApiError, install_problem_handlers
from faceproof.policy.registry import Activation, FailedCheck
from faceproof.policy.registry_store import CarrierIdentity, SqlLineRegistry
from faceproof.reasons import ReasonCode

__all__ = ["create_registry_app", "registry_identity"]

_NUMBER = r"^[0-9A-Za-z-]{6,20}$"  # a registration, foreign-registration or passport number
_NAME = r"^[A-Za-z0-9._-]{1,64}$"


def registry_identity(number: str, key: bytes) -> str:
    """The registry's pseudonym for a number: HMAC-SHA256 over the number without hyphens."""
    canonical = number.replace("-", "").upper().encode()
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


class ActivationIn(BaseModel):
    number: str = Field(pattern=_NUMBER)
    line_id: str = Field(pattern=_NAME)
    store: str = Field(pattern=_NAME)
    channel: Literal["in_store", "online"] = "in_store"


class FailedCheckIn(BaseModel):
    number: str = Field(pattern=_NUMBER)
    store: str = Field(pattern=_NAME)


class StatusIn(BaseModel):
    number: str = Field(pattern=_NUMBER)
    window_days: int = Field(default=30, ge=1, le=366)
    failed_window_hours: int = Field(default=24, ge=1, le=24 * 30)


class StatusOut(BaseModel):
    new_lines: int
    window_days: int
    blocked: bool
    barred_until: datetime | None
    failed_checks: int
    failed_distinct_stores: int


class StoreActivityIn(BaseModel):
    store: str = Field(pattern=_NAME)
    minutes: int = Field(default=60, ge=1, le=24 * 60)


class StoreActivityOut(BaseModel):
    activations: int
    failed_checks: int


class BlockIn(BaseModel):
    number: str = Field(pattern=_NUMBER)
    blocked: bool


class BarIn(BaseModel):
    number: str = Field(pattern=_NUMBER)
    until: datetime | None


def create_registry_app(
    registry: SqlLineRegistry,
    hmac_key: bytes,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FastAPI:
    if len(hmac_key) < 16:
        raise ValueError("the registry's HMAC key must be at least 16 bytes")
    app = FastAPI(title="faceproof line registry", version="1")
    install_problem_handlers(app)

    async def carrier(authorization: Annotated[str | None, Header()] = None) -> CarrierIdentity:
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            raise ApiError(ReasonCode.UNAUTHORIZED)
        # Async, so a cached key costs no thread hop; only a cache miss waits on the database,
        # in the thread pool (never blocking the event loop).
        found = registry.cached_carrier(presented) or await run_in_threadpool(
            registry.authenticate, presented
        )
        if found is None:
            raise ApiError(ReasonCode.UNAUTHORIZED)
        return found

    def authority(who: Annotated[CarrierIdentity, Depends(carrier)]) -> CarrierIdentity:
        if not who.authority:
            raise ApiError(ReasonCode.FORBIDDEN_SCOPE, "only an authority key may set this flag")
        return who

    # Local aliases: FastAPI reads these annotations at definition time (no `from __future__`).
    Carrier = Annotated[CarrierIdentity, Depends(carrier)]  # noqa: N806 - a type alias
    Authority = Annotated[CarrierIdentity, Depends(authority)]  # noqa: N806

    def pseudonym(number: str) -> str:
        return registry_identity(number, hmac_key)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/activations", status_code=201)
    def record_activation(body: ActivationIn, who: Carrier) -> dict[str, bool]:
        registry.record_activation(
            Activation(
                pseudonym(body.number), who.name, body.store, body.line_id, clock(), body.channel
            )
        )
        return {"recorded": True}

    @app.post("/v1/failed-checks", status_code=201)
    def record_failed_check(body: FailedCheckIn, who: Carrier) -> dict[str, bool]:
        registry.record_failed_check(
            FailedCheck(pseudonym(body.number), who.name, body.store, clock())
        )
        return {"recorded": True}

    @app.post("/v1/identities/status")
    async def status(body: StatusIn, who: Carrier) -> StatusOut:
        del who  # any carrier may ask; it learns counts and flags only
        now = clock()
        # The hot path: one thread hop for the one SQL statement, the rest on the event loop.
        lines, blocked, barred, failed, stores = await run_in_threadpool(
            registry.status,
            pseudonym(body.number),
            now - timedelta(days=body.window_days),
            now - timedelta(hours=body.failed_window_hours),
        )
        return StatusOut(
            new_lines=lines,
            window_days=body.window_days,
            blocked=blocked,
            barred_until=barred,
            failed_checks=failed,
            failed_distinct_stores=stores,
        )

    @app.post("/v1/stores/activity")
    def store_activity(body: StoreActivityIn, who: Carrier) -> StoreActivityOut:
        # A carrier sees only its own stores.
        lines, failed = registry.store_activity(
            who.name, body.store, clock() - timedelta(minutes=body.minutes)
        )
        return StoreActivityOut(activations=lines, failed_checks=failed)

    @app.put("/v1/identities/block")
    def set_block(body: BlockIn, who: Authority) -> dict[str, bool]:
        del who
        registry.set_blocked(pseudonym(body.number), body.blocked)
        return {"blocked": body.blocked}

    @app.put("/v1/identities/bar")
    def set_bar(body: BarIn, who: Authority) -> dict[str, str | None]:
        del who
        registry.set_barred_until(pseudonym(body.number), body.until)
        return {"barred_until": body.until.isoformat() if body.until else None}

    return app
