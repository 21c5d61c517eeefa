"""The capture page's own API calls: where the session stands, and more time on request."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from faceproof.storage.models import AuditEntry
from test_api import Env, _consent, _make_env, assert_problem
from test_storage import database_url


@pytest.fixture
def penv(tmp_path: Path, comparer: Any) -> Iterator[Env]:
    yield from _make_env(
        tmp_path,
        database_url("sqlite", tmp_path),
        comparer,
        capture_token_ttl_seconds=600,
        session_ttl_seconds=1800,
    )


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_state_tells_the_page_where_the_session_stands(penv: Env) -> None:
    session = penv.new_session(locale="en-US")
    path = penv.capture_path(session)
    state = penv.client.get(f"{path}/state").json()
    assert state["state"] == "awaiting_consent"
    assert state["locale"] == "en-US"
    assert state["attempts_left"] == 3
    assert state["outcome"] is None
    assert _when(state["token_expires_at"]) == _when(session["capture_token_expires_at"])
    assert _consent(penv, path).status_code == 200
    assert penv.client.get(f"{path}/state").json()["state"] == "awaiting_document"
    assert_problem(penv.client.get("/v1/capture/not-a-token/state"), 404, "token_invalid")


def test_extend_gives_a_full_ttl_from_now_but_never_past_the_session(penv: Env) -> None:
    session = penv.new_session()
    path = penv.capture_path(session)
    penv.clock.advance(500)  # 100 s of the 600 s left
    state = penv.client.post(f"{path}/extend").json()
    assert (_when(state["token_expires_at"]) - penv.clock.now).total_seconds() == 600
    penv.clock.advance(590)  # 1090 s in: alive only thanks to the extension
    assert penv.client.post(f"{path}/extend").status_code == 200  # until 1690 s
    penv.clock.advance(410)  # 1500 s in: a full TTL would pass the session's 1800 s
    state = penv.client.post(f"{path}/extend").json()
    assert state["token_expires_at"] == state["session_expires_at"]
    service = penv.client.app.state.service  # type: ignore[attr-defined]
    with service.db.session() as db:
        kinds = list(db.scalars(select(AuditEntry.event).order_by(AuditEntry.id)))
    assert kinds.count("session.capture_extended") == 3
    penv.clock.advance(300)  # past the session's expiry: nothing extends it
    assert_problem(penv.client.post(f"{path}/extend"), 410, "token_expired")
