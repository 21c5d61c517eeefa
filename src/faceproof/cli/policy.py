"""Policy commands: `faceproof registry serve|carriers create` and `faceproof outbox`."""

from __future__ import annotations

import argparse
import json
import os
import secrets
from pathlib import Path
from typing import Any

__all__ = ["add_parsers"]

EXIT_OK = 0


def add_parsers(subparsers: Any) -> None:
    registry = subparsers.add_parser("registry", help="the cross-carrier line registry service")
    sub = registry.add_subparsers(dest="registry_command", required=True)
    serve = sub.add_parser("serve", help="run the registry HTTP service (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8100)
    _storage_options(serve)
    serve.set_defaults(handler=_serve)

    carriers = sub.add_parser("carriers", help="manage the carriers allowed to call the registry")
    c_sub = carriers.add_subparsers(dest="carriers_command", required=True)
    create = c_sub.add_parser("create", help="create a carrier and print its API key once")
    create.add_argument("name")
    create.add_argument(
        "--authority", action="store_true", help="may set blocks and bars (holder channel)"
    )
    _storage_options(create)
    create.set_defaults(handler=_create_carrier)
    _add_outbox(subparsers)


def _add_outbox(subparsers: Any) -> None:
    data = os.environ.get("FACEPROOF_DATA_DIR", "faceproof-data")
    outbox = subparsers.add_parser("outbox", help="read the development outbox of new-line alerts")
    outbox.add_argument(
        "--path", default=os.environ.get("FACEPROOF_OUTBOX", f"{data}/outbox.jsonl")
    )
    outbox.add_argument("--json", action="store_true", help="one JSON object per alert")
    outbox.set_defaults(handler=_outbox)


def _outbox(args: argparse.Namespace) -> int:
    from faceproof.policy.alerts import read_outbox

    alerts = read_outbox(args.path)
    for alert in alerts:
        if args.json:
            print(json.dumps(alert, ensure_ascii=False))
        else:
            print(f"to {alert['recipient']} ({alert['opened_on']}, {alert['carrier']})")
            print(f"  {alert['message_ko']}")
            print(f"  {alert['message_en']}")
    if not alerts and not args.json:
        print("the outbox is empty")
    return EXIT_OK


def _storage_options(parser: argparse.ArgumentParser) -> None:
    data = os.environ.get("FACEPROOF_DATA_DIR", "faceproof-data")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("FACEPROOF_REGISTRY_DATABASE_URL", f"sqlite:///{data}/registry.db"),
    )
    parser.add_argument(
        "--hmac-key-file",
        default=os.environ.get("FACEPROOF_REGISTRY_HMAC_KEY_FILE", f"{data}/registry-hmac.key"),
        help="the registry's pseudonym key (generated, mode 0600, if missing)",
    )


def _hmac_key(path: str) -> bytes:
    key_file = Path(path)
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    return bytes.fromhex(key_file.read_text().strip())


def _registry(args: argparse.Namespace) -> Any:
    from faceproof.policy.registry_store import SqlLineRegistry
    from faceproof.storage.db import Database

    if args.database_url.startswith("sqlite:///"):
        Path(args.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return SqlLineRegistry(Database(args.database_url))


def _create_carrier(args: argparse.Namespace) -> int:
    key = _registry(args).create_carrier(args.name, authority=args.authority)
    print(json.dumps({"carrier": args.name, "authority": args.authority, "key": key}))
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from faceproof.policy.registry_app import create_registry_app

    app = create_registry_app(_registry(args), _hmac_key(args.hmac_key_file))
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")
    return EXIT_OK
