"""Line-registry throughput: identity status queries per second on loopback.

Starts `faceproof registry serve` as a subprocess (SQLite by default, or `--database-url` for
PostgreSQL), with `--workers` uvicorn processes, creates a carrier, records a few activations,
then runs `--clients` threads that each send `POST /v1/identities/status` for `--seconds`.
Repeats `--repeats` times and reports the median throughput and latency percentiles. The
clients run on the same machine as the server and the database. Loopback only; bounded in time.

    uv run python benchmarks/registry_bench.py --database-url postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

NUMBER = "900101-1234567"  # test data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "faceproof.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its descendants, from /proc (Linux)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        pending.extend(int(child) for child in children)
    return total


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_clients(url: str, key: str, clients: int, seconds: float) -> tuple[int, list[float]]:
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        mine: list[float] = []
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
                while time.monotonic() < deadline:
                    start = time.perf_counter()
                    r = http.post("/v1/identities/status", json={"number": NUMBER})
                    r.raise_for_status()
                    mine.append(time.perf_counter() - start)
        except httpx.HTTPError as exc:
            with lock:
                failures.append(repr(exc))
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        # Only answered queries count; a failed one would make the rate meaningless.
        raise SystemExit(f"{len(failures)} client(s) failed, e.g. {failures[0]}")
    return len(latencies), latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2, help="registry worker processes")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "FACEPROOF_DATA_DIR": tmp, "ORT_DISABLE_TELEMETRY": "1"}
        db = args.database_url or f"sqlite:///{Path(tmp) / 'registry.db'}"
        storage = ["--database-url", db, "--hmac-key-file", str(Path(tmp) / "hmac.key")]
        key = json.loads(
            cli("registry", "carriers", "create", f"bench-{os.getpid()}", *storage, env=env)
        )["key"]
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "faceproof.cli.main",
                "registry",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
                *storage,
            ],
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120  # a busy machine imports slowly
            while True:
                try:
                    if httpx.get(f"{url}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("registry did not start")
                time.sleep(0.2)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
                for i in range(3):
                    body = {"number": NUMBER, "line_id": f"bench-{i}", "store": "s"}
                    http.post("/v1/activations", json=body).raise_for_status()
            # Worker processes start one by one: one unmeasured round under the same load first.
            run_clients(url, key, args.clients, args.seconds)
            rates, p50s, p95s, server_cpu, client_cpu = [], [], [], [], []
            for _ in range(args.repeats):
                server_before, client_before = process_tree_cpu(server.pid), own_cpu()
                count, latencies = run_clients(url, key, args.clients, args.seconds)
                # CPU per query does not depend on what else the machine runs, unlike q/s.
                server_cpu.append((process_tree_cpu(server.pid) - server_before) / count * 1000)
                client_cpu.append((own_cpu() - client_before) / count * 1000)
                rates.append(count / args.seconds)
                ordered = sorted(latencies)
                p50s.append(ordered[len(ordered) // 2] * 1000)
                p95s.append(ordered[int(len(ordered) * 0.95)] * 1000)
        finally:
            server.terminate()
            server.wait(timeout=20)
    backend = "postgresql" if db.startswith("postgresql") else "sqlite"
    print(
        json.dumps(
            {
                "backend": backend,
                "clients": args.clients,
                "workers": args.workers,
                "seconds": args.seconds,
                "repeats": args.repeats,
                "median_queries_per_second": round(statistics.median(rates), 1),
                "median_p50_ms": round(statistics.median(p50s), 2),
                "median_p95_ms": round(statistics.median(p95s), 2),
                "all_rates": [round(r, 1) for r in rates],
                "server_cpu_ms_per_query": round(statistics.median(server_cpu), 3),
                "client_cpu_ms_per_query": round(statistics.median(client_cpu), 3),
                "load_average_1min": round(os.getloadavg()[0], 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
