"""Faults, each a test (issue 8 item 4), against real `faceproof serve` processes.

- kill -9 of the worker while it works on a clip (the attempt reserved, no answer yet): the
  attempt used but no attempt row, no decision, no image or video bytes left in its data or
  temp directory; a new worker on the same data directory asks
  for the card again (the held card lived in the dead process's memory) and the session passes.
- a private PostgreSQL 15 (initdb + pg_ctl as the `postgres` user, on a free loopback port; the
  shared cluster is never touched) stopped and started under a stream of requests: only calls
  sent during the outage fail, each with a 503 problem+json (`internal_error`), none hangs, no
  traceback is logged, the same process serves again and every session it answered 201 exists.
- the disk filling up (RLIMIT_FSIZE set on the running worker, so writes to the SQLite file fail
  with EFBIG; Python ignores SIGXFSZ) while consent refusals are decided: each refusal either
  answers a decision that is stored with its audit entry, or a 5xx without any decision; after a
  restart with space the audit chain verifies and each refused session decides normally.

docs/reliability.md ("Faults", "Nothing lost") records what these tests show.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session as DbSession

from conftest import CHALLENGE_ACTIONS, Card, free_port, make_card
from faceproof.storage.audit import verify_chain
from faceproof.storage.db import Database
from faceproof.storage.models import Attempt, AuditEntry, Decision, Session
from faceproof.storage.tenants import Scope, create_api_key, create_tenant
from serve_support import serve_env
from test_api import _MAGIC, assert_problem
from test_api_serve import _start

PG_BIN = Path("/usr/lib/postgresql/15/bin")
# Trusted local connections only (loopback, a throwaway cluster); no fsync: a test's data.
_INITDB = ("-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
SESSION = {"store_id": "s1", "channel": "in_store", "purpose": "new_line"}


@dataclass
class Worker:
    """One `faceproof serve` process, its output read as it comes (a full pipe would block a
    busy server)."""

    proc: subprocess.Popen[str]
    base: str
    output: list[str]
    readers: list[threading.Thread]

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=30)
        for reader in self.readers:
            reader.join(timeout=30)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return "".join(self.output)


def _service_env(root: Path, database_url: str = "") -> dict[str, str]:
    """A development service with its own data and temp directories, no rate limits (the
    faults, not the limits, are under test) and the seeded challenge RNG."""
    (root / "data").mkdir(mode=0o700)
    (root / "tmp").mkdir(mode=0o700)
    return serve_env(root, database_url or None, {"TMPDIR": str(root / "tmp")})


def _database_url(env: dict[str, str]) -> str:
    sqlite = f"sqlite:///{env['FACEPROOF_DATA_DIR']}/faceproof.db"
    return env.get("FACEPROOF_DATABASE_URL") or sqlite


def _api_key(url: str) -> str:
    """Migrations, a tenant and a read/write key, before any worker starts."""
    database = Database(url)
    try:
        database.upgrade()
        now = datetime.now(UTC)
        with database.session() as db:
            tenant = create_tenant(db, "Fault Mobile", now=now)
            rw = [Scope.SESSIONS_WRITE, Scope.SESSIONS_READ]
            _, key = create_api_key(db, tenant.id, rw, now=now)
    finally:
        database.close()
    return key


def _serve(env: dict[str, str], root: Path) -> Worker:
    port = free_port()
    proc = _start(env, root, port)
    output: list[str] = []
    readers = [
        threading.Thread(target=output.extend, args=(stream,), daemon=True)
        for stream in (proc.stdout, proc.stderr)
    ]
    for reader in readers:
        reader.start()
    return Worker(proc, f"http://127.0.0.1:{port}", output, readers)


def _korea_card() -> Card:
    """The workers run on the real clock: a specimen card valid today in Korea."""
    return make_card(today=(datetime.now(UTC) + timedelta(hours=9)).date())


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _media_left(*roots: Path) -> list[str]:
    """Files under these directories holding image or video magic bytes anywhere."""
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                found += [f"{path}: {kind}" for kind, magic in _MAGIC.items() if magic in data]
    return found


def _attempts_used(url: str, session_id: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            used = conn.scalar(select(Session.attempts_used).where(Session.id == session_id))
    finally:
        engine.dispose()
    return int(used or 0)


def _audit_events(db: DbSession, session_id: str) -> list[str]:
    return list(
        db.scalars(
            select(AuditEntry.event)
            .where(AuditEntry.session_id == session_id)
            .order_by(AuditEntry.id)
        )
    )


# --- 1. kill -9 while the worker works on a clip -------------------------------------------------


def _send_clip_in_background(
    url: str, clip: bytes, spec: str
) -> tuple[threading.Event, list[object], threading.Thread]:
    """POST the clip from a thread; the event is set once the whole body has been sent."""
    request = httpx.Request(
        "POST", url, files={"clip": ("clip.mp4", clip, "video/mp4")}, data={"challenge": spec}
    )
    body = request.read()
    headers = {"content-type": request.headers["content-type"]}
    sent = threading.Event()
    answers: list[object] = []

    def chunks() -> Iterator[bytes]:
        yield body
        sent.set()  # asked for more: the body is on the wire

    def upload() -> None:
        try:
            answers.append(httpx.post(url, content=chunks(), headers=headers, timeout=120))
        except httpx.TransportError as exc:
            answers.append(exc)

    thread = threading.Thread(target=upload, daemon=True)
    thread.start()
    return sent, answers, thread


def test_kill_9_during_a_clip_leaves_no_partial_decision_and_the_session_retries(
    tmp_path: Path, head_turn_mp4: bytes
) -> None:
    card = _korea_card()
    env = _service_env(tmp_path)
    url = _database_url(env)
    auth = {"Authorization": f"Bearer {_api_key(url)}"}
    photo = {"image": ("card.jpg", card.jpeg, "image/jpeg")}
    first = _serve(env, tmp_path)
    try:
        with httpx.Client(base_url=first.base, timeout=120) as http:
            created = http.post("/v1/sessions", headers=auth, json=SESSION)
            assert created.status_code == 201, created.text
            sid, token = created.json()["id"], created.json()["capture_url"].rsplit("/", 1)[1]
            cap = f"/v1/capture/{token}"
            assert http.post(f"{cap}/consent", json={"choice": "accept"}).status_code == 200
            doc = http.post(f"{cap}/document", files=photo)
            assert doc.json()["outcome"] == "document_accepted", doc.text
            challenge = http.post(f"{cap}/challenge").json()
            assert tuple(a["action"] for a in challenge["actions"]) == CHALLENGE_ACTIONS
        sent, answers, thread = _send_clip_in_background(
            f"{first.base}{cap}/clip", head_turn_mp4, challenge["challenge"]
        )
        assert sent.wait(60), "the clip was not sent"
        # In the middle of the attempt: it is reserved (committed) and the worker has spent
        # another 0.2 s of CPU on the clip (liveness takes over a second), with no answer yet.
        _until(lambda: _attempts_used(url, sid) == 1 or bool(answers), 60, "no attempt reserved")
        start, deadline = _cpu_seconds(first.proc.pid), time.monotonic() + 60
        while _cpu_seconds(first.proc.pid) - start < 0.2 and not answers:
            assert time.monotonic() < deadline, "the worker never got busy with the clip"
            time.sleep(0.01)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=30)
        thread.join(timeout=60)
    finally:
        logs = first.stop()
    assert first.proc.returncode == -signal.SIGKILL
    assert len(answers) == 1
    assert isinstance(answers[0], httpx.TransportError), f"answered before the kill: {answers}"
    assert token not in logs

    # What the dead worker left: the attempt it had reserved is used, nothing else.
    database = Database(url)
    try:
        with database.session() as db:
            row = db.get_one(Session, sid)
            assert (row.state, row.attempts_used) == ("awaiting_selfie", 1)
            assert db.scalars(select(Attempt).where(Attempt.session_id == sid)).all() == []
            assert db.scalars(select(Decision).where(Decision.session_id == sid)).all() == []
            assert "decision.made" not in _audit_events(db, sid)
            assert "attempt.recorded" not in _audit_events(db, sid)
            assert verify_chain(db) is None
    finally:
        database.close()
    assert _media_left(tmp_path / "data", tmp_path / "tmp") == []
    assert not list((tmp_path / "data").glob("*-journal"))  # no transaction was open

    # A new worker on the same data directory: the card is asked for again, then a retry.
    second = _serve(env, tmp_path)
    try:
        with httpx.Client(base_url=second.base, timeout=120) as http:
            polled = http.get(f"/v1/sessions/{sid}", headers=auth).json()
            assert polled["state"] == "awaiting_selfie"
            assert polled["attempts_used"] == 1
            assert (polled["attempts"], polled["decision"]) == ([], None)
            again = assert_problem(http.post(f"{cap}/challenge"), 409, "session_state")
            assert "upload it again" in again["detail"]
            stale = http.post(
                f"{cap}/clip",
                files={"clip": ("clip.mp4", head_turn_mp4, "video/mp4")},
                data={"challenge": challenge["challenge"]},
            )
            assert_problem(stale, 409, "session_state")
            doc = http.post(f"{cap}/document", files=photo)
            assert doc.json()["outcome"] == "document_accepted", doc.text
            spec = http.post(f"{cap}/challenge").json()["challenge"]
            step = http.post(
                f"{cap}/clip",
                files={"clip": ("clip.mp4", head_turn_mp4, "video/mp4")},
                data={"challenge": spec},
            )
            assert step.status_code == 200, step.text
            assert (step.json()["outcome"], step.json()["attempts_used"]) == ("pass", 2)
            polled = http.get(f"/v1/sessions/{sid}", headers=auth).json()
            assert polled["decision"]["decision"] == "pass"
            assert [(a["number"], a["outcome"]) for a in polled["attempts"]] == [(2, "pass")]
    finally:
        logs = second.stop()
    assert "Traceback" not in logs
    assert token not in logs
    assert _media_left(tmp_path / "data", tmp_path / "tmp") == []
    database = Database(url)
    try:
        with database.session() as db:
            assert verify_chain(db) is None
            events = _audit_events(db, sid)
            assert events.count("decision.made") == 1
            assert events.count("attempt.recorded") == 1
    finally:
        database.close()


# --- 2. PostgreSQL stopped and started under load -----------------------------------------------


@dataclass
class PrivatePostgres:
    """A PostgreSQL 15 instance of its own, owned by the `postgres` user."""

    root: Path
    port: int
    url: str = ""

    def ctl(self, *args: str) -> None:
        subprocess.run(
            [*_as_postgres(), str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.ctl("start", "-w", "-t", "60", "-l", str(self.root / "postgres.log"), "-o", options)


def _as_postgres() -> list[str]:
    """initdb refuses root: as root, run the PostgreSQL binaries as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").is_file():
        pytest.skip(f"PostgreSQL 15 not installed ({PG_BIN}); scripts/setup.sh installs it")
    # Not under pytest's tmp_path: its parents are private to root, and postgres must reach it.
    root = Path(tempfile.mkdtemp(prefix="faceproof-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = PrivatePostgres(root, free_port())
    try:
        subprocess.run(
            [*_as_postgres(), str(PG_BIN / "initdb"), "-D", str(root / "data"), *_INITDB],
            check=True,
            capture_output=True,
            timeout=120,
        )
        server.start()
        admin = create_engine(
            f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/postgres",
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE faceproof"))
        admin.dispose()
        server.url = f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/faceproof"
        yield server
    finally:
        if (root / "data" / "postmaster.pid").exists():
            server.ctl("stop", "-m", "immediate")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Outcomes:
    """What a stream of requests got: successes, session ids answered 201, and each failure
    with the time its request was sent."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    ok: int = 0
    created: list[str] = field(default_factory=list)
    failures: list[tuple[float, int, str, str]] = field(default_factory=list)  # sent, status, ..
    hangs: list[str] = field(default_factory=list)
    tracebacks: int = 0

    def record(self, sent: float, response: httpx.Response) -> None:
        with self.lock:
            if response.status_code < 400:
                self.ok += 1
                return
            kind = response.headers.get("content-type", "")
            body = response.json() if kind.startswith("application/") else {}
            self.failures.append((sent, response.status_code, kind, str(body.get("code"))))
            self.tracebacks += "Traceback" in response.text


def _stream(base: str, auth: dict[str, str], out: Outcomes, stop: threading.Event) -> None:
    """Create a session and read it back, again and again, until told to stop."""
    with httpx.Client(base_url=base, timeout=20) as http:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                created = http.post("/v1/sessions", headers=auth, json=SESSION)
                out.record(sent, created)
                if created.status_code == 201:
                    with out.lock:
                        out.created.append(created.json()["id"])
                    sent = time.monotonic()
                    polled = http.get(f"/v1/sessions/{created.json()['id']}", headers=auth)
                    out.record(sent, polled)
            except httpx.TimeoutException as exc:
                with out.lock:
                    out.hangs.append(type(exc).__name__)
            except httpx.TransportError as exc:  # no answer at all: a dropped connection
                with out.lock:
                    out.failures.append((sent, 0, "no answer", type(exc).__name__))
            time.sleep(0.01)


def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_postgres_restart_under_load_bounded_errors_and_recovery_without_restart(
    tmp_path: Path, private_postgres: PrivatePostgres
) -> None:
    env = _service_env(tmp_path, private_postgres.url)
    auth = {"Authorization": f"Bearer {_api_key(private_postgres.url)}"}
    worker = _serve(env, tmp_path)
    out, stop = Outcomes(), threading.Event()
    threads = [
        threading.Thread(target=_stream, args=(worker.base, auth, out, stop), daemon=True)
        for _ in range(3)
    ]
    try:
        for thread in threads:
            thread.start()
        _until(lambda: out.ok >= 20, 60, "no steady stream before the restart")
        private_postgres.ctl("stop", "-m", "fast", "-w")
        failures_before = len(out.failures)
        _until(lambda: len(out.failures) > failures_before, 30, "no request saw the outage")
        time.sleep(2)
        readyz = httpx.get(f"{worker.base}/readyz", timeout=20)
        assert_problem(readyz, 503, "internal_error")
        private_postgres.start()
        back, ok_at_start = time.monotonic(), out.ok
        _until(lambda: out.ok >= ok_at_start + 30, 60, "the worker did not recover")
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "a request hung"
        # The same process, never restarted, serves again: every call succeeds.
        assert worker.proc.poll() is None
        with httpx.Client(base_url=worker.base, timeout=20) as http:
            assert http.get("/readyz").status_code == 200
            for _ in range(10):
                created = http.post("/v1/sessions", headers=auth, json=SESSION)
                assert created.status_code == 201, created.text
                polled = http.get(f"/v1/sessions/{created.json()['id']}", headers=auth)
                assert polled.status_code == 200, polled.text
            for sid in out.created:  # every 201 answered was kept
                assert http.get(f"/v1/sessions/{sid}", headers=auth).status_code == 200
    finally:
        stop.set()
        logs = worker.stop()
    assert out.hangs == []
    assert out.failures, "the outage was not seen"
    for _, status, kind, code in out.failures:
        assert (status, kind, code) == (503, "application/problem+json", "internal_error")
    # Bounded: only calls sent while PostgreSQL was down failed; from its start on, all succeed.
    assert max(sent for sent, *_ in out.failures) < back
    assert out.tracebacks == 0
    assert "Traceback" not in logs
    engine = create_engine(private_postgres.url)
    try:
        with engine.connect() as conn:
            stored = set(conn.scalars(select(Session.id)))
        assert set(out.created) <= stored
        database = Database(private_postgres.url)
        with database.session() as db:
            assert verify_chain(db) is None
            created_events = db.scalar(
                select(func.count()).where(AuditEntry.event == "session.created")
            )
            assert created_events == len(stored)
        database.close()
    finally:
        engine.dispose()


# --- 3. the disk fills up while decisions are written ------------------------------------------


def test_disk_full_fails_closed_and_loses_no_decision(tmp_path: Path) -> None:
    env = _service_env(tmp_path)
    url = _database_url(env)
    auth = {"Authorization": f"Bearer {_api_key(url)}"}
    db_file = tmp_path / "data" / "faceproof.db"
    worker = _serve(env, tmp_path)
    tokens: dict[str, str] = {}
    answers: dict[str, httpx.Response] = {}
    try:
        with httpx.Client(base_url=worker.base, timeout=60) as http:
            for _ in range(30):
                created = http.post("/v1/sessions", headers=auth, json=SESSION)
                assert created.status_code == 201, created.text
                tokens[created.json()["id"]] = created.json()["capture_url"].rsplit("/", 1)[1]
            # The disk is full from here on: no file of this process may grow past the
            # database's present size (the SQLite journal may start, the database not grow).
            size = db_file.stat().st_size
            resource.prlimit(worker.proc.pid, resource.RLIMIT_FSIZE, (size, size))
            for sid, token in tokens.items():
                answers[sid] = http.post(f"/v1/capture/{token}/consent", json={"choice": "decline"})
            assert worker.proc.poll() is None  # SIGXFSZ ignored: errors, not a crash
    finally:
        logs = worker.stop()
    refused = {sid for sid, r in answers.items() if r.status_code != 200}
    assert refused, "the disk never filled: no refusal failed"
    for sid in refused:
        problem = assert_problem(answers[sid], 503, "internal_error")
        assert "decision" not in problem  # the client is not told anything was decided
    for sid in set(answers) - refused:
        assert answers[sid].json()["decision"]["decision"] == "alternative_required"
    assert "Traceback" not in logs
    # The log reports a decision only once it is stored.
    assert logs.count("decided alternative_required") == len(answers) - len(refused)

    # Space again: a new worker on the same database.
    database = Database(url)
    try:
        with database.session() as db:
            assert verify_chain(db) is None
            for sid in answers:
                decisions = db.scalars(select(Decision).where(Decision.session_id == sid)).all()
                made = _audit_events(db, sid).count("decision.made")
                assert (len(decisions), made) == ((0, 0) if sid in refused else (1, 1)), sid
                assert db.get_one(Session, sid).state == (
                    "awaiting_consent" if sid in refused else "completed"
                )
    finally:
        database.close()
    again = _serve(env, tmp_path)
    try:
        with httpx.Client(base_url=again.base, timeout=60) as http:
            for sid in refused:
                step = http.post(f"/v1/capture/{tokens[sid]}/consent", json={"choice": "decline"})
                assert step.json()["decision"]["decision"] == "alternative_required", step.text
                polled = http.get(f"/v1/sessions/{sid}", headers=auth).json()
                assert polled["decision"]["decision"] == "alternative_required"
    finally:
        logs = again.stop()
    assert "Traceback" not in logs
    database = Database(url)
    try:
        with database.session() as db:
            assert verify_chain(db) is None
            for sid in answers:
                assert _audit_events(db, sid).count("decision.made") == 1
    finally:
        database.close()
