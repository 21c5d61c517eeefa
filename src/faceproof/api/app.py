"""The app factory: `create_app(settings)` builds one independent service (no module globals)."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Generic, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware

from faceproof.alternatives.mobile_id import MobileIdVerifier
from faceproof.comparison import FaceComparer
from faceproof.liveness.challenge import ChallengeIssuer
from faceproof.liveness.engine import LivenessEngine
from faceproof.liveness.pad_model import pad_model_from_settings
from faceproof.policy import LineRegistry
from faceproof.privacy.receipts import ReceiptSigner, load_or_create_signing_key
from faceproof.settings import Settings
from faceproof.storage.db import Database
from faceproof.web import mount_web

from .console import router as console_router
from .dashboard import router as dashboard_router
from .metrics import Metrics
from .problems import install_problem_handlers
from .routes import router
from .service import VerificationService
from .webhooks import WebhookDispatcher
from .webhooks import router as webhooks_router

__all__ = ["create_app"]

_access = logging.getLogger("faceproof.access")
T = TypeVar("T")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Lazy(Generic[T]):
    """Models load once per worker, on first use (thread-safe)."""

    def __init__(self, factory: Callable[[], T], instance: T | None = None) -> None:
        self._factory = factory
        self._instance = instance
        self._lock = threading.Lock()

    def __call__(self) -> T:
        if self._instance is None:
            with self._lock:
                if self._instance is None:
                    self._instance = self._factory()
        return self._instance


def create_app(
    settings: Settings | None = None,
    *,
    comparer: FaceComparer | None = None,
    signer: ReceiptSigner | None = None,
    clock: Callable[[], datetime] = _utcnow,
    liveness: LivenessEngine | None = None,
    challenges: ChallengeIssuer | None = None,
    registry: LineRegistry | None = None,
    mobile_id: MobileIdVerifier | None = None,
) -> FastAPI:
    """`comparer`, `liveness` (models), `signer`, `clock` and `challenges` are injectable for
    tests; by default models load on first use and challenges are signed with the settings'
    challenge key, on the app's clock."""
    settings = settings or Settings()
    # The operator's PAD model (FACEPROOF_PAD_MODEL_*) is verified now, so a wrong file stops
    # the start, not a request; one session serves every engine of the pool.
    pad_model = pad_model_from_settings(settings) if liveness is None else None
    if not settings.database_url or (signer is None and settings.receipt_key_path is None):
        settings.ensure_data_dir()  # only when the SQLite file or the generated key lives there
    database = Database(settings.effective_database_url)
    try:
        if settings.migrate_on_start:
            database.upgrade()
        if signer is None:
            signer = load_or_create_signing_key(
                settings.effective_receipt_key_path,
                create=settings.is_development,
                previous=settings.receipt_previous_key_paths,  # retired keys stay in the JWKS
            )
    except BaseException:
        database.close()
        raise
    if challenges is None and settings.challenge_seed is not None:  # development only
        challenges = ChallengeIssuer(
            settings.challenge_secret(),
            clock=lambda: clock().timestamp(),
            rng=random.Random(settings.challenge_seed),  # noqa: S311 (tests: known actions)
            window_s=settings.challenge_window_seconds,
        )
    metrics = Metrics()
    service = VerificationService(
        settings,
        database,
        signer,
        _Lazy(FaceComparer, comparer),
        clock,
        metrics,
        # Injected (tests): that one engine; else a new engine per concurrent analysis.
        liveness=(lambda: LivenessEngine(pad_model=pad_model))
        if liveness is None
        else lambda: liveness,
        liveness_slots=settings.liveness_slots if liveness is None else 1,
        challenges=challenges,
        registry=registry,
        mobile_id=mobile_id,
    )

    # Signed webhooks: this worker's delivery thread, for the app's lifetime (api/webhooks.py).
    webhooks = WebhookDispatcher(database, settings, clock)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        webhooks.start()
        try:
            yield
        finally:
            webhooks.stop()
            service.close()
            database.close()

    app = FastAPI(
        title="faceproof",
        summary="Face authentication for identity proofing at mobile-line subscription",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.webhooks = webhooks
    app.state.settings = settings
    install_problem_handlers(app)
    if settings.capture_origins:
        # Only the capture page's origin, only what the capture calls need: no Authorization
        # header, so API-key endpoints stay unreachable from browsers on other origins.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.capture_origins,
            allow_methods=["POST"],
            allow_headers=["content-type"],
            allow_credentials=False,
        )
    app.include_router(router)
    app.include_router(dashboard_router)
    app.include_router(console_router)
    app.include_router(webhooks_router)
    mount_web(app)

    @app.middleware("http")
    async def _observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        elapsed = time.perf_counter() - start
        metrics.latency.labels(request.method, route, str(response.status_code)).observe(elapsed)
        _access.info(
            json.dumps(
                {
                    "method": request.method,
                    "route": route,  # the template: never a token, id or query string
                    "status": response.status_code,
                    "ms": round(elapsed * 1000, 1),
                }
            )
        )
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app
