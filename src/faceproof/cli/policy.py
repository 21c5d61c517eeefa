"""Policy commands: `faceproof registry serve|carriers create|db upgrade` and `faceproof outbox`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

__all__ = ["add_parsers"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_SERVICE = 4


def add_parsers(subparsers: Any) -> None:
    registry = subparsers.add_parser("registry", help="the cross-carrier line registry service")
    sub = registry.add_subparsers(dest="registry_command", required=True)
    serve = sub.add_parser("serve", help="run the registry HTTP service (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8100)
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="uvicorn worker processes (all state is in the database); default "
        "FACEPROOF_REGISTRY_WORKERS, else 1",
    )
    _storage_options(serve)
    serve.set_defaults(handler=_serve)

    database = sub.add_parser("db", help="the registry's database schema")
    d_sub = database.add_subparsers(dest="registry_db_command", required=True)
    d_upgrade = d_sub.add_parser("upgrade", help="apply the registry's migrations")
    _storage_options(d_upgrade)
    d_upgrade.set_defaults(handler=_db_upgrade)

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
    outbox = subparsers.add_parser(
        "outbox", help="read the outbox of new-line alerts, or deliver it through a gateway"
    )
    outbox.add_argument(
        "--path",
        # The service's setting first (FACEPROOF_OUTBOX_PATH), then the older name.
        default=os.environ.get("FACEPROOF_OUTBOX_PATH")
        or os.environ.get("FACEPROOF_OUTBOX", f"{data}/outbox.jsonl"),
    )
    outbox.add_argument("--json", action="store_true", help="one JSON object per alert")
    outbox.add_argument(
        "--deliver",
        choices=["smtp", "sms"],
        help="send the alerts not yet delivered through the gateway set by FACEPROOF_SMTP_* "
        "or FACEPROOF_SMS_GATEWAY_*; failures are recorded for the next run (exit 4)",
    )
    outbox.set_defaults(handler=_outbox)


def _outbox(args: argparse.Namespace) -> int:
    from faceproof.policy.alerts import read_deliveries, read_outbox

    if args.deliver:
        return _deliver(args)
    alerts = read_outbox(args.path)
    deliveries = read_deliveries(args.path)
    for alert in alerts:
        record = deliveries.get(alert["dedup_key"])
        delivery = record["status"] if record else "pending"
        if args.json:
            print(json.dumps(alert | {"delivery": delivery}, ensure_ascii=False))
        else:
            print(f"to {alert['recipient']} ({alert['opened_on']}, {alert['carrier']}; {delivery})")
            print(f"  {alert['message_ko']}")
            print(f"  {alert['message_en']}")
    if not alerts and not args.json:
        print("the outbox is empty")
    return EXIT_OK


def _deliver(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from faceproof.policy.alerts import deliver_outbox, gateway_from_settings
    from faceproof.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        messages = "; ".join(str(e.get("msg", "")) for e in exc.errors())
        print(f"faceproof: settings refused: {messages}", file=sys.stderr)
        return EXIT_USAGE
    gateway = gateway_from_settings(settings, args.deliver)
    try:
        report = deliver_outbox(args.path, gateway)
    finally:
        close = getattr(gateway, "close", None)
        if close is not None:
            close()
    summary = {"sent": report.sent, "retry": report.retry, "already_sent": report.done}
    print(json.dumps(summary) if args.json else ", ".join(f"{k} {v}" for k, v in summary.items()))
    # Some alerts wait for the next run: a service condition, like an unreachable gateway.
    return EXIT_SERVICE if report.retry else EXIT_OK


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


def _registry(args: argparse.Namespace) -> Any:
    from faceproof.policy.registry_server import open_registry

    return open_registry(args.database_url)


def _db_upgrade(args: argparse.Namespace) -> int:
    from faceproof.policy.registry_server import open_registry

    open_registry(args.database_url, migrate=True).db.close()
    print("the registry database is at the latest revision")
    return EXIT_OK


def _create_carrier(args: argparse.Namespace) -> int:
    key = _registry(args).create_carrier(args.name, authority=args.authority)
    print(json.dumps({"carrier": args.name, "authority": args.authority, "key": key}))
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from faceproof.policy.registry_server import serve

    workers = args.workers
    if workers is None:
        configured = os.environ.get("FACEPROOF_REGISTRY_WORKERS", "1")
        if not configured.isdigit():
            print("faceproof: FACEPROOF_REGISTRY_WORKERS must be a number", file=sys.stderr)
            return EXIT_USAGE
        workers = int(configured)
    serve(
        args.database_url,
        args.hmac_key_file,
        host=args.host,
        port=args.port,
        workers=max(1, workers),
    )
    return EXIT_OK
