"""Alembic environment of the line registry: the engine comes from `registry_migrations.upgrade`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from faceproof.policy.registry_migrations import VERSION_TABLE, include_registry_objects
from faceproof.policy.registry_store import RegistryBase

config = context.config
engine = config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError(
        "run migrations through faceproof.policy.registry_migrations.upgrade "
        "(faceproof registry db upgrade)"
    )

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=RegistryBase.metadata,
        version_table=VERSION_TABLE,
        include_name=include_registry_objects,
        render_as_batch=engine.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
