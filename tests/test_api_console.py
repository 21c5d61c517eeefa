"""The clerk console's API: store-scoped keys, whoami, the session event stream, capture QR."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from faceproof.storage.models import ApiKey
from faceproof.storage.tenants import Scope, create_api_key
from test_api import SESSION_BODY, T0, Env, _consent, _make_env, assert_problem
from test_storage import database_url


@pytest.fixture
def cenv(tmp_path: Path, comparer: Any) -> Any:
    for env in _make_env(tmp_path, database_url("sqlite", tmp_path), comparer):
        service = env.client.app.state.service  # type: ignore[attr-defined]
        with service.db.session() as db:
            tenant_id = db.scalars(select(ApiKey.tenant_id)).first()
            env.keys["store"] = create_api_key(
                db,
                tenant_id,
                [Scope.SESSIONS_WRITE, Scope.SESSIONS_READ],
                now=T0,
                store_id=SESSION_BODY["store_id"],
            )[1]
        yield env


def _events(env: Env, session_id: str, key: str = "store") -> list[dict[str, Any]]:
    """Every `session` event of the stream, read until the server ends it."""
    out = []
    with env.client.stream(
        "GET", f"/v1/sessions/{session_id}/events", headers=env.auth(key)
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for block in response.iter_text():
            for event in block.split("\n\n"):
                lines = event.strip().splitlines()
                if lines and lines[0] == "event: session":
                    out.append(json.loads(lines[1].removeprefix("data: ")))
    return out


def test_whoami_names_the_keys_tenant_scopes_and_store(cenv: Env) -> None:
    me = cenv.client.get("/v1/whoami", headers=cenv.auth("store")).json()
    assert me["store_id"] == SESSION_BODY["store_id"]
    assert me["scopes"] == ["sessions:read", "sessions:write"]
    assert cenv.client.get("/v1/whoami", headers=cenv.auth("admin")).json()["store_id"] is None
    assert_problem(cenv.client.get("/v1/whoami"), 401, "unauthorized")


def test_a_store_key_opens_and_sees_only_its_stores_sessions(cenv: Env) -> None:
    r = cenv.client.post(
        "/v1/sessions", json={**SESSION_BODY, "store_id": "mapo-02"}, headers=cenv.auth("store")
    )
    assert_problem(r, 403, "forbidden_scope")
    other_store = cenv.new_session(store_id="mapo-02")  # the tenant-wide key may
    r = cenv.client.get(f"/v1/sessions/{other_store['id']}", headers=cenv.auth("store"))
    assert_problem(r, 404, "session_not_found")
    r = cenv.client.get(f"/v1/sessions/{other_store['id']}/events", headers=cenv.auth("store"))
    assert_problem(r, 404, "session_not_found")
    own = cenv.client.post("/v1/sessions", json=SESSION_BODY, headers=cenv.auth("store"))
    assert own.status_code == 201
    r = cenv.client.get(f"/v1/sessions/{own.json()['id']}", headers=cenv.auth("store"))
    assert r.status_code == 200


def test_the_event_stream_reports_the_decision_and_ends(cenv: Env) -> None:
    session = cenv.new_session()
    assert _consent(cenv, cenv.capture_path(session), "decline").status_code == 200
    events = _events(cenv, session["id"])
    assert len(events) == 1  # decided already: one event, then the stream ends
    assert events[0]["state"] == "completed"
    assert events[0]["decision"]["decision"] == "alternative_required"
    r = cenv.client.get(f"/v1/sessions/{session['id']}/events", headers=cenv.auth("other"))
    assert_problem(r, 404, "session_not_found")  # another tenant's key


def test_the_capture_qr_is_svg_and_only_for_this_services_capture_urls(cenv: Env) -> None:
    session = cenv.new_session()
    r = cenv.client.post(
        "/v1/capture-qr", json={"capture_url": session["capture_url"]}, headers=cenv.auth("store")
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert r.text.lstrip().startswith("<svg")
    assert "<path" in r.text
    for url in ("https://evil.example/v1/capture/abc", "https://faceproof.test/v1/capture/"):
        r = cenv.client.post("/v1/capture-qr", json={"capture_url": url}, headers=cenv.auth())
        assert_problem(r, 422, "malformed_request")
    r = cenv.client.post(
        "/v1/capture-qr", json={"capture_url": session["capture_url"]}, headers=cenv.auth("reader")
    )
    assert_problem(r, 403, "forbidden_scope")
