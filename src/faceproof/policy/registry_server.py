"""Running the registry service: its key file, migrations on start, and uvicorn worker processes.

The registry keeps no state in process memory that must be shared (the carrier-key cache is a
per-process optimisation with a short TTL), so it runs as several uvicorn worker processes over
one database. Workers build the app from the environment (`app_from_environment`), because
uvicorn starts them as fresh processes.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from fastapi import FastAPI
from pydantic_settings import BaseSettings, SettingsConfigDict

from faceproof.policy.nodelay import NoDelayH11Protocol
from faceproof.policy.registry_store import SqlLineRegistry
from faceproof.settings import Environment
from faceproof.storage.db import Database

__all__ = [
    "DATABASE_URL_ENV",
    "HMAC_KEY_FILE_ENV",
    "app_from_environment",
    "load_hmac_key",
    "migrate_on_start",
    "open_registry",
    "serve",
]

DATABASE_URL_ENV = "FACEPROOF_REGISTRY_DATABASE_URL"
HMAC_KEY_FILE_ENV = "FACEPROOF_REGISTRY_HMAC_KEY_FILE"
_WORKER_STARTUP_SECONDS = 60


def load_hmac_key(path: str | os.PathLike[str]) -> bytes:
    """The registry's pseudonym key, generated (mode 0600) on first use."""
    key_file = Path(path)
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    return bytes.fromhex(key_file.read_text().strip())


class _StartSettings(BaseSettings):
    # Only what the registry needs of the service's settings: the registry host need not have
    # the service's secrets, which `Settings` requires in production.
    model_config = SettingsConfigDict(env_prefix="FACEPROOF_", extra="ignore")
    environment: Environment = Environment.DEVELOPMENT
    run_migrations_on_start: bool | None = None


def migrate_on_start() -> bool:
    """Like the service: migrations run on start in development only, unless
    `FACEPROOF_RUN_MIGRATIONS_ON_START` says otherwise; production runs
    `faceproof registry db upgrade`."""
    settings = _StartSettings()
    if settings.run_migrations_on_start is not None:
        return settings.run_migrations_on_start
    return settings.environment is Environment.DEVELOPMENT


def open_registry(database_url: str, *, migrate: bool | None = None) -> SqlLineRegistry:
    """A `SqlLineRegistry` on `database_url`, migrated first when `migrate` (default: in dev)."""
    from faceproof.policy import registry_migrations

    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    database = Database(database_url)
    if migrate_on_start() if migrate is None else migrate:
        registry_migrations.upgrade(database.engine)
    return SqlLineRegistry(database)


def app_from_environment() -> FastAPI:
    """The app of one worker process (uvicorn `--factory`); the parent has migrated already."""
    from faceproof.policy.registry_app import create_registry_app

    registry = open_registry(os.environ[DATABASE_URL_ENV], migrate=False)
    return create_registry_app(registry, load_hmac_key(os.environ[HMAC_KEY_FILE_ENV]))


def serve(database_url: str, hmac_key_file: str, *, host: str, port: int, workers: int = 1) -> None:
    """Run the registry: migrate (in development), then serve with `workers` processes."""
    import uvicorn

    key = load_hmac_key(hmac_key_file)  # generated here once, not racing in each worker
    registry = open_registry(database_url)
    if workers <= 1:
        from faceproof.policy.registry_app import create_registry_app

        app = create_registry_app(registry, key)
        uvicorn.run(
            app,
            host=host,
            port=port,
            access_log=False,
            log_level="warning",
            http=NoDelayH11Protocol,
        )
        return
    registry.db.close()
    os.environ[DATABASE_URL_ENV] = database_url
    os.environ[HMAC_KEY_FILE_ENV] = str(Path(hmac_key_file).resolve())
    uvicorn.run(
        "faceproof.policy.registry_server:app_from_environment",
        factory=True,
        workers=workers,
        # uvicorn kills a worker that does not answer its first ping in time (5 s by default);
        # on a busy machine importing the app takes longer, and workers were killed in a loop.
        timeout_worker_healthcheck=_WORKER_STARTUP_SECONDS,
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        http=NoDelayH11Protocol,
    )
