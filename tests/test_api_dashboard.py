"""The operator dashboard's API: the tenant's aggregates, the audit-log viewer and the public
transparency answer. Sessions and decisions are made through the API (declined consent, a
genuine selfie, three unusable selfies); liveness rejects are attempt rows written directly,
since a clip flow needs the liveness models (test_api_liveness.py covers that path). Runs on
SQLite, and on PostgreSQL when FACEPROOF_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conftest import Card, Images
from faceproof.api.dashboard import histogram_quantile
from faceproof.comparison import FaceComparer
from faceproof.policy import load_rules
from faceproof.storage.models import Attempt, Tenant
from faceproof.storage.tenants import Scope, create_api_key, create_tenant
from test_api import T0, Env, _make_env, assert_problem
from test_storage import database_url

CALIBRATION = Path(__file__).parents[1] / "src/faceproof/faces/calibration.json"


@dataclass
class World:
    env: Env
    sessions: dict[str, dict[str, Any]]  # name -> the created session

    def summary(self, key: str = "admin", days: int = 7) -> dict[str, Any]:
        r = self.env.client.get(
            "/v1/dashboard/summary", params={"days": days}, headers=self.env.auth(key)
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def audit(self, key: str = "admin", **params: Any) -> dict[str, Any]:
        r = self.env.client.get("/v1/audit", params=params, headers=self.env.auth(key))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


def _decline(env: Env, **overrides: Any) -> dict[str, Any]:
    session = env.new_session(**overrides)
    r = env.client.post(f"{env.capture_path(session)}/consent", json={"choice": "decline"})
    assert r.json()["decision"]["decision"] == "alternative_required"
    return session


def _selfies(env: Env, card: Card, selfies: list[bytes], **overrides: Any) -> dict[str, Any]:
    session = env.new_session(**overrides)
    path = env.capture_path(session)
    assert env.client.post(f"{path}/consent", json={"choice": "accept"}).status_code == 200
    assert env.upload(f"{path}/document", card.jpeg).status_code == 200
    for selfie in selfies:
        assert env.upload(f"{path}/selfie", selfie).status_code == 200
    return session


def _add_attempts(env: Env, session_id: str, reasons: list[list[str]]) -> None:
    service = env.client.app.state.service  # type: ignore[attr-defined]
    with service.db.session() as db:
        for number, codes in enumerate(reasons, start=1):
            db.add(
                Attempt(
                    session_id=session_id,
                    number=number,
                    outcome="retry",
                    reasons=codes,
                    created_at=env.clock(),
                )
            )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    comparer: FaceComparer,
    images: Images,
    card: Card,
) -> Iterator[World]:
    """Tenant A: yesterday one declined consent (in store, gangnam-01); today one declined
    (in store, jamsil-02), one genuine selfie (online, gangnam-01: review), three unusable
    selfies (in store, jamsil-02: alternative_required), one session with liveness rejects.
    Tenant B: one declined consent today."""
    tmp_path = tmp_path_factory.mktemp("dashboard")
    for env in _make_env(tmp_path, database_url(request.param, tmp_path), comparer):
        service = env.client.app.state.service  # type: ignore[attr-defined]
        with service.db.session() as db:
            c = create_tenant(db, "tenant-c", now=T0)
            env.keys["other_admin"] = create_api_key(
                db, _tenant_id(db, "tenant-b"), [Scope.ADMIN], now=T0
            )[1]
            env.keys["c_admin"] = create_api_key(db, c.id, [Scope.ADMIN], now=T0)[1]
        sessions = {"yesterday": _decline(env, store_id="gangnam-01")}
        env.clock.advance(24 * 3600)
        sessions["declined"] = _decline(env, store_id="jamsil-02")
        sessions["review"] = _selfies(
            env, card, [images.example_b], channel="online", store_id="gangnam-01"
        )
        sessions["exhausted"] = _selfies(env, card, [images.flat_grey] * 3, store_id="jamsil-02")
        sessions["pad"] = env.new_session(store_id="jamsil-02")
        _add_attempts(
            env,
            sessions["pad"]["id"],
            [["planar_motion", "print_detected"], ["challenge_not_followed"], ["planar_motion"]],
        )
        other = env.client.post(
            "/v1/sessions",
            json={"store_id": "busan-09", "channel": "online", "purpose": "new_line"},
            headers=env.auth("other"),
        ).json()
        env.client.post(f"{env.capture_path(other)}/consent", json={"choice": "decline"})
        sessions["other"] = other
        yield World(env, sessions)


def _tenant_id(db: Any, name: str) -> str:
    tenant_id: str = db.scalars(select(Tenant.id).where(Tenant.name == name)).one()
    return tenant_id


# --- the summary --------------------------------------------------------------------------------


def test_summary_counts_the_tenants_decisions_exactly(world: World) -> None:
    summary = world.summary(days=7)
    assert summary["days"] == 7
    assert summary["outcomes"] == ["pass", "review", "fail", "alternative_required"]
    assert summary["totals"] == {"pass": 0, "review": 1, "fail": 0, "alternative_required": 3}
    by_day = {d["day"]: d["counts"] for d in summary["decisions_by_day"]}
    assert len(by_day) == 7
    today = (world.env.clock() + timedelta(hours=9)).date()
    yesterday = today - timedelta(days=1)
    assert list(by_day)[-1] == today.isoformat()
    assert by_day[today.isoformat()] == {
        "pass": 0,
        "review": 1,
        "fail": 0,
        "alternative_required": 2,
    }
    assert by_day[yesterday.isoformat()]["alternative_required"] == 1
    assert sum(sum(c.values()) for c in by_day.values()) == 4

    channels = {r["key"]: r for r in summary["by_channel"]}
    assert set(channels) == {"in_store", "online"}
    assert channels["in_store"]["decided"] == 3
    assert channels["in_store"]["counts"]["alternative_required"] == 3
    assert channels["in_store"]["pass_rate"] == 0.0
    assert channels["online"]["decided"] == 1
    assert channels["online"]["counts"]["review"] == 1
    stores = {r["key"]: r["decided"] for r in summary["by_store"]}
    assert stores == {"gangnam-01": 2, "jamsil-02": 2}

    # Sessions created in the window, by attempts used (the pad session's rows are direct).
    attempts = {b["attempts"]: b["sessions"] for b in summary["attempts_per_session"]}
    assert attempts == {0: 3, 1: 1, 3: 1}


def test_summary_window_is_korean_days(world: World) -> None:
    today_only = world.summary(days=1)
    assert [d["day"] for d in today_only["decisions_by_day"]] == [
        (world.env.clock() + timedelta(hours=9)).date().isoformat()
    ]
    assert today_only["totals"]["alternative_required"] == 2  # yesterday's is outside
    assert sum(b["sessions"] for b in today_only["attempts_per_session"]) == 4


def test_summary_liveness_rejects_by_attack_type(world: World) -> None:
    rejects = {r["reason"]: r for r in world.summary()["liveness_rejects"]}
    assert {k: v["count"] for k, v in rejects.items()} == {
        "planar_motion": 2,
        "print_detected": 1,
        "challenge_not_followed": 1,
    }
    assert rejects["planar_motion"]["attack"] == "photo_or_screen"
    assert rejects["print_detected"]["attack"] == "print"
    assert rejects["challenge_not_followed"]["message_ko"]
    # face_not_found (the unusable selfies) is not a liveness reject
    assert "face_not_found" not in rejects


def test_summary_latency_percentiles_per_capture_route(world: World) -> None:
    latency = {(r["method"], r["route"]): r for r in world.summary()["latency"]}
    for step in ("consent", "document", "selfie"):
        row = latency[("POST", f"/v1/capture/{{token}}/{step}")]
        assert 0 < row["p50_s"] <= row["p95_s"] <= row["p99_s"] <= 10.0
    assert all(route.startswith("/v1/capture/{token}/") for _, route in latency)
    assert "worker" in world.summary()["latency_scope"]


def test_tenants_see_only_their_own(world: World) -> None:
    other = world.summary("other_admin")
    assert other["totals"] == {"pass": 0, "review": 0, "fail": 0, "alternative_required": 1}
    assert [r["key"] for r in other["by_store"]] == ["busan-09"]
    assert other["liveness_rejects"] == []
    empty = world.summary("c_admin")
    assert sum(empty["totals"].values()) == 0
    assert empty["by_channel"] == empty["by_store"] == empty["attempts_per_session"] == []

    mine = {s["id"] for s in world.sessions.values()} - {world.sessions["other"]["id"]}
    other_entries = world.audit("other_admin", limit=200)["entries"]
    assert {e["session_id"] for e in other_entries} - {None} == {world.sessions["other"]["id"]}
    assert not mine & {e["session_id"] for e in other_entries}
    c_entries = world.audit("c_admin")["entries"]
    assert {e["event"] for e in c_entries} == {"tenant.created", "api_key.created"}
    assert {e["session_id"] for e in c_entries} == {None}


def test_admin_scope_required(world: World) -> None:
    env = world.env
    for path in ("/v1/dashboard/summary", "/v1/audit"):
        assert_problem(env.client.get(path), 401, "unauthorized")
        for key in ("writer", "reader", "other"):
            assert_problem(env.client.get(path, headers=env.auth(key)), 403, "forbidden_scope")
    assert_problem(
        env.client.get("/v1/dashboard/summary", params={"days": 0}, headers=env.auth("admin")),
        422,
        "malformed_request",
    )
    for params in ({"limit": 500}, {"before": 2**31}, {"before": 2**63}, {"before": 0}):
        r = env.client.get("/v1/audit", params=params, headers=env.auth("admin"))
        assert_problem(r, 422, "malformed_request")
    r = env.client.get("/v1/audit", params={"before": 2**31 - 1}, headers=env.auth("admin"))
    assert r.status_code == 200, r.text


def test_a_stores_admin_key_cannot_read_tenant_wide_data(world: World) -> None:
    service = world.env.client.app.state.service  # type: ignore[attr-defined]
    with service.db.session() as db:
        tenant = _tenant_id(db, "tenant-a")
        key = create_api_key(db, tenant, [Scope.ADMIN], now=T0, store_id="gangnam-01")[1]
    r = world.env.client.get("/v1/audit", headers={"Authorization": f"Bearer {key}"})
    assert_problem(r, 403, "forbidden_scope")


# --- the audit log ------------------------------------------------------------------------------


def test_audit_pages_newest_first_without_biometrics(world: World) -> None:
    everything = world.audit(limit=200)
    assert everything["next_before"] is None
    assert everything["chain"]["intact"] is True
    ids = [e["id"] for e in everything["entries"]]
    assert ids == sorted(ids, reverse=True)
    events = {e["event"] for e in everything["entries"]}
    assert {"session.created", "session.consent", "attempt.recorded", "decision.made"} <= events

    pages, before = [], None
    while True:
        page = world.audit(limit=4, **({"before": before} if before else {}))
        assert len(page["entries"]) <= 4
        pages.append([e["id"] for e in page["entries"]])
        before = page["next_before"]
        if before is None:
            break
        assert before == page["entries"][-1]["id"]
    assert [i for p in pages for i in p] == ids
    assert len(pages) == -(-len(ids) // 4)

    for entry in everything["entries"]:
        for value in entry["data"].values():
            assert not isinstance(value, dict)
            if isinstance(value, list):
                assert all(isinstance(v, str) for v in value)
    text = json.dumps(everything)
    for word in ("embedding", "template", "image", "frame", "portrait"):
        assert f'"{word}"' not in text


# --- transparency -------------------------------------------------------------------------------


def test_transparency_is_public_and_states_the_threshold(world: World) -> None:
    r = world.env.client.get("/v1/transparency")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "public, max-age=300"
    body = r.json()
    calibration = json.loads(CALIBRATION.read_text("utf-8"))
    assert body["matcher"]["threshold"] == calibration["threshold"]
    assert body["matcher"]["fmr_target"] == calibration["fmr_target"]
    assert body["matcher"]["n_impostor"] == calibration["n_impostor"]
    models = {m["model_id"]: m for m in body["models"]}
    assert calibration["primary"] in models
    assert len(models["sface-2021dec-int8bq"]["sha256"]) == 64
    assert models["sface-2021dec-int8bq"]["package_version"] == "1.1.1"
    assert body["policy"]["rules_version"] == load_rules().version
    assert body["policy"]["max_new_lines"] == 3
    assert body["retention_days"] == world.env.settings.retention_days
    assert body["attempts_limit"] == 3
    assert body["biometrics_stored"] is False
    assert "kr_resident_card" in body["document_types"]
    checks = {c["code"]: c for c in body["liveness"]["checks"]}
    assert checks["planar_motion"]["attack"] == "photo_or_screen"
    assert checks["screen_detected"]["message_ko"]
    cross_validated = {a["measure"]: a for a in body["accuracy"] if a["basis"] == "cross_validated"}
    assert cross_validated["fnmr"]["value"] == 0.057
    card = (CALIBRATION.parents[3] / "docs/model-card.md").read_text("utf-8")
    for figure in body["accuracy"]:  # the figures are the model card's
        if figure["value"] > 0:
            assert f"{100 * figure['value']:.2f}%" in card, figure
        if figure["count"]:
            assert figure["count"].split(" / ")[1] in card, figure
    assert body["liveness"]["thresholds"]["parallax_planar_residual_iod"] == 0.022
    assert any(d["path"] == "docs/model-card.md" for d in body["evaluation_docs"])
    assert world.env.client.get("/v1/transparency").json() == body  # cached, same answer


def test_endpoints_are_in_the_openapi_schema(world: World) -> None:
    paths = world.env.client.get("/openapi.json").json()["paths"]
    for path in ("/v1/dashboard/summary", "/v1/audit", "/v1/transparency"):
        assert "get" in paths[path]
        assert "200" in paths[path]["get"]["responses"]
    assert "403" in paths["/v1/audit"]["get"]["responses"]


# --- percentiles from buckets --------------------------------------------------------------------


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    inf = float("inf")
    buckets = [(0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (inf, 40.0)]
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1 + 0.4 * 10 / 20)
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.5 + 0.5 * 8 / 10)
    assert histogram_quantile(0.5, [(inf, 0.0)]) is None
    # ranks in the +Inf bucket give the highest finite bound
    assert histogram_quantile(0.99, [(0.1, 1.0), (inf, 10.0)]) == 0.1


def test_audit_reports_a_broken_chain(tmp_path: Path, comparer: FaceComparer) -> None:
    """An entry altered behind the triggers' back: the viewer says the chain is broken and,
    to the tenant it belongs to, which entry."""
    url = database_url("sqlite", tmp_path)
    for env in _make_env(tmp_path, url, comparer):
        session = _decline(env)
        with sqlite3.connect(url.removeprefix("sqlite:///")) as raw:
            raw.execute("DROP TRIGGER audit_log_no_update")
            (target,) = raw.execute(
                "SELECT id FROM audit_log WHERE session_id = ? AND event = 'session.consent'",
                (session["id"],),
            ).fetchone()
            raw.execute(
                'UPDATE audit_log SET data = \'{"choice": "accept"}\' WHERE id = ?', (target,)
            )
        chain = env.client.get("/v1/audit", headers=env.auth("admin")).json()["chain"]
        assert chain == {
            "intact": False,
            "checked_at": chain["checked_at"],
            "first_broken_id": target,
        }
