"""`faceproof serve` in a subprocess, and whole verification sessions driven against it.

Shared by `tests/test_load_short.py` (threads + httpx) and `benchmarks/service_load.py` (locust),
so that both run exactly the same session: create -> consent -> document -> challenge -> clip
-> poll until decided. Not a test module (no fixtures, no pytest import here).

The service runs with `FACEPROOF_CHALLENGE_SEED`: its challenges come from one seeded RNG, so
only the first one is known in advance. `render_inputs` pre-renders one clip of the synthetic
head for every two-action challenge (20 over the five actions; 0.6 s + two action windows: 4.6 s
with the default 2 s windows, 3 s with `window_s=1.2`, for a server started with the same
`FACEPROOF_CHALLENGE_WINDOW_SECONDS`), and the session asks for a new challenge (an unused one
simply expires) until it is handed one it has a clip for.

`run_session(..., pace=True)` waits the clip's length between the challenge and the upload, as
an applicant recording it does; the wait is not counted in any step.

The server's log goes to a file, never to a pipe nobody reads (a full pipe blocks the server).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

import httpx

from conftest import CHALLENGE_SEED, encode_clip, free_port, make_card
from test_api_serve import _RUN_CLI, _cli

PERFORMABLE = ("turn_left", "turn_right", "look_up", "blink", "open_mouth")
LEAD_S = 0.6  # ChallengeIssuer's neutral start before the first window
FINAL = ("pass", "fail", "review", "alternative_required")
SESSION_BODY = {"store_id": "load-01", "channel": "online", "purpose": "new_line"}


@dataclass(frozen=True)
class LoadInputs:
    """A photographed specimen card (JPEG) and one MP4 clip per performable challenge."""

    card_jpeg: bytes
    clips: dict[tuple[str, ...], bytes]
    clip_seconds: float = 4.6


def render_inputs(actions: tuple[str, ...] = PERFORMABLE, *, window_s: float = 2.0) -> LoadInputs:
    """The card (valid today in Korea) and a clip for every ordered pair of `actions` that a
    server can ask (one has a head movement; about 2 s to render each; the default five
    actions give eighteen clips), performing them in the windows a server with
    `FACEPROOF_CHALLENGE_WINDOW_SECONDS=window_s` hands out."""
    from faceproof.liveness.challenge import HEAD_MOVES
    from faceproof.liveness.synthetic import SceneKit, bona_fide_clip, challenge_motion

    card = make_card(today=(datetime.now(UTC) + timedelta(hours=9)).date())
    kit = SceneKit.build()
    clips: dict[tuple[str, ...], bytes] = {}
    windows = ((LEAD_S, LEAD_S + window_s), (LEAD_S + window_s, LEAD_S + 2 * window_s))
    seconds = windows[-1][1]
    for pair in itertools.permutations(actions, 2):
        if not set(pair) & set(HEAD_MOVES):
            continue  # never asked
        motion = challenge_motion(pair, windows)
        clip = bona_fide_clip(kit, "challenge", seconds=seconds, motion=motion)
        clips[pair] = encode_clip(clip)
    return LoadInputs(card.jpeg, clips, seconds)


@dataclass
class Served:
    """A running `faceproof serve`, its environment, base URL and an API key."""

    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    base: str
    key: str
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> str:
        """Terminate the server (it drains and exits) and return its log."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.log()


def serve_env(
    workdir: Path, database_url: str | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A development service's environment: this process's, minus any `FACEPROOF_*`, with
    its data dir under `workdir`, the seeded challenge RNG and rate limits off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEPROOF_")}
    env.update(
        {
            "ORT_DISABLE_TELEMETRY": "1",
            "FACEPROOF_DATA_DIR": str(workdir / "data"),
            "FACEPROOF_CHALLENGE_SEED": str(CHALLENGE_SEED),
            "FACEPROOF_RATE_LIMIT_TENANT_PER_MINUTE": "0",
            "FACEPROOF_RATE_LIMIT_CLIENT_PER_MINUTE": "0",
            **(extra or {}),
        }
    )
    if database_url:
        env["FACEPROOF_DATABASE_URL"] = database_url
    return env


def start_serve(
    workdir: Path,
    *,
    database_url: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout_s: float = 90.0,
) -> Served:
    """Migrations, a tenant and a key through the admin CLI, then `serve` (`serve_env`) on a
    free loopback port, its log in `workdir/serve.log`; returns once /healthz answers."""
    env = serve_env(workdir, database_url, extra_env)
    _cli(env, workdir, "db", "upgrade")
    tenant = _json(_cli(env, workdir, "tenants", "create", "Load Mobile", "--json"))
    key = _json(_cli(env, workdir, "keys", "create", "--tenant", tenant["id"], "--json"))["key"]
    port = free_port()
    log_path = workdir / "serve.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN_CLI, "serve", "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    served = Served(proc, env, f"http://127.0.0.1:{port}", str(key), log_path, log)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{served.base}/healthz", timeout=2).status_code == 200:
                return served
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"serve did not come up:\n{served.stop()[-4000:]}")
        time.sleep(0.2)


def _json(text: str) -> Any:
    import json

    return json.loads(text)


# --- one whole session -----------------------------------------------------------------------


class Requester(Protocol):
    """One HTTP call: `(status, JSON body or None)`; `name` groups calls in the statistics."""

    def __call__(self, method: str, url: str, name: str, **kwargs: Any) -> tuple[int, Any]: ...


def httpx_requester(client: httpx.Client) -> Requester:
    def call(method: str, url: str, name: str, **kwargs: Any) -> tuple[int, Any]:
        r = client.request(method, url, **kwargs)
        return r.status_code, json_body(r.headers.get("content-type", ""), r.content)

    return call


def json_body(content_type: str, content: bytes) -> Any:
    if "json" not in content_type:
        return None
    try:
        return _json(content.decode("utf-8"))
    except ValueError:
        return None


@dataclass
class SessionRun:
    """What one session did: its id, decision, per-step seconds (`redraw`: the challenges it
    had no clip for), statuses and draws."""

    session_id: str | None = None
    decision: str | None = None
    steps: dict[str, float] = field(default_factory=dict)
    statuses: list[int] = field(default_factory=list)
    challenge_draws: int = 0
    draw_times: list[float] = field(default_factory=list)
    error: str | None = None
    total_s: float = 0.0
    recording_s: float = 0.0  # the paced waits (`pace=True`)
    actions: tuple[str, ...] = ()  # the challenge the clip answered (the last one)
    started: float = 0.0  # the clock when the session began

    @property
    def net_s(self) -> float:
        """The session's wall time without the challenges re-drawn for want of a clip, and
        without the recording waits."""
        return self.total_s - self.steps.get("redraw", 0.0) - self.recording_s


def run_session(
    call: Requester,
    base: str,
    key: str,
    inputs: LoadInputs,
    *,
    max_draws: int = 200,
    poll_timeout_s: float = 120.0,
    clock: Callable[[], float] = time.perf_counter,
    pace: bool = False,
) -> SessionRun:
    """One whole session. Step names: create, consent, document, challenge (every draw until a
    performable one, summed), clip, poll (until a decision). Never raises for an HTTP answer:
    an unexpected one ends the run with `error` set."""
    run = SessionRun()
    auth = {"Authorization": f"Bearer {key}"}
    start = run.started = clock()

    def step(name: str, method: str, url: str, **kwargs: Any) -> Any:
        t = clock()
        status, body = call(method, url, name, **kwargs)
        took = clock() - t
        run.steps[name] = run.steps.get(name, 0.0) + took
        if name == "challenge":
            run.draw_times.append(took)
        run.statuses.append(status)
        return status, body

    try:
        status, body = step(
            "create", "POST", f"{base}/v1/sessions", headers=auth, json=SESSION_BODY
        )
        if status != 201:
            return _failed(run, "create", status, start, clock)
        run.session_id = body["id"]
        cap = body["capture_url"]
        status, body = step("consent", "POST", f"{cap}/consent", json={"choice": "accept"})
        if status != 200:
            return _failed(run, "consent", status, start, clock)
        photo = {"image": ("card.jpg", inputs.card_jpeg, "image/jpeg")}
        status, body = step("document", "POST", f"{cap}/document", files=photo)
        if status != 200 or body.get("outcome") != "document_accepted":
            return _failed(run, "document", status, start, clock, body)
        decided: str | None = None
        while decided is None:
            spec, clip = _draw(step, cap, inputs, run, max_draws)
            if spec is None or clip is None:
                return _failed(run, "challenge", 0, start, clock)
            if pace:
                time.sleep(inputs.clip_seconds)  # recording (gevent-aware under locust)
                run.recording_s += inputs.clip_seconds
            files = {"clip": ("clip.mp4", clip, "video/mp4")}
            status, body = step(
                "clip", "POST", f"{cap}/clip", files=files, data={"challenge": spec}
            )
            if status in (409, 410) and body and body.get("code", "").startswith("challenge_"):
                continue  # expired while queued (retry-able, no attempt used): a new challenge
            if status != 200:
                return _failed(run, "clip", status, start, clock, body)
            decided = (body.get("decision") or {}).get("decision")
            if decided is None and body.get("outcome") != "retry":
                return _failed(run, "clip", status, start, clock, body)
        deadline = clock() + poll_timeout_s
        while True:
            status, body = step("poll", "GET", f"{base}/v1/sessions/{run.session_id}", headers=auth)
            if status != 200:
                return _failed(run, "poll", status, start, clock)
            if body.get("decision"):
                run.decision = body["decision"]["decision"]
                break
            if clock() > deadline:
                return _failed(run, "poll", status, start, clock)
            time.sleep(0.05)
    except (httpx.HTTPError, OSError, KeyError, TypeError, AttributeError) as exc:
        run.error = f"{type(exc).__name__}: {exc}"
    run.total_s = clock() - start
    return run


def _draw(
    step: Callable[..., Any], cap: str, inputs: LoadInputs, run: SessionRun, max_draws: int
) -> tuple[str | None, bytes | None]:
    for _ in range(max_draws):
        run.challenge_draws += 1
        status, body = step("challenge", "POST", f"{cap}/challenge")
        if status != 200:
            return None, None
        actions = tuple(a["action"] for a in body["actions"])
        if actions in inputs.clips:
            run.actions = actions
            return body["challenge"], inputs.clips[actions]
        # Not one we have a clip for: its time counts as a re-draw, not as the session's step.
        last = run.draw_times[-1]
        run.steps["challenge"] -= last
        run.steps["redraw"] = run.steps.get("redraw", 0.0) + last
    return None, None


def _failed(
    run: SessionRun,
    where: str,
    status: int,
    start: float,
    clock: Callable[[], float],
    body: Any = None,
) -> SessionRun:
    code = body.get("code") or body.get("outcome") if isinstance(body, dict) else None
    run.error = f"{where}: HTTP {status} {code or ''}".strip()
    run.total_s = clock() - start
    return run


# --- what the database holds afterwards ------------------------------------------------------


@dataclass(frozen=True)
class StoredOutcome:
    """Per session in the database: its state and how many decision rows it has."""

    sessions: dict[str, str]  # id -> state
    decisions: dict[str, list[str]]  # id -> every decision stored for it


def stored_outcome(database_url: str) -> StoredOutcome:
    """Read sessions and decisions straight from the service's database."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            sessions = {r[0]: r[1] for r in conn.execute(text("SELECT id, state FROM sessions"))}
            decisions: dict[str, list[str]] = {}
            for sid, decision in conn.execute(text("SELECT session_id, decision FROM decisions")):
                decisions.setdefault(sid, []).append(decision)
    finally:
        engine.dispose()
    return StoredOutcome(sessions, decisions)


def sqlite_url(served: Served) -> str:
    return f"sqlite:///{Path(served.env['FACEPROOF_DATA_DIR']) / 'faceproof.db'}"


@contextmanager
def postgres_schema(url: str, prefix: str) -> Iterator[str]:
    """A new, empty schema `<prefix>_<random>` in the PostgreSQL database at `url`, dropped
    afterwards; yields the URL that selects it (other suites reset `public`)."""
    from sqlalchemy import create_engine, text

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
