"""The load benchmark's short form (issue 8 item 3; `benchmarks/service_load.py` is the long
one): a few concurrent clients run whole sessions against `faceproof serve` in a subprocess,
and nothing may be lost, duplicated or stuck. Behaviour only: no timing threshold.

Plain threads with httpx, not locust: locust monkey-patches the process with gevent at import,
which would leak into every other test of the run. The benchmark runs the same sessions
(`serve_support.run_session`) under locust.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from serve_support import (
    FINAL,
    SessionRun,
    httpx_requester,
    render_inputs,
    run_session,
    sqlite_url,
    start_serve,
    stored_outcome,
)

CLIENTS = 4
SESSIONS = 20


def test_concurrent_whole_sessions_each_get_exactly_one_decision(tmp_path: Path) -> None:
    # Two clips are enough: a client re-draws (cheaply) until its challenge is one of them.
    inputs = render_inputs(("turn_left", "turn_right"))
    served = start_serve(tmp_path)
    try:

        def one(_: int) -> SessionRun:
            with httpx.Client(timeout=180.0) as client:
                return run_session(httpx_requester(client), served.base, served.key, inputs)

        with ThreadPoolExecutor(CLIENTS) as pool:
            runs = list(pool.map(one, range(SESSIONS)))
        stored = stored_outcome(sqlite_url(served))
    finally:
        log = served.stop()

    statuses = Counter(s for run in runs for s in run.statuses)
    assert not [s for s in statuses if s >= 500], statuses  # no 5xx, on any call
    assert [run.error for run in runs if run.error] == []
    # Good card, clips performing the challenge: every session passes, seen by its client.
    assert [run.decision for run in runs] == ["pass"] * SESSIONS
    ids = [run.session_id for run in runs if run.session_id]
    assert len(set(ids)) == SESSIONS
    # The database agrees: the same sessions, each completed with exactly one decision row
    # (none lost, none duplicated, none stuck in an intermediate state).
    assert set(stored.sessions) == set(ids)
    assert set(stored.sessions.values()) == {"completed"}
    assert {sid: stored.decisions.get(sid) for sid in ids} == {sid: ["pass"] for sid in ids}
    assert set(FINAL) >= {d for ds in stored.decisions.values() for d in ds}
    assert "Traceback" not in log
    assert '"status": 5' not in log  # the access log saw no server error either
