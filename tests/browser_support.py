"""Browser-test support: the service on loopback, Debian's Chromium with a fake camera fed from
a Y4M file written in code, and step screenshots kept as test artefacts.

Chromium is the system package (`chromium`, installed by scripts/setup.sh), driven through
Playwright's `executable_path`; `playwright install` is never run. The fake camera reads
`--use-file-for-fake-video-capture` when the page opens it (getUserMedia), from the first frame,
and loops; a test may therefore rewrite the file between two openings of the camera.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import numpy.typing as npt
import pytest
import uvicorn

from conftest import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("FACEPROOF_TEST_ARTIFACTS", "build/test-artifacts"))

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (scripts/setup.sh installs it; CI runs these)",
)


def write_y4m(path: Path, frames: Sequence[npt.NDArray[np.uint8]], fps: int = 15) -> None:
    """RGB frames (all one size, even sides) as a Y4M clip Chromium's fake camera can play."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420).tobytes())


def dark_frames(n: int = 15, size: tuple[int, int] = (640, 480)) -> list[npt.NDArray[np.uint8]]:
    """A covered lens: what the fake camera shows until a test writes its clip."""
    return [np.full((size[1], size[0], 3), 8, np.uint8) for _ in range(n)]


@contextmanager
def serve_app(app: Any, port: int) -> Iterator[str]:
    """The ASGI app on 127.0.0.1:port in a thread (a secure context for getUserMedia)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def chromium(camera: Path, viewport: tuple[int, int] = (420, 860)) -> Iterator[Any]:
    """A fresh headless Chromium profile whose camera plays `camera` (a Y4M file)."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM is not None
    args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="fp-chromium-") as profile:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=args,
            viewport={"width": viewport[0], "height": viewport[1]},
            locale="ko-KR",
        )
        try:
            yield context
        finally:
            context.close()


class Shots:
    """Numbered full-page screenshots of one journey, kept under ARTIFACTS/<journey>/."""

    def __init__(self, journey: str) -> None:
        self.dir = ARTIFACTS / journey
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.n = 0

    def __call__(self, page: Any, step: str) -> Path:
        self.n += 1
        path = self.dir / f"{self.n:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


SESSION = {"store_id": "gangnam-01", "channel": "online", "purpose": "new_line"}


@dataclass
class Site:
    """The service on loopback with one tenant: a tenant-wide key, a store's key (store
    gangnam-01) and an admin key; `camera` is the Y4M file the browser's camera plays."""

    base: str
    key: str
    store_key: str
    admin_key: str
    camera: Path
    data_dir: Path

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def new_session(self, **overrides: Any) -> dict[str, Any]:
        r = httpx.post(
            f"{self.base}/v1/sessions", json={**SESSION, **overrides}, headers=self._auth()
        )
        assert r.status_code == 201, r.text
        created: dict[str, Any] = r.json()
        return created

    def session(self, session_id: str) -> dict[str, Any]:
        r = httpx.get(f"{self.base}/v1/sessions/{session_id}", headers=self._auth())
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


@contextmanager
def running_site(tmp_path: Path, comparer: Any, liveness: Any, **settings: Any) -> Iterator[Site]:
    """The real app (SQLite under tmp_path, the given models) served on a free loopback port.
    Its challenge issuer draws from a seeded RNG: actions the rendered head can perform."""
    from conftest import CHALLENGE_SEED
    from faceproof.api import create_app
    from faceproof.settings import Settings
    from faceproof.storage.tenants import Scope, create_api_key, create_tenant

    port = free_port()
    data_dir = tmp_path / "data"
    config = Settings(data_dir=data_dir, public_base_url=f"http://127.0.0.1:{port}", **settings)
    app = create_app(config, comparer=comparer, liveness=liveness)
    service = app.state.service
    service.challenges.rng = random.Random(CHALLENGE_SEED)
    now = datetime.now(UTC)
    rw = [Scope.SESSIONS_WRITE, Scope.SESSIONS_READ]
    with service.db.session() as db:
        tenant = create_tenant(db, "carrier", now=now)
        key = create_api_key(db, tenant.id, rw, now=now)[1]
        store_key = create_api_key(db, tenant.id, rw, now=now, store_id=SESSION["store_id"])[1]
        admin_key = create_api_key(db, tenant.id, [Scope.ADMIN], now=now)[1]
    camera = tmp_path / "camera.y4m"
    write_y4m(camera, dark_frames())
    with serve_app(app, port) as base:
        yield Site(base, key, store_key, admin_key, camera, data_dir)


def accessibility_violations(page: Any) -> list[str]:
    """axe-core's serious and critical WCAG 2.1 A/AA violations on the page as it is now
    (axe-core ships inside the axe-playwright-python package: nothing is fetched)."""
    from axe_playwright_python.sync_playwright import Axe

    options = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
    results = Axe().run(page, options=options)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} @ {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v.get("impact") in {"serious", "critical"}
    ]
