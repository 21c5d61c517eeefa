"""Storage: migrations on SQLite and PostgreSQL, hashed API keys, the audit hash chain, purge,
and the admin CLI (tenants, keys, db upgrade, purge).

The PostgreSQL runs use FACEPROOF_TEST_POSTGRES_URL (set by .ci/run) on a schema reset for each
test; without it they skip with a message.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, delete, inspect, select, text, update
from sqlalchemy.exc import DBAPIError

from faceproof.cli.service import add_parsers, run
from faceproof.storage.audit import GENESIS_HASH, append_audit, verify_chain
from faceproof.storage.db import Database, alembic_config
from faceproof.storage.db import downgrade as db_downgrade
from faceproof.storage.models import ApiKey, Attempt, AuditEntry, Decision, Session
from faceproof.storage.purge import purge_expired
from faceproof.storage.tenants import (
    Scope,
    authenticate_key,
    create_api_key,
    create_tenant,
    revoke_api_key,
)

POSTGRES_ENV = "FACEPROOF_TEST_POSTGRES_URL"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TABLES = {"tenants", "api_keys", "sessions", "attempts", "decisions", "audit_log", "webhooks"}


def fresh_postgres_url() -> str:
    """The PostgreSQL test URL with an empty public schema, or a skip that says how to get one."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(
            f"{POSTGRES_ENV} not set: the PostgreSQL run needs a server (.ci/run starts one and "
            "creates the faceproof_test database)"
        )
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    return url


def database_url(kind: str, tmp_path: Path) -> str:
    if kind == "postgresql":
        return fresh_postgres_url()
    return f"sqlite:///{tmp_path / 'faceproof.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = Database(database_url(request.param, tmp_path))
    try:
        database.upgrade()
        yield database
    finally:
        database.close()


def test_migration_creates_every_table_and_is_idempotent(db: Database) -> None:
    names = set(inspect(db.engine).get_table_names())
    assert names >= TABLES | {"alembic_version"}
    db.upgrade()  # a second run is a no-op
    with db.engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert version is not None
    assert db.ping()


def test_api_key_stored_hashed_and_authenticated(db: Database) -> None:
    with db.session() as s:
        tenant = create_tenant(s, "KT", now=NOW)
        key, plaintext = create_api_key(s, tenant.id, [Scope.SESSIONS_READ], now=NOW)
        key_id = key.id
    with db.session() as s:
        row = s.get_one(ApiKey, key_id)
        assert plaintext not in (row.key_hash, row.prefix, row.id)
        assert plaintext.split("_", 2)[2] not in row.key_hash
        found = authenticate_key(s, plaintext)
        assert found is not None
        assert found.id == key_id
        assert found.scopes == "sessions:read"
        assert authenticate_key(s, plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")) is None
        assert authenticate_key(s, "fpk_0000000000000000_nope") is None
        assert authenticate_key(s, "") is None
        assert revoke_api_key(s, key_id, now=NOW)
    with db.session() as s:
        assert authenticate_key(s, plaintext) is None
        assert not revoke_api_key(s, "key_missing", now=NOW)


def test_audit_chain_detects_tampering(db: Database) -> None:
    with db.session() as s:
        for i in range(4):
            append_audit(s, "test.event", now=NOW + timedelta(seconds=i), data={"i": i})
    with db.session() as s:
        entries = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert entries[0].prev_hash == GENESIS_HASH
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
        assert verify_chain(s) is None
        third = entries[2].id
    # The database itself refuses changes to the log...
    for statement in (
        update(AuditEntry).where(AuditEntry.id == third).values(data={"i": 99}),
        delete(AuditEntry).where(AuditEntry.id == third),
    ):
        with pytest.raises(DBAPIError, match="append-only"), db.session() as s:
            s.execute(statement)
    # ...and someone who drops the triggers is still caught by the hash chain.
    db_downgrade(db.engine, "0001")
    with db.session() as s:
        s.execute(update(AuditEntry).where(AuditEntry.id == third).values(data={"i": 99}))
    with db.session() as s:
        assert verify_chain(s) == third


def _session_row(tenant_id: str, sid: str, created: datetime) -> Session:
    return Session(
        id=sid,
        tenant_id=tenant_id,
        store_id="store-1",
        channel="online",
        purpose="new_line",
        locale="ko-KR",
        state="completed",
        created_at=created,
        expires_at=created + timedelta(minutes=30),
        attempts_used=1,
        attempts_limit=3,
        capture_token_hash=sid.ljust(64, "0"),
        capture_token_expires_at=created + timedelta(minutes=10),
        capture_token_used=True,
    )


def test_purge_removes_only_expired_records(db: Database) -> None:
    with db.session() as s:
        tenant = create_tenant(s, "LGU", now=NOW)
        for sid, age in (("ses_old", 100), ("ses_new", 10)):
            s.add(_session_row(tenant.id, sid, NOW - timedelta(days=age)))
            s.flush()
            s.add(Attempt(session_id=sid, number=1, outcome="review", reasons=[], created_at=NOW))
            s.add(
                Decision(
                    session_id=sid,
                    tenant_id=tenant.id,
                    decision="review",
                    reasons=["match_accepted"],
                    scores={},
                    model_versions=[],
                    receipt="x.y.z",
                    created_at=NOW,
                )
            )
    with db.session() as s:
        assert purge_expired(s, now=NOW, retention_days=90, dry_run=True) == 1
        assert purge_expired(s, now=NOW, retention_days=90) == 1
    with db.session() as s:
        assert s.scalars(select(Session.id)).all() == ["ses_new"]
        assert s.scalars(select(Decision.session_id)).all() == ["ses_new"]
        assert s.scalars(select(Attempt.session_id)).all() == ["ses_new"]
        assert verify_chain(s) is None
        events = s.scalars(select(AuditEntry.event)).all()
        assert events[-1] == "retention.purged"


def test_timestamps_come_back_as_aware_utc(db: Database) -> None:
    with db.session() as s:
        tenant = create_tenant(s, "MVNO", now=NOW)
        tid = tenant.id
    with db.session() as s:
        assert s.scalars(select(ApiKey)).all() == []
        from faceproof.storage.models import Tenant

        assert s.get_one(Tenant, tid).created_at == NOW


# --- admin CLI ----------------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="faceproof")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    code = run(parser.parse_args(list(argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_admin_flow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FACEPROOF_DATA_DIR", str(tmp_path / "data"))
    assert _cli(capsys, "db", "upgrade")[0] == 0
    assert (tmp_path / "data" / "faceproof.db").is_file()
    code, out, _ = _cli(capsys, "tenants", "create", "SK Telecom", "--json")
    assert code == 0
    tenant = json.loads(out)
    code, out, _ = _cli(capsys, "tenants", "list", "--json")
    assert [json.loads(line)["name"] for line in out.splitlines()] == ["SK Telecom"]
    code, out, _ = _cli(
        capsys, "keys", "create", "--tenant", tenant["id"], "--scope", "admin", "--json"
    )
    assert code == 0
    key = json.loads(out)
    assert key["key"].startswith("fpk_")
    assert key["scopes"] == "admin"
    assert key["key"].encode() not in (tmp_path / "data" / "faceproof.db").read_bytes()
    assert _cli(capsys, "keys", "create", "--tenant", "ten_nope")[0] == 2
    assert _cli(capsys, "keys", "revoke", key["id"])[0] == 0
    assert _cli(capsys, "keys", "revoke", "key_nope")[0] == 2
    code, out, _ = _cli(capsys, "purge", "--dry-run")
    assert code == 0
    assert "would delete 0" in out


def test_cli_refuses_default_secrets_in_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FACEPROOF_ENVIRONMENT", "production")
    monkeypatch.setenv("FACEPROOF_DATA_DIR", str(tmp_path))
    code, _, err = _cli(capsys, "tenants", "list")
    assert code == 2
    assert "PSEUDONYM_KEY" in err
    assert not (tmp_path / "faceproof.db").exists()
