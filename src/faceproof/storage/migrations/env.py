"""Alembic environment: the engine is passed in by `faceproof.storage.db.upgrade`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from faceproof.storage.models import Base

config = context.config
engine = config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through faceproof.storage.db.upgrade (faceproof db upgrade)")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=engine.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
