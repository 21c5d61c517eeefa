"""The operator dashboard's API and the public transparency answer (issue 7).

- `GET /v1/dashboard/summary?days=N` (admin): the caller's tenant only: decisions per day by
  outcome, pass rates by channel and by store, liveness rejects by reason and attack type,
  attempts per session (all GROUP BY queries that run alike on SQLite and PostgreSQL; days are
  Korean calendar days, UTC+9), and capture-route latency percentiles estimated from the
  in-process Prometheus histogram (this worker, since it started, all tenants).
- `GET /v1/audit?limit=&before=` (admin): the tenant's audit-log entries, newest first, with the
  chain's check status. Entries hold event names, ids and codes; the answer keeps only scalar
  values and lists of strings, so nothing numeric-array-shaped (a template) could ever leave.
- `GET /v1/transparency` (public): what the system runs and how well it measured: models with
  package versions, SHA-256 and licences, the matcher's threshold and FMR target with their
  provenance (the calibration file; no model is loaded to answer), liveness checks and
  thresholds, document types, subscription rules, retention. Built once per app, cached.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import Interval, String, cast, func, literal_column, select
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.sql.elements import ColumnElement

from faceproof.documents import DocumentType
from faceproof.faces.matcher import MatcherCalibration
from faceproof.liveness.challenge import ACTIONS
from faceproof.liveness.engine import LivenessConfig
from faceproof.models.registry import REGISTRY
from faceproof.reasons import ReasonCode, describe
from faceproof.storage.audit import verify_chain
from faceproof.storage.models import Attempt, AuditEntry, Decision, Session

from .deps import AdminOnly, ServiceDep
from .problems import PROBLEM_JSON
from .schemas import Problem
from .service import VerificationService

__all__ = ["LIVENESS_ATTACKS", "OUTCOMES", "histogram_quantile", "router"]

router = APIRouter(tags=["dashboard"])

#: Final decisions, in the order the dashboard stacks them.
OUTCOMES = ("pass", "review", "fail", "alternative_required")
_KST = timedelta(hours=9)
_CAPTURE_PREFIX = "/v1/capture/{token}/"
_QUANTILES = (0.5, 0.95, 0.99)
_CHAIN_CHECK_TTL_S = 30.0
_MAX_ID = 2**31 - 1  # the audit log's INTEGER id on PostgreSQL

#: Liveness reject codes and the presentation attack (or condition) each points to.
LIVENESS_ATTACKS: dict[ReasonCode, str] = {
    ReasonCode.PLANAR_MOTION: "photo_or_screen",
    ReasonCode.MOTION_INSUFFICIENT: "still_photo",
    ReasonCode.PRINT_DETECTED: "print",
    ReasonCode.SCREEN_DETECTED: "screen",
    ReasonCode.CHALLENGE_NOT_FOLLOWED: "replay_or_not_followed",
    ReasonCode.FACE_CHANGED: "splice",
    ReasonCode.FRAME_TIMING: "injected_or_frozen",
    ReasonCode.TOO_DARK: "too_dark",
    ReasonCode.PRESENTATION_ATTACK: "learned_pad",  # the operator's PAD model, when one is set
}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    content = {PROBLEM_JSON: {"schema": Problem.model_json_schema()}}
    return {
        s: {"description": "problem+json with a reason code", "content": content} for s in statuses
    }


# --- response models ----------------------------------------------------------------------------


class DayCounts(BaseModel):
    day: date = Field(description="calendar day in Korea (UTC+9)")
    counts: dict[str, int] = Field(description="decisions by outcome")


class PassRate(BaseModel):
    key: str = Field(description="the channel or store id")
    decided: int
    counts: dict[str, int]
    pass_rate: float = Field(description="pass / decided, 0..1")


class LivenessReject(BaseModel):
    reason: str
    attack: str = Field(description="the presentation attack (or condition) the code points to")
    count: int = Field(description="attempts carrying this code")
    message_en: str
    message_ko: str


class AttemptsBucket(BaseModel):
    attempts: int
    sessions: int


class RouteLatency(BaseModel):
    method: str
    route: str
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None


class DashboardSummary(BaseModel):
    days: int
    since: datetime
    until: datetime
    timezone: str = "Asia/Seoul (UTC+9)"
    outcomes: list[str]
    totals: dict[str, int]
    decisions_by_day: list[DayCounts]
    by_channel: list[PassRate]
    by_store: list[PassRate]
    liveness_rejects: list[LivenessReject]
    attempts_per_session: list[AttemptsBucket]
    latency: list[RouteLatency]
    latency_scope: str


class AuditEntryPublic(BaseModel):
    id: int
    ts: str
    event: str
    session_id: str | None
    data: dict[str, str | int | float | bool | list[str] | None]
    hash: str


class AuditChain(BaseModel):
    intact: bool
    checked_at: datetime
    first_broken_id: int | None = Field(
        description="the first altered entry, when it is one of this tenant's"
    )


class AuditPage(BaseModel):
    entries: list[AuditEntryPublic]
    next_before: int | None = Field(description="pass as `before` for the next (older) page")
    chain: AuditChain


class ModelPublic(BaseModel):
    model_id: str
    task: str
    runtime: str
    package: str
    package_version: str
    sha256: str
    licence: str
    accuracy: str
    upstream: str


class MatcherPublic(BaseModel):
    primary: str
    secondary: str | None
    threshold: float = Field(description="on the z-normalised (fused) score")
    fmr_target: float
    dataset: str
    n_genuine: int
    n_impostor: int
    low_confidence: bool
    note: str
    calibrated_at: str


class AccuracyFigure(BaseModel):
    measure: str = Field(description="fmr, fnmr, eer, tar_at_fmr_1e-3, tar_at_fmr_1e-4, fte")
    value: float = Field(description="a fraction, 0..1")
    count: str = Field(description="the pairs or images behind it, when stated")
    basis: str = Field(description="cross_validated (the estimate to quote) or in_sample")


class LivenessCheck(BaseModel):
    code: str
    attack: str
    message_en: str
    message_ko: str


class LivenessPublic(BaseModel):
    checks: list[LivenessCheck] = Field(description="what a clip that is not live is told")
    thresholds: dict[str, float]
    challenge_actions: list[str]
    challenge_actions_min: int = 2
    challenge_actions_max: int = 4
    challenge_ttl_seconds: float
    action_window_seconds: float


class PolicyPublic(BaseModel):
    rules_version: str
    max_new_lines: int
    window_days: int
    enforce_block: bool
    enforce_bar: bool
    stolen_card_max_failed: int
    stolen_card_window_hours: int


class DocLink(BaseModel):
    title: str
    path: str


class TransparencyPublic(BaseModel):
    service_version: str
    models: list[ModelPublic]
    matcher: MatcherPublic
    accuracy: list[AccuracyFigure]
    liveness: LivenessPublic
    document_types: list[str]
    alternatives: list[str]
    policy: PolicyPublic
    retention_days: int
    attempts_limit: int
    session_ttl_seconds: int
    biometrics_stored: bool = False
    evaluation_docs: list[DocLink]


# --- the summary --------------------------------------------------------------------------------


def _local_day(column: Any, dialect: str) -> ColumnElement[Any]:
    """The Korean calendar day of a naive-UTC timestamp column, as 'YYYY-MM-DD' text."""
    if dialect == "postgresql":
        shifted = column + literal_column("interval '9 hours'", type_=Interval)
        return func.to_char(shifted, "YYYY-MM-DD")
    return func.date(column, "+9 hours")


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _rates(rows: Iterable[Sequence[Any]]) -> list[PassRate]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    for key, outcome, n in rows:
        counts[str(key)][str(outcome)] = int(n)
    rates = []
    for key, by_outcome in counts.items():
        decided = sum(by_outcome.values())
        rates.append(
            PassRate(
                key=key,
                decided=decided,
                counts=by_outcome,
                pass_rate=by_outcome.get("pass", 0) / decided,
            )
        )
    return sorted(rates, key=lambda r: (-r.decided, r.key))


def _liveness_rejects(rows: Iterable[Sequence[Any]]) -> list[LivenessReject]:
    """Rows of (reasons as JSON text, attempts) to counts per liveness reject code."""
    counts: dict[ReasonCode, int] = defaultdict(int)
    for reasons_json, n in rows:
        for code in set(json.loads(reasons_json or "[]")):
            if code in LIVENESS_ATTACKS:
                counts[ReasonCode(code)] += int(n)
    return [
        LivenessReject(
            reason=code.value,
            attack=LIVENESS_ATTACKS[code],
            count=n,
            message_en=describe(code).message_en,
            message_ko=describe(code).message_ko,
        )
        for code, n in sorted(counts.items(), key=lambda item: (-item[1], item[0].value))
    ]


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus' estimate: `buckets` are (upper bound, cumulative count), ending with +Inf;
    linear within the bucket the rank falls in; the highest finite bound past it."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for upper, cumulative in ordered:
        if cumulative >= rank:
            if math.isinf(upper):
                return lower
            if cumulative == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (cumulative - below)
        lower, below = upper, cumulative
    return lower


def _latency(service: VerificationService) -> list[RouteLatency]:
    buckets: dict[tuple[str, str], dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for family in service.metrics.latency.collect():
        for sample in family.samples:
            route = sample.labels.get("route", "")
            if not sample.name.endswith("_bucket") or not route.startswith(_CAPTURE_PREFIX):
                continue  # statuses are summed: one histogram per method and route
            le = float(sample.labels["le"])
            buckets[(sample.labels["method"], route)][le] += sample.value
    rows = []
    for (method, route), by_le in sorted(buckets.items(), key=lambda item: item[0][::-1]):
        series = list(by_le.items())
        p50, p95, p99 = (histogram_quantile(q, series) for q in _QUANTILES)
        rows.append(RouteLatency(method=method, route=route, p50_s=p50, p95_s=p95, p99_s=p99))
    return rows


def summarise(service: VerificationService, tenant_id: str, days: int) -> DashboardSummary:
    """The tenant's aggregates over the last `days` Korean calendar days (today included)."""
    now = service.clock()
    today = (now + _KST).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC) - _KST
    with service.db.session() as db:
        dialect = db.get_bind().dialect.name
        day = _local_day(Decision.created_at, dialect)
        recent = (Decision.tenant_id == tenant_id, Decision.created_at >= since)
        per_day = db.execute(
            select(day, Decision.decision, func.count())
            .where(*recent)
            .group_by(day, Decision.decision)
        ).all()
        by_channel, by_store = (
            db.execute(
                select(key, Decision.decision, func.count())
                .join(Session, Session.id == Decision.session_id)
                .where(*recent)
                .group_by(key, Decision.decision)
            ).all()
            for key in (Session.channel, Session.store_id)
        )
        reasons_text = cast(Attempt.reasons, String)
        reject_rows = db.execute(
            select(reasons_text, func.count())
            .join(Session, Session.id == Attempt.session_id)
            .where(
                Session.tenant_id == tenant_id,
                Attempt.created_at >= since,
                Attempt.outcome.not_in(("pass", "review")),
            )
            .group_by(reasons_text)
        ).all()
        attempts = db.execute(
            select(Session.attempts_used, func.count())
            .where(Session.tenant_id == tenant_id, Session.created_at >= since)
            .group_by(Session.attempts_used)
            .order_by(Session.attempts_used)
        ).all()
    grid: dict[date, dict[str, int]] = {
        first + timedelta(days=i): dict.fromkeys(OUTCOMES, 0) for i in range(days)
    }
    totals = dict.fromkeys(OUTCOMES, 0)
    for raw_day, outcome, n in per_day:
        grid.setdefault(_as_date(raw_day), dict.fromkeys(OUTCOMES, 0))[outcome] = int(n)
        totals[outcome] = totals.get(outcome, 0) + int(n)
    return DashboardSummary(
        days=days,
        since=since,
        until=now,
        outcomes=list(OUTCOMES),
        totals=totals,
        decisions_by_day=[DayCounts(day=d, counts=c) for d, c in sorted(grid.items())],
        by_channel=_rates(by_channel),
        by_store=_rates(by_store),
        liveness_rejects=_liveness_rejects(reject_rows),
        attempts_per_session=[AttemptsBucket(attempts=a, sessions=n) for a, n in attempts],
        latency=_latency(service),
        latency_scope="this worker since it started, all tenants; estimated from histogram buckets",
    )


@router.get(
    "/v1/dashboard/summary",
    response_model=DashboardSummary,
    responses=_problems(401, 403, 422, 429),
    summary="The tenant's decisions, pass rates, liveness rejects and capture latency",
)
async def dashboard_summary(
    caller: AdminOnly,
    service: ServiceDep,
    days: Annotated[
        int, Query(ge=1, le=366, description="Korean calendar days, today included")
    ] = 30,
) -> DashboardSummary:
    return await run_in_threadpool(summarise, service, caller.tenant_id, days)


# --- the audit log ------------------------------------------------------------------------------


def _safe_data(data: dict[str, Any]) -> dict[str, str | int | float | bool | list[str] | None]:
    """Scalars and lists of strings only (event data are ids, names and codes)."""
    safe: dict[str, str | int | float | bool | list[str] | None] = {}
    for key, value in data.items():
        if value is None or isinstance(value, str | int | float | bool):
            safe[key] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            safe[key] = list(value)
    return safe


def _chain_status(request: Request, db: DbSession, tenant_id: str, now: datetime) -> AuditChain:
    """`verify_chain` reads the whole log: its answer is reused for a few seconds per app."""
    cached = getattr(request.app.state, "audit_chain", None)
    if cached is None or time.monotonic() - cached[0] > _CHAIN_CHECK_TTL_S:
        cached = (time.monotonic(), verify_chain(db), now)
        request.app.state.audit_chain = cached
    _, broken, checked_at = cached
    own = None
    if broken is not None:
        entry = db.get(AuditEntry, broken)
        own = broken if entry is not None and entry.tenant_id == tenant_id else None
    return AuditChain(intact=broken is None, checked_at=checked_at, first_broken_id=own)


def audit_page(
    request: Request, service: VerificationService, tenant_id: str, limit: int, before: int | None
) -> AuditPage:
    query = select(AuditEntry).where(AuditEntry.tenant_id == tenant_id)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    with service.db.session() as db:
        rows = list(db.scalars(query.order_by(AuditEntry.id.desc()).limit(limit + 1)))
        entries = [
            AuditEntryPublic(
                id=row.id,
                ts=row.ts,
                event=row.event,
                session_id=row.session_id,
                data=_safe_data(row.data),
                hash=row.hash,
            )
            for row in rows[:limit]
        ]
        chain = _chain_status(request, db, tenant_id, service.clock())
    more = len(rows) > limit
    return AuditPage(entries=entries, next_before=entries[-1].id if more else None, chain=chain)


@router.get(
    "/v1/audit",
    response_model=AuditPage,
    responses=_problems(401, 403, 422, 429),
    summary="The tenant's audit-log entries, newest first, and the chain's status",
)
async def audit_log(
    request: Request,
    caller: AdminOnly,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=_MAX_ID, description="entries older than this id")
    ] = None,
) -> AuditPage:
    return await run_in_threadpool(audit_page, request, service, caller.tenant_id, limit, before)


# --- transparency -------------------------------------------------------------------------------

# docs/model-card.md: cross-validated by identity (the estimate to quote) and in-sample, on the
# shared development faces (not selfie-vs-ID-card data).
_ACCURACY = (
    ("fmr", 0.0, "0 / 42,419", "cross_validated"),
    ("fnmr", 0.057, "188 / 3,301", "cross_validated"),
    ("eer", 0.0148, "", "cross_validated"),
    ("tar_at_fmr_1e-3", 0.9739, "", "cross_validated"),
    ("eer", 0.0176, "", "in_sample"),
    ("tar_at_fmr_1e-4", 0.9555, "", "in_sample"),
    ("fte", 0.0, "0 / 582", "in_sample"),
)
_DOCS = (
    ("Model card: models, threshold, measured accuracy", "docs/model-card.md"),
    ("Liveness: checks, thresholds, known limits", "docs/liveness.md"),
    ("Benchmarks", "docs/benchmarks.md"),
    ("The verification service: decisions, retention, security", "docs/service.md"),
    ("Subscription policy", "docs/policy.md"),
    ("ID documents", "docs/documents.md"),
)


def build_transparency(service: VerificationService, version: str) -> TransparencyPublic:
    calibration = MatcherCalibration.load()  # the JSON file: no ONNX model is loaded
    liveness = LivenessConfig()
    rules = service.rules
    settings = service.settings
    thresholds = {
        "parallax_planar_residual_iod": liveness.parallax.planar_threshold,
        "parallax_min_motion_iod": liveness.parallax.min_motion,
        "identity_min_cosine": liveness.min_identity_cosine,
        "dark_face_luma": liveness.dark_luma,
        "turn_degrees": liveness.actions.turn_deg,
        "look_up_degrees": liveness.actions.look_up_deg,
        "cue_periodic_peak": liveness.cues.peak,
        "cue_glare_share": liveness.cues.glare,
    }
    return TransparencyPublic(
        service_version=version,
        models=[
            ModelPublic(
                model_id=spec.model_id,
                task=spec.task,
                runtime=spec.runtime,
                package=spec.source_package,
                package_version=spec.source_version,
                sha256=spec.sha256,
                licence=spec.licence,
                accuracy=spec.accuracy_card,
                upstream=spec.upstream,
            )
            for spec in REGISTRY.values()
        ],
        matcher=MatcherPublic(
            primary=calibration.primary,
            secondary=calibration.secondary,
            threshold=calibration.threshold,
            fmr_target=calibration.fmr_target,
            dataset=calibration.dataset,
            n_genuine=calibration.n_genuine,
            n_impostor=calibration.n_impostor,
            low_confidence=calibration.low_confidence,
            note=calibration.note,
            calibrated_at=calibration.created_at,
        ),
        accuracy=[AccuracyFigure(measure=m, value=v, count=c, basis=b) for m, v, c, b in _ACCURACY],
        liveness=LivenessPublic(
            checks=[
                LivenessCheck(
                    code=code.value,
                    attack=attack,
                    message_en=describe(code).message_en,
                    message_ko=describe(code).message_ko,
                )
                for code, attack in LIVENESS_ATTACKS.items()
                # The learned PAD check runs only with the operator's model.
                if code is not ReasonCode.PRESENTATION_ATTACK or service.settings.pad_model_path
            ],
            thresholds=thresholds,
            challenge_actions=list(ACTIONS),
            challenge_ttl_seconds=service.challenges.ttl_s,
            action_window_seconds=service.challenges.window_s,
        ),
        document_types=[t.value for t in DocumentType],
        alternatives=["mobile_id", "manual_abstract"],
        policy=PolicyPublic(
            rules_version=rules.version,
            max_new_lines=rules.max_new_lines,
            window_days=rules.window_days,
            enforce_block=rules.enforce_block,
            enforce_bar=rules.enforce_bar,
            stolen_card_max_failed=rules.stolen_card_max_failed,
            stolen_card_window_hours=rules.stolen_card_window_hours,
        ),
        retention_days=settings.retention_days,
        attempts_limit=settings.attempts_limit,
        session_ttl_seconds=settings.session_ttl_seconds,
        evaluation_docs=[DocLink(title=t, path=p) for t, p in _DOCS],
    )


@router.get(
    "/v1/transparency",
    response_model=TransparencyPublic,
    responses=_problems(503),
    summary="Public: what the system does and how well (models, threshold, FMR target, limits)",
)
def transparency(request: Request, response: Response, service: ServiceDep) -> TransparencyPublic:
    cached = getattr(request.app.state, "transparency", None)
    if not isinstance(cached, TransparencyPublic):
        cached = build_transparency(service, request.app.version)
        request.app.state.transparency = cached
    response.headers["Cache-Control"] = "public, max-age=300"
    return cached
