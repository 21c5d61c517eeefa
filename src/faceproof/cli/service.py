"""Service commands: serve, tenants, keys, receipt verify, db upgrade, purge.

`add_parsers(subparsers)` registers them on the main parser; each sets `handler`, a function of
the parsed arguments returning an exit code:
    0  success (for `receipt verify`: the receipt is valid)
    1  `receipt verify`: the receipt is not valid
    2  usage error or unsafe settings (e.g. default secrets in production)
    4  server-side failure (database unreachable, key file unreadable)
Errors are printed as one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["add_parsers", "run"]

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_SERVICE = 0, 1, 2, 4

Handler = Callable[[argparse.Namespace], int]


def add_parsers(subparsers: Any) -> None:
    """Register `serve`, `tenants`, `keys`, `receipt`, `db` and `purge` on `subparsers`."""
    serve = subparsers.add_parser("serve", help="run the HTTP service (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--tls-cert",
        type=Path,
        help="PEM certificate: serve HTTPS, which phones need for the camera (with --tls-key)",
    )
    serve.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    serve.set_defaults(handler=_serve)

    tenants = subparsers.add_parser("tenants", help="manage tenants (carriers, MVNOs)")
    t_sub = tenants.add_subparsers(dest="tenants_command", required=True)
    t_create = t_sub.add_parser("create", help="create a tenant")
    t_create.add_argument("name")
    t_create.add_argument("--json", action="store_true")
    t_create.set_defaults(handler=_tenants_create)
    t_list = t_sub.add_parser("list", help="list tenants")
    t_list.add_argument("--json", action="store_true")
    t_list.set_defaults(handler=_tenants_list)

    keys = subparsers.add_parser("keys", help="manage API keys")
    k_sub = keys.add_subparsers(dest="keys_command", required=True)
    k_create = k_sub.add_parser("create", help="create an API key (printed once)")
    k_create.add_argument("--tenant", required=True, help="tenant id")
    k_create.add_argument(
        "--scope",
        action="append",
        choices=["sessions:write", "sessions:read", "admin"],
        help="repeatable; default: sessions:write and sessions:read",
    )
    k_create.add_argument("--label", default="")
    k_create.add_argument(
        "--store", default=None, help="limit the key to one store's sessions (clerk console)"
    )
    k_create.add_argument("--json", action="store_true")
    k_create.set_defaults(handler=_keys_create)
    k_revoke = k_sub.add_parser("revoke", help="revoke an API key")
    k_revoke.add_argument("key_id")
    k_revoke.set_defaults(handler=_keys_revoke)

    receipt = subparsers.add_parser("receipt", help="signed receipts")
    r_sub = receipt.add_subparsers(dest="receipt_command", required=True)
    r_verify = r_sub.add_parser("verify", help="verify a receipt offline against a JWKS")
    r_verify.add_argument("receipt", help="the compact JWS, a file holding it, or '-' (stdin)")
    r_verify.add_argument(
        "--jwks", required=True, help="JWKS file (preferred) or a loopback http(s) URL"
    )
    r_verify.set_defaults(handler=_receipt_verify)

    db = subparsers.add_parser("db", help="database")
    d_sub = db.add_subparsers(dest="db_command", required=True)
    d_upgrade = d_sub.add_parser("upgrade", help="apply migrations (SQLite or PostgreSQL)")
    d_upgrade.set_defaults(handler=_db_upgrade)

    purge = subparsers.add_parser("purge", help="delete records older than the retention period")
    purge.add_argument("--dry-run", action="store_true")
    purge.set_defaults(handler=_purge)


def run(args: argparse.Namespace) -> int:
    """Call the handler a parser of `add_parsers` chose."""
    handler: Handler = args.handler
    try:
        return handler(args)
    except Exception as exc:  # one line, never a traceback
        _err(f"error: {type(exc).__name__}: {_first_line(exc)}")
        return EXIT_SERVICE


# --- helpers ----------------------------------------------------------------------------------


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""


def _now() -> datetime:
    return datetime.now(UTC)


def _settings() -> Any:
    from pydantic import ValidationError

    from faceproof.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        messages = "; ".join(str(e.get("msg", "")) for e in exc.errors())
        raise _UsageError(f"settings refused: {messages}") from exc


class _UsageError(Exception):
    pass


def _with_db(body: Callable[[Any, Any], int]) -> int:
    from faceproof.storage.db import Database

    try:
        settings = _settings()
    except _UsageError as exc:
        _err(str(exc))
        return EXIT_USAGE
    if not settings.database_url:
        settings.ensure_data_dir()
    database = Database(settings.effective_database_url)
    try:
        if settings.migrate_on_start:
            database.upgrade()
        return body(settings, database)
    finally:
        database.close()


# --- handlers ---------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from faceproof.api import create_app

    try:
        settings = _settings()
    except _UsageError as exc:
        _err(str(exc))
        return EXIT_USAGE
    if (args.tls_cert is None) != (args.tls_key is None):
        _err("error: --tls-cert and --tls-key go together")
        return EXIT_USAGE
    scheme = "https" if args.tls_cert else "http"
    if "public_base_url" not in settings.model_fields_set:
        settings.public_base_url = f"{scheme}://{args.host}:{args.port}"
    app = create_app(settings)
    started = time.perf_counter()
    app.state.service.warm_up()  # before listening: no request waits for a model to load
    print(f"models loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    _announce(app, settings.public_base_url.rstrip("/"))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    service_log = logging.getLogger("faceproof")
    service_log.addHandler(handler)
    service_log.setLevel(args.log_level.upper())
    # uvicorn's access log prints raw paths, and capture paths carry the token: it stays off.
    # The app logs each request itself with the route template instead (faceproof.access).
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
    )
    return EXIT_OK


def _announce(app: Any, base: str) -> None:
    """Where the pages are; on a development service's first start, keys to try them with."""
    from faceproof.storage.tenants import bootstrap_development_tenant

    service = app.state.service
    if service.settings.is_development:
        with service.db.session() as db:
            created = bootstrap_development_tenant(db, now=_now())
        if created:
            _err(
                "faceproof: first start in development: created tenant "
                f"{created['tenant']} with two API keys, shown once (only hashes are stored):\n"
                f"  store {created['store']} (clerk console): {created['store_key']}\n"
                f"  admin (dashboard, API):          {created['admin_key']}"
            )
    _err(
        f"faceproof: clerk console {base}/console · dashboard {base}/dashboard · "
        f"transparency {base}/transparency · API {base}/docs"
    )


def _tenants_create(args: argparse.Namespace) -> int:
    from faceproof.storage.tenants import create_tenant

    def body(_settings: Any, database: Any) -> int:
        with database.session() as db:
            tenant = create_tenant(db, args.name, now=_now())
            out = {"id": tenant.id, "name": tenant.name}
        print(json.dumps(out) if args.json else f"{out['id']}\t{out['name']}")
        return EXIT_OK

    return _with_db(body)


def _tenants_list(args: argparse.Namespace) -> int:
    from faceproof.storage.tenants import list_tenants

    def body(_settings: Any, database: Any) -> int:
        with database.session() as db:
            rows = [
                {
                    "id": t.id,
                    "name": t.name,
                    "active": t.active,
                    "created_at": t.created_at.isoformat(),
                }
                for t in list_tenants(db)
            ]
        for row in rows:
            if args.json:
                print(json.dumps(row))
            else:
                print(f"{row['id']}\t{row['name']}\t{'active' if row['active'] else 'inactive'}")
        return EXIT_OK

    return _with_db(body)


def _keys_create(args: argparse.Namespace) -> int:
    from faceproof.storage.tenants import Scope, create_api_key

    scopes = [Scope(s) for s in (args.scope or ["sessions:write", "sessions:read"])]

    def body(_settings: Any, database: Any) -> int:
        try:
            with database.session() as db:
                key, plaintext = create_api_key(
                    db, args.tenant, scopes, now=_now(), label=args.label, store_id=args.store
                )
                out = {
                    "id": key.id,
                    "tenant": key.tenant_id,
                    "scopes": key.scopes,
                    "store": key.store_id,
                    "key": plaintext,
                }
        except LookupError:
            _err(f"error: no tenant {args.tenant}")
            return EXIT_USAGE
        if args.json:
            print(json.dumps(out))
        else:
            print(f"{out['id']}\t{out['scopes']}\n{plaintext}")
            _err("note: the key is shown once; only its SHA-256 is stored")
        return EXIT_OK

    return _with_db(body)


def _keys_revoke(args: argparse.Namespace) -> int:
    from faceproof.storage.tenants import revoke_api_key

    def body(_settings: Any, database: Any) -> int:
        with database.session() as db:
            found = revoke_api_key(db, args.key_id, now=_now())
        if not found:
            _err(f"error: no API key {args.key_id}")
            return EXIT_USAGE
        print(f"revoked {args.key_id}")
        return EXIT_OK

    return _with_db(body)


def _db_upgrade(_args: argparse.Namespace) -> int:
    from faceproof.storage.db import Database

    try:
        settings = _settings()
    except _UsageError as exc:
        _err(str(exc))
        return EXIT_USAGE
    if not settings.database_url:
        settings.ensure_data_dir()
    database = Database(settings.effective_database_url)
    try:
        database.upgrade()
    finally:
        database.close()
    print("database is at the latest revision")
    return EXIT_OK


def _purge(args: argparse.Namespace) -> int:
    from faceproof.storage.purge import purge_expired

    def body(settings: Any, database: Any) -> int:
        with database.session() as db:
            count = purge_expired(
                db, now=_now(), retention_days=settings.retention_days, dry_run=args.dry_run
            )
        verb = "would delete" if args.dry_run else "deleted"
        print(f"{verb} {count} session(s) older than {settings.retention_days} days")
        return EXIT_OK

    return _with_db(body)


def _is_loopback_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _load_jwks(source: str) -> dict[str, Any]:
    if source.startswith(("http://", "https://")):
        if not _is_loopback_url(source):
            raise _UsageError("--jwks URL must be on loopback; download it and pass the file")
        import httpx

        with httpx.Client(timeout=5.0, follow_redirects=False, trust_env=False) as client:
            response = client.get(source)
            response.raise_for_status()
            data = response.json()
    else:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise _UsageError("the JWKS is not a JSON object")
    return data


def _read_receipt(value: str) -> str:
    if value == "-":
        return sys.stdin.read().strip()
    if value.count(".") == 2 and "/" not in value and len(value) > 64:
        return value.strip()  # a compact JWS, not a path
    return Path(value).read_text(encoding="utf-8").strip()


def _receipt_verify(args: argparse.Namespace) -> int:
    from faceproof.privacy.receipts import ReceiptError, verify_receipt

    try:
        jwks = _load_jwks(args.jwks)
        token = _read_receipt(args.receipt)
    except _UsageError as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    except (OSError, ValueError) as exc:
        _err(f"error: cannot read the receipt or JWKS: {type(exc).__name__}")
        return EXIT_USAGE
    except Exception as exc:  # httpx errors
        _err(f"error: cannot fetch the JWKS: {type(exc).__name__}")
        return EXIT_SERVICE
    try:
        claims = verify_receipt(token, jwks)
    except ReceiptError as exc:
        _err(f"{exc.code.value}: {exc.detail}")
        return EXIT_INVALID
    print(json.dumps({"valid": True, "claims": claims}, ensure_ascii=False))
    return EXIT_OK
