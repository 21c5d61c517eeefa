"""The verification flow behind the HTTP routes: sessions, consent, uploads, decisions.

Synchronous by design: routes call it through a thread pool, so database work and CPU-bound
inference never run on the event loop.

Every attempt is decided by `faceproof.verification.decide`, the engine `faceproof verify` runs
offline too:
  * the document step reads the card (`verification.read_card`: `documents.read_document`, the
    issuer check when `issuer_url` is set, the face template of the card's cut-out portrait).
    A photo that is not a readable card is a 422 with its code (`card_not_found`, ...; the
    applicant retakes it, no attempt used); a rejected document (`document_expired`,
    `issuer_revoked`, `portrait_no_face`, ...) decides `fail` at once; otherwise the template
    and the document's evidence (status, codes, checks, pseudonymous subject id) are held in
    the shared state (`shared_state.py`: process memory, or sealed to the capture token in
    Redis when several workers run) until a decision, then dropped;
  * the liveness path: `challenge` issues a signed, single-use challenge bound to the session;
    `clip` (a video) or `frames` (still frames with timestamps) verifies it, runs liveness on
    the clip (in memory), matches the best frame to the card and decides: live + match +
    verified document gives `pass`; an unverified document gives `review` with
    `document_not_verified` (and e.g. `issuer_unavailable`);
  * the single-selfie path: a match gives `review` with `liveness_not_performed`;
  * no match, not live, or an unusable capture is an attempt with outcome `retry` while attempts
    remain; the last one gives `alternative_required` with `attempts_exhausted`;
  * declining consent gives `alternative_required` with `consent_declined`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session as DbSession

from faceproof.alternatives.mobile_id import MobileIdVerifier, load_mobile_id_verifier
from faceproof.comparison import CompareResult, FaceComparer
from faceproof.errors import InputError
from faceproof.liveness.challenge import Challenge, ChallengeError, ChallengeIssuer
from faceproof.liveness.engine import LivenessEngine
from faceproof.policy import (
    InMemoryLineRegistry,
    LineRegistry,
    PolicyContext,
    PolicyOutcome,
    evaluate,
    load_rules,
)
from faceproof.policy.alerts import OutboxNotifier
from faceproof.policy.engine import Stage
from faceproof.policy.registry_client import HttpLineRegistry
from faceproof.privacy.receipts import ReceiptSigner
from faceproof.privacy.upload_crypto import public_jwk, session_upload_key
from faceproof.reasons import ReasonCode, describe
from faceproof.settings import Settings
from faceproof.storage.audit import append_audit
from faceproof.storage.db import Database
from faceproof.storage.models import Attempt, Decision, Session, Tenant
from faceproof.verification import Decision as Verdict
from faceproof.verification import (
    DocumentEvidence,
    DocumentStatus,
    Outcome,
    check_policy,
    comparer_models,
    decide,
    frame_image,
    gather_evidence,
    read_card,
)

from .metrics import Metrics
from .problems import ApiError
from .ratelimit import RateLimiter
from .schemas import (
    ActivationCreate,
    ActivationPublic,
    AttemptPublic,
    CaptureStatePublic,
    ChallengeAction,
    ChallengePublic,
    ConsentChoice,
    DecisionPublic,
    DocumentCheckPublic,
    DocumentPublic,
    ManualCheckCreate,
    MobileIdRequest,
    ReasonPublic,
    SessionCreate,
    SessionCreated,
    SessionPublic,
    StepPublic,
)
from .shared_state import SharedState, open_shared_state
from .templates import HeldCard

T = TypeVar("T")

if TYPE_CHECKING:
    from faceproof.documents.issuer import IssuerCheck
    from faceproof.documents.ocr import TesseractOcr
    from faceproof.liveness.clip import Clip

__all__ = ["SessionState", "VerificationService"]

_log = logging.getLogger("faceproof.api")
_KST = timedelta(hours=9)  # Korean cards' dates are Korean dates (no daylight saving)


class SessionState:
    AWAITING_CONSENT = "awaiting_consent"
    AWAITING_DOCUMENT = "awaiting_document"
    AWAITING_SELFIE = "awaiting_selfie"
    COMPLETED = "completed"
    EXPIRED = "expired"  # computed on read, never stored


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _messages(codes: list[str]) -> list[ReasonPublic]:
    out = []
    for code in codes:
        try:
            reason = describe(ReasonCode(code))
        except ValueError:
            continue
        out.append(ReasonPublic(**reason.to_dict()))
    return out


def _challenge_key(session_id: str, challenge: Challenge) -> str:
    """The shared-state key that marks a challenge used (single use, across workers)."""
    return f"challenge:{session_id}:{challenge.nonce}"


class _Pool(Generic[T]):
    """Instances made by `factory` on first need, at most `size`; each serves one request at a
    time (libtesseract and OpenCV's face detector keep per-call state, so they are not shared
    between threads). A request finding all `size` in use waits for one to come back."""

    def __init__(self, factory: Callable[[], T], size: int) -> None:
        self._factory = factory
        self._size = size
        self._created = 0
        self._free: queue.LifoQueue[T] = queue.LifoQueue()
        self._lock = threading.Lock()

    def _reserve(self, *, only_if_none_free: bool) -> bool:
        """Claim a place for a new instance, if the pool is not full."""
        with self._lock:
            none_free = self._free.empty()
            create = self._created < self._size and (none_free or not only_if_none_free)
            if create:
                self._created += 1
            return create

    def _make(self) -> T:
        """A new instance for a claimed place (the place is given back if making it fails)."""
        try:
            return self._factory()
        except BaseException:
            with self._lock:
                self._created -= 1
            raise

    @contextmanager
    def take(self) -> Iterator[T]:
        item = self._make() if self._reserve(only_if_none_free=True) else self._free.get()
        try:
            yield item
        finally:
            self._free.put(item)

    def fill(self, prepare: Callable[[T], object]) -> None:
        """Make every instance now and `prepare` each (the models load and run once before
        the first request, not during it). What was made stays in the pool if one fails."""
        made: list[T] = []
        try:
            while self._reserve(only_if_none_free=False):
                made.append(self._make())
                prepare(made[-1])
        finally:
            for item in made:
                self._free.put(item)

    def drain(self) -> list[T]:
        """The idle instances, removed (the app's shutdown)."""
        out = []
        while True:
            try:
                out.append(self._free.get_nowait())
            except queue.Empty:
                return out


def _ocr_pair() -> tuple[TesseractOcr, TesseractOcr]:
    from faceproof.documents.ocr import TesseractOcr

    return TesseractOcr("kor+eng"), TesseractOcr("eng")


def _document_public(evidence: DocumentEvidence) -> DocumentPublic:
    return DocumentPublic(
        status=evidence.status.value,
        type=evidence.type,
        checks=[DocumentCheckPublic(**c) for c in evidence.checks_list()],
        policy=evidence.policy.to_dict() if evidence.policy else None,
    )


class VerificationService:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        signer: ReceiptSigner,
        comparer: Callable[[], FaceComparer],
        clock: Callable[[], datetime],
        metrics: Metrics,
        liveness: Callable[[], LivenessEngine],
        challenges: ChallengeIssuer | None = None,
        issuer: IssuerCheck | None = None,
        registry: LineRegistry | None = None,
        mobile_id: MobileIdVerifier | None = None,
        shared: SharedState | None = None,
        liveness_slots: int = 1,
    ) -> None:
        self.settings = settings
        self.db = database
        self.signer = signer
        self._comparer = comparer
        # One engine per concurrent analysis: `liveness` makes a new one each call, up to
        # `liveness_slots` (settings.liveness_slots; 1 when a single engine is injected).
        self._liveness = _Pool(liveness, size=liveness_slots)
        self.clock = clock
        self.metrics = metrics
        # Challenges are single use: consumed ones are remembered in the shared state.
        self.challenges = challenges or ChallengeIssuer(
            settings.challenge_secret(),
            clock=lambda: self.clock().timestamp(),
            window_s=settings.challenge_window_seconds,
        )
        # Held cards, used challenges, rate limits: process memory, or Redis for many workers.
        self.shared = shared or open_shared_state(settings, clock)
        self.templates = self.shared.cards
        self._ocr = _Pool(_ocr_pair, size=2)
        # The issuer check (진위확인): injected, or over HTTP when `issuer_url` is set, with a
        # bounded timeout: an unreachable issuer is `issuer_unavailable` (review), never a hang.
        self._issuer_client: Any = None
        if issuer is None and settings.issuer_url:
            from faceproof.documents.issuer import HttpIssuerCheck
            from faceproof.resilience import CircuitBreaker, RetryPolicy

            timeout = settings.issuer_timeout_seconds
            breaker = CircuitBreaker(
                "issuer", settings.breaker_failures, settings.breaker_cooldown_seconds
            )
            issuer = self._issuer_client = HttpIssuerCheck(
                settings.issuer_url,
                timeout=timeout,
                retry=RetryPolicy(attempts=1 + settings.issuer_retries, budget_s=2 * timeout),
                breaker=breaker,
            )
            gauge = metrics.circuit_state.labels(dependency="issuer")
            gauge.set_function(lambda: breaker.state.level)
        self.issuer = issuer
        # Subscription policy: the versioned rules and the cross-carrier line registry (over
        # HTTP when configured; in development an in-memory one, per process).
        self.rules = load_rules(settings.policy_rules_path)
        self._registry_client: HttpLineRegistry | None = None
        if registry is None and settings.registry_url:
            key = settings.registry_key.get_secret_value() if settings.registry_key else ""
            from faceproof.resilience import CircuitBreaker

            registry_breaker = CircuitBreaker(
                "registry", settings.breaker_failures, settings.breaker_cooldown_seconds
            )
            registry = self._registry_client = HttpLineRegistry(
                settings.registry_url,
                key,
                timeout_s=settings.registry_timeout_seconds,
                breaker=registry_breaker,
            )
            metrics.circuit_state.labels(dependency="registry").set_function(
                lambda: registry_breaker.state.level
            )
        self.registry: LineRegistry = registry or InMemoryLineRegistry()
        self.notifier = OutboxNotifier(
            settings.outbox_path or str(Path(settings.data_dir) / "outbox.jsonl")
        )
        self._pseudonym_key = settings.pseudonym_secret()
        # The mobile-ID path, when a trust list is configured (or a verifier injected).
        if mobile_id is None and settings.mobile_id_trust_path:
            mobile_id = load_mobile_id_verifier(settings.mobile_id_trust_path, self.clock)
        self.mobile_id = mobile_id
        self.tenant_limiter = RateLimiter(
            settings.rate_limit_tenant_per_minute, clock, self.shared.buckets, scope="tenant"
        )
        self.client_limiter = RateLimiter(
            settings.rate_limit_client_per_minute, clock, self.shared.buckets, scope="client"
        )
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load every model this worker will use and run each once (onnxruntime and
        libtesseract do their first-run allocations then): the face comparer, one liveness
        engine per slot, the OCR engines. Otherwise the first requests to need each would
        wait for it (about a second for a liveness engine) while others are served. The input
        is the bundled public-domain example portrait (faceproof.examples), nothing personal.
        """
        import numpy as np
        from PIL import Image

        from faceproof.examples import example_portrait
        from faceproof.liveness.clip import Clip

        canvas = np.full((480, 640, 3), 128, np.uint8)
        canvas[:, 80:560] = np.asarray(example_portrait().convert("RGB").resize((480, 480)))
        self._comparer().template(frame_image(canvas))
        still = Clip.from_arrays([canvas] * 12, [i / 15 for i in range(12)])
        blink = Challenge("warm-up", "warm-up", ("blink",), ((0.2, 0.8),), 0.0, 1e12)
        self._liveness.fill(lambda engine: engine.analyze(still, blink))
        blank = Image.new("L", (200, 40), 255)
        self._ocr.fill(lambda pair: [ocr.read_line(blank) for ocr in pair])

    def close(self) -> None:
        """Release the OCR engines and the issuer client (the app's shutdown)."""
        for kor, eng in self._ocr.drain():
            kor.close()
            eng.close()
        if self._issuer_client is not None:
            self._issuer_client.close()
        if self._registry_client is not None:
            self._registry_client.close()
        self.shared.close()

    def today(self) -> date:
        """The date in Korea, for the document's expiry and issue dates."""
        return (self.clock() + _KST).date()

    # --- sessions (carrier backend, API key) ----------------------------------------------

    def create_session(
        self, tenant_id: str, body: SessionCreate, *, key_store: str | None = None
    ) -> SessionCreated:
        if key_store is not None and body.store_id != key_store:
            raise ApiError(
                ReasonCode.FORBIDDEN_SCOPE, f"this key opens sessions for store {key_store} only"
            )
        now = self.clock()
        token = secrets.token_urlsafe(32)
        session = Session(
            id=f"ses_{uuid.uuid4().hex}",
            tenant_id=tenant_id,
            store_id=body.store_id,
            channel=body.channel.value,
            purpose=body.purpose.value,
            locale=body.locale,
            state=SessionState.AWAITING_CONSENT,
            created_at=now,
            expires_at=now + timedelta(seconds=self.settings.session_ttl_seconds),
            attempts_used=0,
            attempts_limit=self.settings.attempts_limit,
            capture_token_hash=_token_hash(token),
            capture_token_expires_at=now
            + timedelta(seconds=self.settings.capture_token_ttl_seconds),
            capture_token_used=False,
        )
        with self.db.session() as db:
            db.add(session)
            db.flush()
            append_audit(
                db,
                "session.created",
                now=now,
                tenant_id=tenant_id,
                session_id=session.id,
                data={"channel": session.channel, "purpose": session.purpose},
            )
            public = self._public(db, session)
        base = self.settings.public_base_url.rstrip("/")
        return SessionCreated(
            **public.model_dump(),
            capture_url=f"{base}/v1/capture/{token}",
            capture_token_expires_at=session.capture_token_expires_at,
        )

    def activate(
        self,
        tenant_id: str,
        session_id: str,
        body: ActivationCreate,
        *,
        key_store: str | None = None,
    ) -> ActivationPublic:
        """Record a line the carrier opened after a `pass`, and alert the holder (once)."""
        from faceproof.documents import pseudonymise
        from faceproof.policy import Activation
        from faceproof.policy.alerts import send_line_alert

        with self.db.session() as db:
            session = self._tenant_session(db, tenant_id, session_id, key_store)
            decision = db.scalars(select(Decision).where(Decision.session_id == session_id)).first()
            if decision is None or decision.decision != "pass":
                raise ApiError(ReasonCode.SESSION_STATE, "only a passed session can open a line")
            expected = decision.subject_id or ""
            store, channel = session.store_id, session.channel
            tenant = db.get(Tenant, tenant_id)
            carrier_name = tenant.name if tenant is not None else tenant_id
        presented = pseudonymise(body.number, self._pseudonym_key)
        if not hmac.compare_digest(presented, expected):
            raise ApiError(ReasonCode.ACTIVATION_SUBJECT_MISMATCH)
        now = self.clock()
        # registry_unavailable (a ServiceError) -> 503: the carrier retries; nothing half-done.
        self.registry.record_activation(
            Activation(body.number, tenant_id, store, body.line_id, now, channel)
        )
        alert_sent = False
        if body.contact:
            alert_sent = send_line_alert(
                self.notifier,
                identity=expected,
                recipient=body.contact,
                carrier=carrier_name,
                line_id=body.line_id,
                opened_on=(now + _KST).date(),
            )
        from .webhooks import WebhookEvent, enqueue_event

        with self.db.session() as db:
            append_audit(
                db,
                "line.activated",
                now=now,
                tenant_id=tenant_id,
                session_id=session_id,
                data={"line_id": body.line_id, "alert_sent": alert_sent},
            )
            # The webhook outbox, in the same transaction (a line confirmed again: one event).
            enqueue_event(db, WebhookEvent.LINE_ACTIVATED, decision, now=now, line_id=body.line_id)
        return ActivationPublic(
            session_id=session_id, line_id=body.line_id, recorded=True, alert_sent=alert_sent
        )

    # --- the mobile-ID path (no face data) ---------------------------------------------------

    def _policy(self, number: str, carrier: str, store: str, stage: Stage) -> PolicyOutcome:
        """The subscription rules for this person now; an unreachable registry is a review."""

        def evaluate_now(identity: str) -> PolicyOutcome:
            context = PolicyContext(identity, carrier, store, stage=stage)
            return evaluate(context, self.registry, self.rules, self.clock())

        return check_policy(evaluate_now, number)

    def _decide_without_face(
        self,
        db: DbSession,
        session: Session,
        outcome: Outcome,
        reasons: tuple[ReasonCode, ...],
        evidence: DocumentEvidence,
        from_state: str,
    ) -> StepPublic:
        """Decide a session on a non-biometric path (mobile ID, manual check): no attempt."""
        verdict = Verdict(
            outcome, True, reasons, None, None, evidence.status, 0, session.attempts_limit, ()
        )
        decision = self._finalise(db, session, verdict, from_state=from_state, document=evidence)
        if decision is None:
            raise ApiError(ReasonCode.SESSION_STATE)
        codes = list(decision.reasons)
        return self._step(
            session,
            outcome=decision.decision,
            reasons=codes,
            messages=_messages(codes),
            document=_document_public(evidence),
            decision=self._decision_public(decision),
        )

    def _mobile_id_binding(self, session_id: str) -> MobileIdRequest:
        nonce = hmac.new(
            self.settings.challenge_secret(), f"mobile-id:{session_id}".encode(), hashlib.sha256
        ).hexdigest()[:32]
        audience = f"{self.settings.public_base_url.rstrip('/')}/v1/sessions/{session_id}"
        return MobileIdRequest(nonce=nonce, audience=audience)

    def mobile_id_request(self, token: str) -> MobileIdRequest:
        with self.db.session() as db:
            session = self._by_token(db, token)
            if self.mobile_id is None:
                raise ApiError(ReasonCode.MOBILE_ID_NOT_CONFIGURED)
            return self._mobile_id_binding(session.id)

    def mobile_id_present(self, token: str, presentation: str) -> StepPublic:
        """Verify a mobile-ID presentation and decide, with no face capture at all. An invalid
        presentation is a 422 with its code (the applicant may retry or take another path)."""
        from faceproof.documents import pseudonymise

        with self.db.session() as db:
            session = self._by_token(db, token)
            if self.mobile_id is None:
                raise ApiError(ReasonCode.MOBILE_ID_NOT_CONFIGURED)
            if session.state == SessionState.COMPLETED:
                raise ApiError(ReasonCode.SESSION_STATE)
            binding = self._mobile_id_binding(session.id)
            carrier, store, state = session.tenant_id, session.store_id, session.state
        identity = self.mobile_id.verify(
            presentation, nonce=binding.nonce, audience=binding.audience
        )
        policy = self._policy(identity.number, carrier, store, "pre_pass")
        evidence = DocumentEvidence(
            status=DocumentStatus.VERIFIED,
            reasons=(ReasonCode.MOBILE_ID_VERIFIED,),
            type="mobile_id",
            checks=(("mobile_id", True, ReasonCode.MOBILE_ID_VERIFIED),),
            subject=pseudonymise(identity.number, self._pseudonym_key),
            policy=policy,
        )
        del identity
        if policy.decision == "deny":
            outcome, reasons = Outcome.FAIL, policy.reasons
        elif policy.decision == "review":
            outcome, reasons = Outcome.REVIEW, (ReasonCode.MOBILE_ID_VERIFIED, *policy.reasons)
        else:
            outcome, reasons = Outcome.PASS, (ReasonCode.MOBILE_ID_VERIFIED,)
        with self.db.session() as db:
            session = self._by_token(db, token)
            return self._decide_without_face(db, session, outcome, reasons, evidence, state)

    def manual_check(
        self,
        tenant_id: str,
        session_id: str,
        body: ManualCheckCreate,
        *,
        key_store: str | None = None,
    ) -> StepPublic:
        """The clerk's path: a same-day abstract checked by a person decides the session."""
        from faceproof.alternatives import record_manual_check
        from faceproof.documents import pseudonymise

        with self.db.session() as db:
            session = self._tenant_session(db, tenant_id, session_id, key_store)
            if session.state == SessionState.COMPLETED:
                raise ApiError(ReasonCode.SESSION_STATE)
            store, state = session.store_id, session.state
        check = record_manual_check(
            clerk_id=body.clerk_id,
            document_serial=body.document_serial,
            abstract_issued_on=body.abstract_issued_on,
            holder_matches=body.holder_matches,
            now=self.clock(),
        )
        confirmed = check.outcome == "confirmed"
        policy = self._policy(body.number, tenant_id, store, "pre_pass") if confirmed else None
        evidence = DocumentEvidence(
            status=DocumentStatus.VERIFIED
            if check.outcome == "confirmed"
            else DocumentStatus.REJECTED,
            reasons=check.reasons,
            type="manual_abstract",
            checks=(("manual_abstract", check.outcome == "confirmed", check.reasons[0]),),
            subject=pseudonymise(body.number, self._pseudonym_key),
            policy=policy,
        )
        if check.outcome != "confirmed":
            outcome, reasons = Outcome.FAIL, check.reasons
        elif policy is not None and policy.decision == "deny":
            outcome, reasons = Outcome.FAIL, policy.reasons
        elif policy is not None and policy.decision == "review":
            outcome, reasons = Outcome.REVIEW, (*check.reasons, *policy.reasons)
        else:
            outcome, reasons = Outcome.PASS, check.reasons
        with self.db.session() as db:
            session = db.get_one(Session, session_id)
            append_audit(
                db,
                "session.manual_check",
                now=self.clock(),
                tenant_id=tenant_id,
                session_id=session_id,
                # Who checked which abstract, and the outcome: no biometrics, no number.
                data=check.to_dict(),
            )
            return self._decide_without_face(db, session, outcome, tuple(reasons), evidence, state)

    @staticmethod
    def _tenant_session(
        db: DbSession, tenant_id: str, session_id: str, store_id: str | None = None
    ) -> Session:
        """The tenant's own session (and the store's, for a store's key); another tenant's or
        store's is indistinguishable from none (404)."""
        session = db.scalars(
            select(Session).where(Session.id == session_id, Session.tenant_id == tenant_id)
        ).first()
        if session is None or (store_id is not None and session.store_id != store_id):
            raise ApiError(ReasonCode.SESSION_NOT_FOUND)
        return session

    def get_session(
        self, tenant_id: str, session_id: str, *, key_store: str | None = None
    ) -> SessionPublic:
        with self.db.session() as db:
            session = self._tenant_session(db, tenant_id, session_id, key_store)
            return self._public(db, session)

    def _state(self, session: Session) -> str:
        if session.state != SessionState.COMPLETED and session.expires_at <= self.clock():
            return SessionState.EXPIRED
        return session.state

    def _public(self, db: DbSession, session: Session) -> SessionPublic:
        attempts = db.scalars(
            select(Attempt).where(Attempt.session_id == session.id).order_by(Attempt.number)
        ).all()
        decision = db.scalars(select(Decision).where(Decision.session_id == session.id)).first()
        return SessionPublic(
            id=session.id,
            store_id=session.store_id,
            channel=session.channel,  # type: ignore[arg-type]
            purpose=session.purpose,  # type: ignore[arg-type]
            locale=session.locale,
            state=self._state(session),
            created_at=session.created_at,
            expires_at=session.expires_at,
            attempts_used=session.attempts_used,
            attempts_limit=session.attempts_limit,
            consent=session.consent,
            attempts=[
                AttemptPublic(number=a.number, outcome=a.outcome, reasons=list(a.reasons))
                for a in attempts
            ],
            decision=self._decision_public(decision) if decision else None,
        )

    @staticmethod
    def _decision_public(decision: Decision) -> DecisionPublic:
        return DecisionPublic(
            decision=decision.decision,
            reasons=list(decision.reasons),
            messages=_messages(list(decision.reasons)),
            receipt=decision.receipt,
            decided_at=decision.created_at,
        )

    # --- capture (token-bound) ------------------------------------------------------------

    def _by_token(self, db: DbSession, token: str) -> Session:
        """The session this capture token opens, or the precise refusal."""
        if not token or len(token) > 128:
            raise ApiError(ReasonCode.TOKEN_INVALID)
        session = db.scalars(
            select(Session).where(Session.capture_token_hash == _token_hash(token))
        ).first()
        if session is None:
            raise ApiError(ReasonCode.TOKEN_INVALID)
        if session.capture_token_used:
            raise ApiError(ReasonCode.TOKEN_REPLAYED)
        now = self.clock()
        if session.capture_token_expires_at <= now:
            raise ApiError(ReasonCode.TOKEN_EXPIRED)
        if session.expires_at <= now:
            raise ApiError(ReasonCode.SESSION_EXPIRED)
        return session

    def _step(self, session: Session, **kwargs: Any) -> StepPublic:
        return StepPublic(
            session_id=session.id,
            state=session.state,
            attempts_used=session.attempts_used,
            attempts_left=max(0, session.attempts_limit - session.attempts_used),
            **kwargs,
        )

    def capture_state(self, token: str) -> CaptureStatePublic:
        """The session as the capture page needs it: state, attempts, the last attempt's
        reasons (to explain a retry after a reload). No decision: a decided session's token
        is spent, so this answers 409 `token_replayed` then."""
        with self.db.session() as db:
            return self._capture_state(db, self._by_token(db, token), token)

    def _capture_state(self, db: DbSession, session: Session, token: str) -> CaptureStatePublic:
        last = db.scalars(
            select(Attempt).where(Attempt.session_id == session.id).order_by(Attempt.number.desc())
        ).first()
        reasons = list(last.reasons) if last else []
        return CaptureStatePublic(
            **self._step(
                session,
                outcome=last.outcome if last else None,
                reasons=reasons,
                messages=_messages(reasons),
            ).model_dump(),
            locale=session.locale,
            channel=session.channel,
            token_expires_at=session.capture_token_expires_at,
            session_expires_at=session.expires_at,
            upload_key=public_jwk(session_upload_key(self.settings.upload_secret(), token)),
            uploads_must_be_encrypted=self.settings.require_encrypted_uploads,
        )

    def upload_opener(self, token: str, use: str) -> Callable[[bytes], tuple[bytes, str]]:
        """Opens this session's encrypted uploads for one step (`document`, `selfie`, `clip`)."""
        from faceproof.privacy.upload_crypto import decrypt_upload

        def open_part(jwe: bytes) -> tuple[bytes, str]:
            key = session_upload_key(self.settings.upload_secret(), token)
            return decrypt_upload(jwe, key, use=use)

        return open_part

    def extend(self, token: str) -> CaptureStatePublic:
        """More time for the person at the capture page: the token lives another full TTL from
        now, bounded by the session's expiry (which does not move)."""
        now = self.clock()
        with self.db.session() as db:
            session = self._by_token(db, token)
            wanted = now + timedelta(seconds=self.settings.capture_token_ttl_seconds)
            session.capture_token_expires_at = min(wanted, session.expires_at)
            self.templates.touch(session.id, session.capture_token_expires_at)
            append_audit(
                db,
                "session.capture_extended",
                now=now,
                tenant_id=session.tenant_id,
                session_id=session.id,
            )
            return self._capture_state(db, session, token)  # one lookup: the session in hand

    def consent(self, token: str, choice: ConsentChoice) -> StepPublic:
        now = self.clock()
        with self.db.session() as db:
            session = self._by_token(db, token)
            if session.state != SessionState.AWAITING_CONSENT:
                raise ApiError(ReasonCode.SESSION_STATE, "consent was already recorded")
            session.consent = choice.value
            session.consent_at = now
            append_audit(
                db,
                "session.consent",
                now=now,
                tenant_id=session.tenant_id,
                session_id=session.id,
                data={"choice": choice.value},
            )
            if choice is ConsentChoice.ACCEPT:
                session.state = SessionState.AWAITING_DOCUMENT
                return self._step(session, outcome="consent_accepted")
            declined = Verdict(
                Outcome.ALTERNATIVE_REQUIRED,
                True,
                (ReasonCode.CONSENT_DECLINED,),
                None,
                None,
                DocumentStatus.UNVERIFIED,
                0,
                session.attempts_limit,
                (),
            )
            decision = self._finalise(
                db, session, declined, from_state=SessionState.AWAITING_CONSENT
            )
            if decision is None:  # a concurrent request moved the session on
                raise ApiError(ReasonCode.SESSION_STATE)
            return self._step(
                session,
                outcome=decision.decision,
                reasons=list(decision.reasons),
                messages=_messages(list(decision.reasons)),
                decision=self._decision_public(decision),
            )

    def document(self, token: str, image: bytes) -> StepPublic:
        """Read the card: a photo that is not a readable card is a 422 with its code (retake);
        a rejected document decides `fail` at once; otherwise the portrait's face template and
        the document's evidence are kept in memory only, until the face capture decides."""
        from faceproof.capture import decode_image

        with self.db.session() as db:
            session = self._by_token(db, token)
            self._require_consent(session)
            if session.state not in (SessionState.AWAITING_DOCUMENT, SessionState.AWAITING_SELFIE):
                raise ApiError(ReasonCode.SESSION_STATE)
            session_id, token_expires = session.id, session.capture_token_expires_at
            carrier, store = session.tenant_id, session.store_id

        seen: list[str] = []

        def policy(number: str) -> PolicyOutcome:
            # Checked before any face is captured, so a denied person is turned away early.
            seen.append(number)
            context = PolicyContext(number, carrier, store, stage="pre_capture")
            return evaluate(context, self.registry, self.rules, self.clock())

        photo = decode_image(image)  # ImageError -> 422 problem, state unchanged
        del image
        with self._ocr.take() as (kor, eng):
            # DocumentError (card_not_found, card_blurry, ...) -> 422 problem, state unchanged
            evidence, template = read_card(
                photo.pixels,
                self._comparer(),
                today=self.today(),
                kor=kor,
                eng=eng,
                issuer=self.issuer,
                pseudonym_key=self._pseudonym_key,
                policy=policy,
            )
        del photo
        now = self.clock()
        codes = [c.value for c in evidence.reasons]
        with self.db.session() as db:
            session = self._by_token(db, token)
            state = session.state
            if state not in (SessionState.AWAITING_DOCUMENT, SessionState.AWAITING_SELFIE):
                raise ApiError(ReasonCode.SESSION_STATE)
            denied = evidence.policy is not None and evidence.policy.decision == "deny"
            if template is None or denied:  # no face capture can make this good
                append_audit(
                    db,
                    "session.document_rejected",
                    now=now,
                    tenant_id=session.tenant_id,
                    session_id=session.id,
                    data={"type": evidence.type, "reasons": codes},
                )
                verdict = decide(
                    match=None,
                    liveness=None,
                    attempt=session.attempts_used,
                    attempts_limit=session.attempts_limit,
                    document=evidence.status if denied else DocumentStatus.REJECTED,
                    document_reasons=evidence.reasons,
                    policy=evidence.policy,
                )
                decision = self._finalise(db, session, verdict, from_state=state, document=evidence)
                if decision is None:  # a concurrent request moved the session on
                    raise ApiError(ReasonCode.SESSION_STATE)
                return self._step(
                    session,
                    outcome=decision.decision,
                    reasons=list(decision.reasons),
                    messages=_messages(list(decision.reasons)),
                    document=_document_public(evidence),
                    decision=self._decision_public(decision),
                )
            session.state = SessionState.AWAITING_SELFIE
            face = [c.value for c in template.observation.reasons if c.value not in codes]
            append_audit(
                db,
                "session.document_accepted",
                now=now,
                tenant_id=session.tenant_id,
                session_id=session.id,
                data={"status": evidence.status.value, "type": evidence.type, "reasons": codes},
            )
            if not self.templates.keeps_pixels:  # held elsewhere: every embedding, no pixels
                template = self._comparer().extend(template)
            held = HeldCard(template, evidence, seen[0] if seen else None)
            self.templates.put(session_id, token, held, min(token_expires, session.expires_at))
            return self._step(
                session,
                outcome="document_accepted",
                reasons=codes + face,
                messages=_messages(codes + face),
                document=_document_public(evidence),
            )

    @staticmethod
    def _require_consent(session: Session) -> None:
        if session.state == SessionState.AWAITING_CONSENT:
            raise ApiError(ReasonCode.CONSENT_REQUIRED)

    def _reserve(self, db: DbSession, session: Session) -> int:
        """Take one attempt atomically (two concurrent uploads cannot both take the last)."""
        reserved = db.execute(
            update(Session)
            .where(
                Session.id == session.id,
                Session.attempts_used < Session.attempts_limit,
                Session.state == SessionState.AWAITING_SELFIE,
            )
            .values(attempts_used=Session.attempts_used + 1)
        )
        if getattr(reserved, "rowcount", 0) != 1:
            raise ApiError(ReasonCode.ATTEMPTS_EXHAUSTED)
        db.refresh(session)
        return session.attempts_used

    def _card(self, session: Session, token: str) -> HeldCard:
        self._require_consent(session)
        if session.state != SessionState.AWAITING_SELFIE:
            raise ApiError(ReasonCode.SESSION_STATE, "upload the document first")
        card = self.templates.get(session.id, token)
        if card is None:
            raise ApiError(
                ReasonCode.SESSION_STATE,
                "the document is no longer held (restart or timeout): upload it again",
            )
        return card

    def selfie(self, token: str, image: bytes) -> StepPublic:
        """One still selfie: no liveness, so a match is `review` (`liveness_not_performed`)."""
        # 1. Reserve an attempt.
        with self.db.session() as db:
            session = self._by_token(db, token)
            card = self._card(session, token)
            number = self._reserve(db, session)
            limit, session_id = session.attempts_limit, session.id
            carrier, store = session.tenant_id, session.store_id
        # 2. Inference, outside any transaction.
        verdict = self._settle(self._decide(card, image, number, limit), card, carrier, store)
        del image
        # 3. Record the attempt, and the decision when final.
        return self._record(session_id, number, verdict, card.document)

    # --- the liveness path: challenge, then clip -----------------------------------------

    def challenge(self, token: str) -> ChallengePublic:
        """A signed challenge bound to this session, for the capture page to perform."""
        now = self.clock()
        with self.db.session() as db:
            session = self._by_token(db, token)
            self._card(session, token)
            if session.attempts_used >= session.attempts_limit:
                raise ApiError(ReasonCode.ATTEMPTS_EXHAUSTED)
            issued, spec = self.challenges.issue(session.id)
            append_audit(
                db,
                "challenge.issued",
                now=now,
                tenant_id=session.tenant_id,
                session_id=session.id,
                data={"actions": list(issued.actions)},
            )
        return ChallengePublic(
            challenge=spec,
            actions=[
                ChallengeAction(action=a, start_s=w[0], end_s=w[1])
                for a, w in zip(issued.actions, issued.windows, strict=True)
            ],
            record_seconds=round(issued.windows[-1][1] + 0.4, 2),
            issued_at=datetime.fromtimestamp(issued.issued_at, UTC),
            expires_at=datetime.fromtimestamp(issued.expires_at, UTC),
        )

    def _consume_challenge(self, spec: str, session_id: str) -> Challenge:
        """The challenge the spec stands for, used up: 409 challenge_unknown (not issued for
        this session, tampered, already used) or 410 challenge_expired."""
        try:
            challenge = self.challenges.verify(spec, session=session_id)
        except ChallengeError as exc:
            raise ApiError(exc.code, exc.detail) from exc
        # Atomic check-and-consume in the shared state, so no other worker accepts it again.
        until = datetime.fromtimestamp(challenge.expires_at, UTC)
        if not self.shared.consume_once(_challenge_key(session_id, challenge), until):
            raise ApiError(ReasonCode.CHALLENGE_UNKNOWN)
        return challenge

    def clip(self, token: str, spec: str, data: bytes) -> StepPublic:
        """One liveness attempt from a recorded video: verify the challenge, decode the clip in
        memory, run liveness, match its best frame to the card, decide. A video that cannot be
        decoded is an attempt (`retry` with `clip_corrupt`, ...), as an unusable selfie is."""
        from faceproof.liveness.clip import ClipLimits, load_clip

        def decode() -> Clip:
            return load_clip(data, ClipLimits(max_bytes=self.settings.max_clip_bytes))

        return self._liveness_attempt(token, spec, decode)

    def frames(
        self, token: str, spec: str, frames: list[bytes], timestamps_json: str
    ) -> StepPublic:
        """One liveness attempt from still frames and their timestamps (milliseconds, JSON).

        Unlike a video, frames that cannot be used (malformed or out-of-order timestamps, too
        many, a frame that does not decode, mixed sizes) are the client's error: a 422 with
        its code before the challenge is used up or an attempt is taken."""
        from faceproof.liveness.clip import ClipLimits, decode_frames, parse_timestamps_ms

        # Cheap refusals first (token, state, attempts, the challenge's signature and expiry),
        # so a request that cannot be an attempt costs no decoding.
        with self.db.session() as db:
            session = self._by_token(db, token)
            self._card(session, token)
            if session.attempts_used >= session.attempts_limit:
                raise ApiError(ReasonCode.ATTEMPTS_EXHAUSTED)
            try:
                challenge = self.challenges.verify(spec, session=session.id)
            except ChallengeError as exc:
                raise ApiError(exc.code, exc.detail) from exc
            # A replayed challenge is a 409 whatever the frames are (it is claimed below).
            if self.shared.was_used(_challenge_key(session.id, challenge)):
                raise ApiError(ReasonCode.CHALLENGE_UNKNOWN)
        limits = ClipLimits(max_bytes=self.settings.max_clip_bytes)
        clip = decode_frames(frames, parse_timestamps_ms(timestamps_json), limits)
        return self._liveness_attempt(token, spec, lambda: clip)

    def _liveness_attempt(self, token: str, spec: str, decode: Callable[[], Clip]) -> StepPublic:
        """The liveness path both capture routes share: check and use up the challenge, reserve
        an attempt, decode (an InputError makes the attempt unusable), liveness, match, decide,
        record."""
        # 1. Check the challenge (single use) and reserve an attempt.
        with self.db.session() as db:
            session = self._by_token(db, token)
            card = self._card(session, token)
            if session.attempts_used >= session.attempts_limit:
                raise ApiError(ReasonCode.ATTEMPTS_EXHAUSTED)
            challenge = self._consume_challenge(spec, session.id)
            number = self._reserve(db, session)
            limit, session_id = session.attempts_limit, session.id
            carrier, store = session.tenant_id, session.store_id
        # 2. Inference, outside any transaction.
        try:
            clip = decode()
        except InputError as exc:
            verdict = decide(
                match=None, liveness=None, unusable=exc.code, attempt=number, attempts_limit=limit
            )
        else:
            comparer = self._comparer()
            with self._liveness.take() as engine:
                evidence = gather_evidence(comparer, engine, card.template, clip, challenge)
            del clip
            verdict = decide(
                match=evidence.match,
                liveness=evidence.liveness,
                unusable=evidence.unusable,
                attempt=number,
                attempts_limit=limit,
                document=card.document.status,
                document_reasons=card.document.reasons,
                models=evidence.models,
                policy=card.document.policy,
            )
            verdict = self._settle(verdict, card, carrier, store)
        if verdict.liveness is not None and not verdict.liveness.live:
            for code in verdict.liveness.reasons:
                self.metrics.liveness_rejects.labels(reason=code.value).inc()
        # 3. Record the attempt, and the decision when final.
        return self._record(session_id, number, verdict, card.document)

    def _record(
        self, session_id: str, number: int, verdict: Verdict, document: DocumentEvidence
    ) -> StepPublic:
        now = self.clock()
        with self.db.session() as db:
            session = db.get_one(Session, session_id)
            codes = verdict.codes
            score = None if verdict.match is None else round(verdict.match.score, 4)
            db.add(
                Attempt(
                    session_id=session_id,
                    number=number,
                    outcome=verdict.outcome.value,
                    reasons=codes,
                    score=score,
                    created_at=now,
                )
            )
            append_audit(
                db,
                "attempt.recorded",
                now=now,
                tenant_id=session.tenant_id,
                session_id=session_id,
                data={"number": number, "outcome": verdict.outcome.value, "reasons": codes},
            )
            self.metrics.attempts.labels(outcome=verdict.outcome.value).inc()
            decision = None
            if verdict.final:
                decision = self._finalise(
                    db, session, verdict, from_state=SessionState.AWAITING_SELFIE, document=document
                )
                if decision is None:  # a concurrent upload decided first: report its decision
                    decision = db.scalars(
                        select(Decision).where(Decision.session_id == session_id)
                    ).first()
            return self._step(
                session,
                outcome=verdict.outcome.value,
                reasons=codes,
                messages=_messages(codes),
                decision=self._decision_public(decision) if decision else None,
            )

    def _settle(self, verdict: Verdict, card: HeldCard, carrier: str, store: str) -> Verdict:
        """The line registry's part of an attempt: a failed face check is reported (repeated
        failures with one card across stores flag a possibly stolen card), and a `pass` is
        re-checked against the subscription rules, since lines may have opened elsewhere
        since the document step."""
        from dataclasses import replace

        from faceproof.errors import ServiceError
        from faceproof.policy import FailedCheck

        identity = card.registry_identity
        if identity is None:
            return verdict
        failed_face = (verdict.match is not None and not verdict.match.match) or (
            verdict.liveness is not None and not verdict.liveness.live
        )
        if failed_face:
            try:
                self.registry.record_failed_check(
                    FailedCheck(identity, carrier, store, self.clock())
                )
            except ServiceError:
                _log.warning("line registry unavailable: a failed check was not reported")
        if verdict.outcome is not Outcome.PASS:
            return verdict
        recheck = self._policy(identity, carrier, store, "pre_pass")
        if recheck.decision == "deny":
            return replace(verdict, outcome=Outcome.FAIL, reasons=recheck.reasons)
        if recheck.decision == "review":
            return replace(
                verdict, outcome=Outcome.REVIEW, reasons=(*verdict.reasons, *recheck.reasons)
            )
        return verdict

    def _decide(self, card: HeldCard, image: bytes, number: int, limit: int) -> Verdict:
        comparer = self._comparer()
        result: CompareResult | None = None
        unusable: ReasonCode | None = None
        try:
            live = comparer.template(image)
            result = comparer.compare_templates(card.template, live)
        except InputError as exc:
            unusable = exc.code
        return decide(
            match=result,
            liveness=None,  # a still selfie: liveness_not_performed
            unusable=unusable,
            attempt=number,
            attempts_limit=limit,
            document=card.document.status,
            document_reasons=card.document.reasons,
            models=comparer_models(comparer, result),
            policy=card.document.policy,
        )

    def _finalise(
        self,
        db: DbSession,
        session: Session,
        verdict: Verdict,
        *,
        from_state: str,
        document: DocumentEvidence | None = None,
    ) -> Decision | None:
        """Decide once: the state change is a conditional UPDATE, so of two concurrent requests
        only one stores a decision (the other gets None)."""
        claimed = db.execute(
            update(Session)
            .where(Session.id == session.id, Session.state == from_state)
            .values(state=SessionState.COMPLETED, capture_token_used=True)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return None
        db.refresh(session)
        now = self.clock()
        codes = verdict.codes
        result = verdict.match
        models = list(verdict.models)
        assurance: dict[str, Any] = {
            "models": models,
            "threshold": None if result is None else round(result.threshold, 4),
            "fmr_target": None if result is None else result.fmr_target,
            "score": None if result is None else round(result.score, 4),
            "calibration": None if result is None else result.calibration_source,
            "liveness_score": None
            if verdict.liveness is None
            else round(verdict.liveness.score, 4),
            "liveness_checks": verdict.liveness_checks(),
            "document_checks": [] if document is None else document.checks_list(),
            "document_status": verdict.document.value,
            "document_type": None if document is None else document.type,
            "attempts_used": session.attempts_used,
        }
        claims: dict[str, Any] = {
            "iss": self.settings.receipt_issuer,
            "sid": session.id,
            "tenant": session.tenant_id,
            "decision": verdict.outcome.value,
            "reasons": codes,
            "assurance": assurance,
            # pseudonymise(number, pseudonym key): never the number itself
            "subject": None if document is None else document.subject,
            "session_created_at": session.created_at.isoformat(),
            "decided_at": now.isoformat(),
            "iat": int(now.timestamp()),
        }
        decision = Decision(
            session_id=session.id,
            tenant_id=session.tenant_id,
            decision=verdict.outcome.value,
            reasons=codes,
            scores=verdict.scores(),
            model_versions=models,
            threshold=assurance["threshold"],
            fmr_target=assurance["fmr_target"],
            subject_id=None if document is None else document.subject,
            receipt=self.signer.sign(claims),
            created_at=now,
        )
        db.add(decision)
        append_audit(
            db,
            "decision.made",
            now=now,
            tenant_id=session.tenant_id,
            session_id=session.id,
            data={"decision": verdict.outcome.value, "reasons": codes},
        )
        from .webhooks import WebhookEvent, enqueue_event

        # The webhook outbox, in the decision's transaction: both are stored, or neither.
        enqueue_event(db, WebhookEvent.SESSION_DECIDED, decision, now=now)
        db.flush()
        sid, outcome = session.id, verdict.outcome.value

        def stored(_db: DbSession) -> None:  # only once committed: a failed commit decided nothing
            self.templates.drop(sid)
            for code in codes:
                self.metrics.decisions.labels(decision=outcome, reason=code).inc()
            _log.info("session %s decided %s %s", sid, outcome, ",".join(codes))

        event.listen(db, "after_commit", stored, once=True)
        return decision
