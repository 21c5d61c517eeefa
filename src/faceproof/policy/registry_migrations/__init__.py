"""The line registry's Alembic migrations, apart from the service's.

The registry is its own service with its own database, and it may also share one with the
service: its revisions are recorded in `registry_alembic_version`, never in the service's
`alembic_version`. `upgrade()` is what `faceproof registry db upgrade` (and, in development,
every registry command on start) runs.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

__all__ = [
    "VERSION_TABLE",
    "alembic_config",
    "downgrade",
    "include_registry_objects",
    "upgrade",
]

VERSION_TABLE = "registry_alembic_version"
_FIRST_REVISION = "0001"


def include_registry_objects(name: str | None, type_: str, _parents: object) -> bool:
    """Alembic `include_name`: only the registry's tables (the service's may share the DB)."""
    return type_ != "table" or (name or "").startswith("registry_")


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the registry's migrations up to `revision` (programmatic `alembic upgrade`)."""
    cfg = alembic_config(engine)
    tables = set(inspect(engine).get_table_names())
    if "registry_carriers" in tables and VERSION_TABLE not in tables:
        # A registry created before migrations existed (`create_all`) has exactly the first
        # revision's tables: record that instead of failing on "table exists".
        command.stamp(cfg, _FIRST_REVISION)
    command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Revert the registry's migrations down to `revision` (tests and emergencies)."""
    command.downgrade(alembic_config(engine), revision)
