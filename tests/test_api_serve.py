"""`faceproof serve` for real: uvicorn in a subprocess on a free loopback port, a session created
through an admin CLI key, and the server's log checked for the capture token (it must not be
there: uvicorn's access log is off, the app logs route templates)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import free_port

_RUN_CLI = (
    "import argparse, sys\n"
    "from faceproof.cli.service import add_parsers, run\n"
    "p = argparse.ArgumentParser(prog='faceproof')\n"
    "add_parsers(p.add_subparsers(dest='command', required=True))\n"
    "sys.exit(run(p.parse_args(sys.argv[1:])))\n"
)


def _cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _RUN_CLI, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_serve_end_to_end_without_token_in_logs(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FACEPROOF_DATA_DIR": str(tmp_path / "data"),
        "ORT_DISABLE_TELEMETRY": "1",
    }
    env.pop("FACEPROOF_DATABASE_URL", None)
    tenant = json.loads(_cli(env, tmp_path, "tenants", "create", "Example Mobile", "--json"))
    key = json.loads(_cli(env, tmp_path, "keys", "create", "--tenant", tenant["id"], "--json"))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN_CLI, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=5.0) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "serve did not come up"
                assert proc.poll() is None, "serve exited"
                time.sleep(0.2)
            assert client.get("/readyz").status_code == 200
            r = client.post(
                "/v1/sessions",
                headers={"Authorization": f"Bearer {key['key']}"},
                json={"store_id": "s1", "channel": "online", "purpose": "new_line"},
            )
            assert r.status_code == 201, r.text
            capture_url = r.json()["capture_url"]
            assert capture_url.startswith(f"{base}/v1/capture/")  # serve's own address
            token = capture_url.rsplit("/", 1)[1]
            r = client.post(f"{capture_url}/consent", json={"choice": "decline"})
            assert r.json()["decision"]["decision"] == "alternative_required"
            assert client.get("/docs").status_code == 200  # the OpenAPI page
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    logs = out + err
    assert "models loaded in" in logs  # before listening: no request waits for a model
    assert '"route": "/v1/capture/{token}/consent"' in logs
    assert token not in logs
    assert key["key"] not in logs


def _start(env: dict[str, str], cwd: Path, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN_CLI, "serve", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "serve did not come up"
        assert proc.poll() is None, "serve exited"
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    out, err = proc.communicate(timeout=30)
    return out + err


def test_first_development_start_prints_keys_for_the_web_pages_once(tmp_path: Path) -> None:
    env = {**os.environ, "FACEPROOF_DATA_DIR": str(tmp_path / "data"), "ORT_DISABLE_TELEMETRY": "1"}
    env.pop("FACEPROOF_DATABASE_URL", None)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first = _start(env, tmp_path, port)
    try:
        assert httpx.get(f"{base}/console").status_code == 200
        assert httpx.get(f"{base}/").headers["content-type"].startswith("text/html")
    finally:
        logs = _stop(first)
    keys = [word for word in logs.split() if word.startswith("fpk_")]
    assert len(keys) == 2, logs
    store_key, admin_key = keys
    assert f"{base}/console" in logs

    second = _start(env, tmp_path, port)  # a restart: the tenant exists, no new keys
    try:
        me = httpx.get(f"{base}/v1/whoami", headers={"Authorization": f"Bearer {store_key}"})
        assert me.json()["store_id"] == "store-001"
        assert me.json()["scopes"] == ["sessions:read", "sessions:write"]
        admin = httpx.get(f"{base}/v1/whoami", headers={"Authorization": f"Bearer {admin_key}"})
        assert admin.json()["scopes"] == ["admin"]
    finally:
        logs = _stop(second)
    assert "fpk_" not in logs


def test_warm_up_makes_every_pooled_engine_before_the_first_request(tmp_path: Path) -> None:
    from faceproof.api import create_app
    from faceproof.settings import Settings

    app = create_app(Settings(data_dir=tmp_path / "data", liveness_slots=2))
    service = app.state.service
    try:
        service.warm_up()
        engines = service._liveness.drain()
        ocr = service._ocr.drain()
        assert len(engines) == 2
        assert len({id(e) for e in engines}) == 2
        assert len(ocr) == 2
        for kor, eng in ocr:
            kor.close()
            eng.close()
    finally:
        service.close()


def test_a_failed_warm_up_leaves_the_pool_whole() -> None:
    """What was made before a `prepare` failed stays in the pool, counted once; the pool still
    never makes more than its size."""
    import pytest

    from faceproof.api.service import _Pool

    made: list[int] = []

    def factory() -> int:
        made.append(len(made))
        return made[-1]

    def prepare(item: int) -> None:
        if item == 1:
            raise RuntimeError("model failed its first run")

    pool = _Pool(factory, size=3)
    with pytest.raises(RuntimeError):
        pool.fill(prepare)
    with pool.take() as first, pool.take() as second, pool.take() as third:
        assert sorted([first, second, third]) == [0, 1, 2]  # the third made only now
    assert made == [0, 1, 2]
    assert sorted(pool.drain()) == [0, 1, 2]
