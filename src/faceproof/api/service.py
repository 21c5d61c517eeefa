"""The verification flow behind the HTTP routes: sessions, consent, uploads, decisions.

Synchronous by design: routes call it through a thread pool, so database work and CPU-bound
inference never run on the event loop.

What decides, in this release (the document reader and liveness are not integrated yet):
  * the document upload is treated as the card portrait: its face template is kept in process
    memory (`TemplateStore`) until the selfie arrives, then dropped;
  * a selfie that matches gives `review` with `liveness_not_performed`, never `pass`: no
    unverified pass is ever issued;
  * a selfie that does not match, or cannot be used, is an attempt with outcome `retry` while
    attempts remain; the last one gives `alternative_required` with `attempts_exhausted`;
  * declining consent gives `alternative_required` with `consent_declined`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from faceproof.comparison import CompareResult, FaceComparer
from faceproof.errors import InputError
from faceproof.faces.types import FaceTemplate
from faceproof.privacy.receipts import ReceiptSigner
from faceproof.reasons import ReasonCode, describe
from faceproof.settings import Settings
from faceproof.storage.audit import append_audit
from faceproof.storage.db import Database
from faceproof.storage.models import Attempt, Decision, Session

from .metrics import Metrics
from .problems import ApiError
from .ratelimit import RateLimiter
from .schemas import (
    AttemptPublic,
    ConsentChoice,
    DecisionPublic,
    ReasonPublic,
    SessionCreate,
    SessionCreated,
    SessionPublic,
    StepPublic,
)
from .templates import TemplateStore

__all__ = ["SessionState", "VerificationService"]

_log = logging.getLogger("faceproof.api")


class SessionState:
    AWAITING_CONSENT = "awaiting_consent"
    AWAITING_DOCUMENT = "awaiting_document"
    AWAITING_SELFIE = "awaiting_selfie"
    COMPLETED = "completed"
    EXPIRED = "expired"  # computed on read, never stored


@dataclass(frozen=True)
class _Outcome:
    outcome: str  # review | retry | alternative_required
    final: bool
    reasons: list[ReasonCode]
    result: CompareResult | None


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


class VerificationService:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        signer: ReceiptSigner,
        comparer: Callable[[], FaceComparer],
        clock: Callable[[], datetime],
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.db = database
        self.signer = signer
        self._comparer = comparer
        self.clock = clock
        self.metrics = metrics
        self.templates = TemplateStore(clock)
        self.tenant_limiter = RateLimiter(settings.rate_limit_tenant_per_minute, clock)
        self.client_limiter = RateLimiter(settings.rate_limit_client_per_minute, clock)
        self._lock = threading.Lock()

    # --- sessions (carrier backend, API key) ----------------------------------------------

    def create_session(self, tenant_id: str, body: SessionCreate) -> SessionCreated:
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

    def get_session(self, tenant_id: str, session_id: str) -> SessionPublic:
        with self.db.session() as db:
            session = db.scalars(
                select(Session).where(Session.id == session_id, Session.tenant_id == tenant_id)
            ).first()
            if session is None:
                raise ApiError(ReasonCode.SESSION_NOT_FOUND)
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
            decision = self._finalise(
                db,
                session,
                _Outcome("alternative_required", True, [ReasonCode.CONSENT_DECLINED], None),
                from_state=SessionState.AWAITING_CONSENT,
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
        """Face template of the card portrait, kept in memory only, until the selfie arrives."""
        with self.db.session() as db:
            session = self._by_token(db, token)
            self._require_consent(session)
            if session.state not in (SessionState.AWAITING_DOCUMENT, SessionState.AWAITING_SELFIE):
                raise ApiError(ReasonCode.SESSION_STATE)
            session_id, token_expires = session.id, session.capture_token_expires_at
        template = self._comparer().template(image)  # InputError -> 422 problem, state unchanged
        del image
        now = self.clock()
        with self.db.session() as db:
            session = self._by_token(db, token)
            if session.state not in (SessionState.AWAITING_DOCUMENT, SessionState.AWAITING_SELFIE):
                raise ApiError(ReasonCode.SESSION_STATE)
            session.state = SessionState.AWAITING_SELFIE
            append_audit(
                db,
                "session.document_accepted",
                now=now,
                tenant_id=session.tenant_id,
                session_id=session.id,
                data={"reasons": [c.value for c in template.observation.reasons]},
            )
            self.templates.put(session_id, template, min(token_expires, session.expires_at))
            return self._step(
                session,
                outcome="document_accepted",
                reasons=[c.value for c in template.observation.reasons],
                messages=_messages([c.value for c in template.observation.reasons]),
            )

    @staticmethod
    def _require_consent(session: Session) -> None:
        if session.state == SessionState.AWAITING_CONSENT:
            raise ApiError(ReasonCode.CONSENT_REQUIRED)

    def selfie(self, token: str, image: bytes) -> StepPublic:
        # 1. Reserve an attempt atomically (two concurrent uploads cannot both take the last).
        with self.db.session() as db:
            session = self._by_token(db, token)
            self._require_consent(session)
            if session.state != SessionState.AWAITING_SELFIE:
                raise ApiError(ReasonCode.SESSION_STATE, "upload the document first")
            card = self.templates.get(session.id)
            if card is None:
                raise ApiError(
                    ReasonCode.SESSION_STATE,
                    "the document is no longer held (restart or timeout): upload it again",
                )
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
            number, limit, session_id = session.attempts_used, session.attempts_limit, session.id
        # 2. Inference, outside any transaction.
        outcome = self._decide(card, image, number, limit)
        del image
        # 3. Record the attempt, and the decision when final.
        now = self.clock()
        with self.db.session() as db:
            session = db.get_one(Session, session_id)
            codes = [c.value for c in outcome.reasons]
            score = None if outcome.result is None else round(outcome.result.score, 4)
            db.add(
                Attempt(
                    session_id=session_id,
                    number=number,
                    outcome=outcome.outcome,
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
                data={"number": number, "outcome": outcome.outcome, "reasons": codes},
            )
            self.metrics.attempts.labels(outcome=outcome.outcome).inc()
            decision = None
            if outcome.final:
                decision = self._finalise(
                    db, session, outcome, from_state=SessionState.AWAITING_SELFIE
                )
                if decision is None:  # a concurrent upload decided first: report its decision
                    decision = db.scalars(
                        select(Decision).where(Decision.session_id == session_id)
                    ).first()
            return self._step(
                session,
                outcome=outcome.outcome,
                reasons=codes,
                messages=_messages(codes),
                decision=self._decision_public(decision) if decision else None,
            )

    def _decide(self, card: FaceTemplate, image: bytes, number: int, limit: int) -> _Outcome:
        comparer = self._comparer()
        result: CompareResult | None = None
        try:
            live = comparer.template(image)
            result = comparer.compare_templates(card, live)
            reasons = list(result.reasons)
        except InputError as exc:
            reasons = [exc.code]
        if result is not None and result.match:
            # No liveness yet: a match alone is never a pass.
            return _Outcome("review", True, [*reasons, ReasonCode.LIVENESS_NOT_PERFORMED], result)
        if number >= limit:
            return _Outcome(
                "alternative_required", True, [*reasons, ReasonCode.ATTEMPTS_EXHAUSTED], result
            )
        return _Outcome("retry", False, reasons, result)

    def _finalise(
        self, db: DbSession, session: Session, outcome: _Outcome, *, from_state: str
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
        codes = [c.value for c in outcome.reasons]
        result = outcome.result
        models = self._model_versions(result)
        assurance: dict[str, Any] = {
            "models": models,
            "threshold": None if result is None else round(result.threshold, 4),
            "fmr_target": None if result is None else result.fmr_target,
            "score": None if result is None else round(result.score, 4),
            "calibration": None if result is None else result.calibration_source,
            "liveness_checks": [],
            "document_checks": [],
            "attempts_used": session.attempts_used,
        }
        claims: dict[str, Any] = {
            "iss": self.settings.receipt_issuer,
            "sid": session.id,
            "tenant": session.tenant_id,
            "decision": outcome.outcome,
            "reasons": codes,
            "assurance": assurance,
            "subject": None,  # pseudonymous id from the document number: needs documents/
            "session_created_at": session.created_at.isoformat(),
            "decided_at": now.isoformat(),
            "iat": int(now.timestamp()),
        }
        decision = Decision(
            session_id=session.id,
            tenant_id=session.tenant_id,
            decision=outcome.outcome,
            reasons=codes,
            scores={} if result is None else {"score": round(result.score, 4)},
            model_versions=models,
            threshold=assurance["threshold"],
            fmr_target=assurance["fmr_target"],
            subject_id=None,
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
            data={"decision": outcome.outcome, "reasons": codes},
        )
        db.flush()
        self.templates.drop(session.id)
        for code in codes:
            self.metrics.decisions.labels(decision=outcome.outcome, reason=code).inc()
        _log.info("session %s decided %s %s", session.id, outcome.outcome, ",".join(codes))
        return decision

    def _model_versions(self, result: CompareResult | None) -> list[str]:
        if result is None:
            return []
        comparer = self._comparer()
        detector = getattr(comparer.analyzer.detector, "model_id", None)
        models = sorted(result.details.cosines)
        return ([detector] if isinstance(detector, str) else []) + models
