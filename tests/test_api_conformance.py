"""API conformance: schemathesis against the service's own OpenAPI, on a live loopback server.

`faceproof serve` runs in a subprocess (SQLite in a temp data dir, rate limits off so the run
tests the API rather than the limiter); a tenant and an admin key come from the CLI. Then
`schemathesis run` exercises every operation in its coverage, fuzzing and stateful phases
(the stateful phase follows the OpenAPI links from `POST /v1/sessions` to the session routes),
with the checks below, and this test fails on any finding: a 5xx, a body that does not match
its declared schema, an undeclared status code or content type.

Capture tokens cannot be linked (the token is part of `capture_url`), so a hooks file given to
schemathesis (`SCHEMATHESIS_HOOKS`) replaces the generated token, in turn, with the token of a
fresh session or of a fresh session whose consent was accepted: most capture calls then reach
the service's state checks and the upload parsers instead of stopping at `404 token_invalid`.

Bounded by `--max-time` (the whole run) so that the test finishes in about a minute.
Run it alone: `uv run pytest tests/test_api_conformance.py`.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conftest import free_port
from faceproof.api import create_app
from faceproof.api.routes import router
from faceproof.privacy.receipts import ReceiptSigner
from faceproof.settings import Settings
from test_api import TestClient
from test_api_serve import _RUN_CLI, _cli

CHECKS = (
    "not_a_server_error",
    "response_schema_conformance",
    "content_type_conformance",
    "status_code_conformance",
)
MAX_TIME_SECONDS = 45  # schemathesis' budget for its phases; the server starts in ~5 s
# Left out of the run, each for a reason; remove an entry once its route is fixed.
EXCLUDED_PATHS = {
    # The clerk console's server-sent events (api/console.py) stay open until the session is
    # final (up to 15 minutes): one call would spend the whole time budget. tests/
    # test_api_console.py covers the stream, its 404s and its end.
    "/v1/sessions/{session_id}/events": "long-lived stream",
}
SEED = 8

# Loaded by schemathesis, not by pytest (written to a temp file at run time).
HOOKS = """
import itertools
import os

import httpx
import schemathesis

_BASE = os.environ["CONFORMANCE_BASE_URL"]
_AUTH = {"Authorization": "Bearer " + os.environ["CONFORMANCE_API_KEY"]}
_turn = itertools.count()


def _fresh_token(consent: bool) -> str:
    with httpx.Client(base_url=_BASE, timeout=10.0, trust_env=False) as client:
        created = client.post(
            "/v1/sessions",
            headers=_AUTH,
            json={"store_id": "conformance", "channel": "online", "purpose": "new_line"},
        )
        created.raise_for_status()
        token = created.json()["capture_url"].rsplit("/", 1)[1]
        if consent:
            consented = client.post(f"/v1/capture/{token}/consent", json={"choice": "accept"})
            consented.raise_for_status()
    return token


@schemathesis.hook
def before_call(context, case, kwargs):
    if "token" not in (case.path_parameters or {}):
        return
    turn = next(_turn) % 3  # 0: the generated token, 1: a fresh session, 2: consent given
    if turn:
        case.path_parameters["token"] = _fresh_token(consent=turn == 2)
"""


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    api_key: str
    process: subprocess.Popen[str]


@contextmanager
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    env = {
        **os.environ,
        "FACEPROOF_DATA_DIR": str(tmp_path / "data"),
        "FACEPROOF_RATE_LIMIT_TENANT_PER_MINUTE": "0",
        "FACEPROOF_RATE_LIMIT_CLIENT_PER_MINUTE": "0",
        "ORT_DISABLE_TELEMETRY": "1",
    }
    for name in ("FACEPROOF_DATABASE_URL", "FACEPROOF_ENVIRONMENT", "FACEPROOF_ISSUER_URL"):
        env.pop(name, None)
    tenant = json.loads(_cli(env, tmp_path, "tenants", "create", "Conformance", "--json"))
    key = json.loads(
        _cli(
            env, tmp_path, "keys", "create", "--tenant", tenant["id"], "--scope", "admin", "--json"
        )
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN_CLI, "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "serve exited"
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.2)
        yield LiveServer(base, key["key"], proc)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def _failures(junit: Path) -> list[str]:
    """The names of the operations whose test case failed or errored in the JUnit report."""
    root = ElementTree.parse(junit).getroot()  # our own report
    bad = []
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            bad.append(case.get("name", "?"))
    return bad


def test_openapi_conformance_on_a_live_server(tmp_path: Path) -> None:
    hooks = tmp_path / "conformance_hooks.py"
    hooks.write_text(HOOKS, encoding="utf-8")
    reports = tmp_path / "reports"
    with live_server(tmp_path) as server:
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": str(hooks),
            "CONFORMANCE_BASE_URL": server.base_url,
            "CONFORMANCE_API_KEY": server.api_key,
        }
        started = time.monotonic()
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{server.base_url}/openapi.json",
                "--header",
                f"Authorization: Bearer {server.api_key}",
                "--checks",
                ",".join(CHECKS),
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-time",
                str(MAX_TIME_SECONDS),
                "--seed",
                str(SEED),
                "--workers",
                "1",
                "--request-timeout",
                "20",
                "--generation-database",
                "none",
                "--report",
                "junit",
                "--report-dir",
                str(reports),
                "--no-color",
                *[arg for path in EXCLUDED_PATHS for arg in ("--exclude-path", path)],
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=MAX_TIME_SECONDS + 60,
            check=False,
        )
        elapsed = time.monotonic() - started
        server_log = ""
        if server.process.poll() is not None and server.process.stderr is not None:
            server_log = server.process.stderr.read()
        assert server.process.poll() is None, f"the server died during the run:\n{server_log}"
    output = done.stdout + done.stderr
    print(output)  # shown by pytest on failure (or with -s)
    assert done.returncode == 0, f"schemathesis found problems (exit {done.returncode}):\n{output}"
    # The run really tested the API: every operation, and the stateful links were followed.
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected, output
    assert tested, output
    assert int(tested[1]) == int(selected[1]) >= 13, output
    assert int(selected[2]) - int(selected[1]) == len(EXCLUDED_PATHS), output
    links = re.search(r"API Links: +(\d+) covered", output)
    assert links, output
    assert int(links[1]) >= 3, output
    # ... and the hooks reached the capture steps with live tokens, consent given or not.
    with closing(sqlite3.connect(tmp_path / "data" / "faceproof.db")) as db:
        consents = dict(
            db.execute(
                "SELECT coalesce(consent, '-'), count(*) FROM sessions"
                " WHERE store_id = 'conformance' GROUP BY 1"
            ).fetchall()
        )
    assert consents.get("accept", 0) >= 10, consents
    assert consents.get("-", 0) >= 1, consents
    junit = next(reports.glob("*.xml"))
    assert _failures(junit) == [], output
    assert elapsed < MAX_TIME_SECONDS + 45, f"schemathesis took {elapsed:.0f} s"


# --- what the run found, pinned in-process ---------------------------------------------------


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings, signer=ReceiptSigner(Ed25519PrivateKey.generate()))
    with TestClient(app) as test_client:
        yield test_client


def test_undecodable_json_body_is_a_documented_422(client: TestClient) -> None:
    """Found by schemathesis: a body that is not UTF-8 was FastAPI's bare, undeclared 400."""
    r = client.post(
        "/v1/capture/x/consent", content=b"\xff\xfe", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "malformed_request"


def test_every_error_response_declares_the_problem_schema(client: TestClient) -> None:
    """The service's routes (api/routes.py) declare each error status with the Problem schema,
    so schemathesis checks error bodies too."""
    schema = client.get("/openapi.json").json()
    ours = {getattr(route, "path", "") for route in router.routes}
    declared = 0
    for path, operations in schema["paths"].items():
        if path not in ours:
            continue
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    content = response.get("content", {})
                    assert list(content) == ["application/problem+json"], (method, path, status)
                    problem = content["application/problem+json"]["schema"]
                    assert {"type", "title", "status", "code"} <= set(problem["required"])
                    declared += 1
    assert declared > 40
    jwks = schema["paths"]["/.well-known/jwks.json"]["get"]["responses"]["200"]
    assert jwks["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Jwks"}
