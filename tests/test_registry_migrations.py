"""The registry's schema comes from its own Alembic migrations, and they match the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from faceproof.cli.main import main
from faceproof.policy import registry_migrations
from faceproof.policy.registry_server import open_registry
from faceproof.policy.registry_store import RegistryBase
from faceproof.storage.db import Database
from faceproof.storage.db import upgrade as service_upgrade
from test_policy_registry import fresh_registry_postgres_url

REGISTRY_TABLES = {
    "registry_carriers",
    "registry_activations",
    "registry_failed_checks",
    "registry_flags",
}


def registry_url(kind: str, tmp_path: Path) -> str:
    if kind == "postgresql":
        return fresh_registry_postgres_url()
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    return Database(registry_url(request.param, tmp_path))


def schema_diff(database: Database) -> list[object]:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_name": registry_migrations.include_registry_objects,
                "version_table": registry_migrations.VERSION_TABLE,
            },
        )
        return list(compare_metadata(context, RegistryBase.metadata))


def test_the_migrated_schema_matches_the_models(database: Database) -> None:
    try:
        registry_migrations.upgrade(database.engine)
        assert schema_diff(database) == []
        names = set(inspect(database.engine).get_table_names())
        assert names >= REGISTRY_TABLES | {registry_migrations.VERSION_TABLE}
        assert "alembic_version" not in names  # the service's version table stays untouched
        registry_migrations.upgrade(database.engine)  # idempotent
        indexes = {i["name"] for i in inspect(database.engine).get_indexes("registry_activations")}
        assert "ix_registry_activations_identity_at" in indexes
    finally:
        database.close()


def test_downgrade_and_upgrade_again(database: Database) -> None:
    try:
        registry_migrations.upgrade(database.engine)
        registry_migrations.downgrade(database.engine, "0001")
        indexes = {i["name"] for i in inspect(database.engine).get_indexes("registry_activations")}
        assert "ix_registry_activations_identity_at" not in indexes
        assert schema_diff(database) != []  # 0001 alone is not the current model
        registry_migrations.downgrade(database.engine, "base")
        assert not REGISTRY_TABLES & set(inspect(database.engine).get_table_names())
        registry_migrations.upgrade(database.engine)
        assert schema_diff(database) == []
    finally:
        database.close()


def test_a_registry_made_by_create_all_before_migrations_is_adopted(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        # The tables as `create_all` made them before migrations existed: revision 0001.
        registry_migrations.upgrade(database.engine, "0001")
        with database.engine.begin() as conn:
            conn.execute(text(f"DROP TABLE {registry_migrations.VERSION_TABLE}"))
            conn.execute(
                text("INSERT INTO registry_carriers VALUES ('carrier-a', :h, 0)"), {"h": "0" * 64}
            )
        registry_migrations.upgrade(database.engine)
        assert schema_diff(database) == []
        with database.engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM registry_carriers")).scalar() == "carrier-a"
    finally:
        database.close()


def test_the_registry_shares_a_database_with_the_service(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'shared.db'}")
    try:
        service_upgrade(database.engine)
        registry_migrations.upgrade(database.engine)
        assert schema_diff(database) == []
        with database.engine.connect() as conn:
            service_head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        service_upgrade(database.engine)  # the service's migrations ignore the registry's
        with database.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
                service_head
            )
    finally:
        database.close()


def test_faceproof_registry_db_upgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEPROOF_ENVIRONMENT", "production")  # no migrations on start
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    storage = ["--database-url", url, "--hmac-key-file", str(tmp_path / "hmac.key")]
    assert main(["registry", "db", "upgrade", *storage]) == 0
    assert "latest revision" in capsys.readouterr().out
    engine = create_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) >= REGISTRY_TABLES
    finally:
        engine.dispose()


def test_in_development_registry_commands_migrate_on_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEPROOF_ENVIRONMENT", "development")
    monkeypatch.delenv("FACEPROOF_RUN_MIGRATIONS_ON_START", raising=False)
    url = f"sqlite:///{tmp_path / 'data' / 'dev.db'}"
    storage = ["--database-url", url, "--hmac-key-file", str(tmp_path / "hmac.key")]
    assert main(["registry", "carriers", "create", "carrier-a", *storage]) == 0
    assert capsys.readouterr().out.count("fpr_") == 1
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            version = text(f"SELECT version_num FROM {registry_migrations.VERSION_TABLE}")
            assert conn.execute(version).scalar() == "0002"
    finally:
        engine.dispose()


def test_in_production_nothing_migrates_on_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEPROOF_ENVIRONMENT", "production")
    monkeypatch.delenv("FACEPROOF_RUN_MIGRATIONS_ON_START", raising=False)
    registry = open_registry(f"sqlite:///{tmp_path / 'prod.db'}")
    try:
        assert not set(inspect(registry.db.engine).get_table_names())
    finally:
        registry.db.close()
    monkeypatch.setenv("FACEPROOF_RUN_MIGRATIONS_ON_START", "true")
    registry = open_registry(f"sqlite:///{tmp_path / 'prod.db'}")
    try:
        assert set(inspect(registry.db.engine).get_table_names()) >= REGISTRY_TABLES
    finally:
        registry.db.close()
