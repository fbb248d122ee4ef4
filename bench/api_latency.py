"""Requests per second and latency of ``GET /api/v1/searches/{id}`` while a search trains.

By default the script starts everything itself in a temporary folder: ``uvicorn
server.app:app`` (one process), one worker (``python -m server.worker``), and a search
big enough to keep training for the whole measurement. Once the search is running it
polls ``GET /api/v1/searches/{id}`` from this process (a second process, over loopback)
with ``--threads`` keep-alive connections, each sending its next request as soon as the
last one is answered, for ``--seconds``, and prints the rate and the latency percentiles.
``--idle`` starts no worker (the server alone); ``--url``, ``--token`` and ``--search``
measure a server that is already running instead.

Usage::

    python bench/api_latency.py [--threads 4] [--seconds 20] [--idle]
                                [--url URL --token T --search ID]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789"
# ~40 trials of 3 epochs: minutes of training, longer than any measurement here.
SEARCH = {
    "name": "bench",
    "problem": "digits_cnn",
    "config": {
        "r1": 20,
        "r2": 0,
        "r3": 0,
        "batch_size": 2,
        "epochs1": 3,
        "device": "cpu",
        "num_candidates": 8,
    },
}


def _request(conn: http.client.HTTPConnection, method: str, path: str, token: str, body=None):
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(tmp: Path, train: bool) -> tuple[str, list[subprocess.Popen], int]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARSEMOD_")}
    env.update(
        SPARSEMOD_API_TOKEN=TOKEN,
        SPARSEMOD_RESULTS_ROOT=str(tmp / "results"),
        SPARSEMOD_DATABASE_URL=f"sqlite:///{tmp / 'bench.db'}",
        SPARSEMOD_MAX_TRIALS="100",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p),
    )
    log = open(tmp / "processes.log", "w")  # noqa: SIM115 (closed with the processes)
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "server.app:app", "--port", str(port), "--log-level",
         "warning"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    procs = [api]
    if train:
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "server.worker"], cwd=REPO, env=env, stdout=log, stderr=log
            )
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            if _request(conn, "GET", "/health", TOKEN)[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline or api.poll() is not None:
            raise SystemExit(f"uvicorn did not start; see {tmp / 'processes.log'}")
        time.sleep(0.2)
    status, body = _request(conn, "POST", "/api/v1/searches", TOKEN, SEARCH)
    if status != 202:
        raise SystemExit(f"submitting the search: {status} {body[:500]!r}")
    search_id = json.loads(body)["id"]
    # Wait until the worker trains (the first trial stored), so the poll runs against it.
    while train:
        got = json.loads(_request(conn, "GET", f"/api/v1/searches/{search_id}", TOKEN)[1])
        if got["status"] == "running" and got["trials_running"] + got["trials_done"] > 0:
            break
        if time.monotonic() > deadline + 120:
            raise SystemExit(f"the search did not start training: {got}")
        time.sleep(0.5)
    return url, procs, search_id


def measure(url: str, token: str, search_id: int, threads: int, seconds: float) -> dict:
    """Poll the search from ``threads`` connections for ``seconds``; latencies in ms."""
    parts = urlsplit(url)
    path = f"/api/v1/searches/{search_id}"
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    start = threading.Barrier(threads + 1)
    stop_at = [float("inf")]  # set once every thread is connected

    def run(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        _request(conn, "GET", path, token)  # connect and warm up outside the timing
        start.wait()
        mine = latencies[i]
        while (t0 := time.perf_counter()) < stop_at[0]:
            status, _ = _request(conn, "GET", path, token)
            mine.append((time.perf_counter() - t0) * 1e3)
            if status != 200:
                errors[i] += 1

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    start.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for t in pool:
        t.join()
    wall = time.perf_counter() - began
    every = sorted(x for per in latencies for x in per)
    q = statistics.quantiles(every, n=100)
    return {
        "requests": len(every),
        "errors": sum(errors),
        "seconds": round(wall, 2),
        "requests_per_s": round(len(every) / wall, 1),
        "p50_ms": round(q[49], 2),
        "p90_ms": round(q[89], 2),
        "p99_ms": round(q[98], 2),
        "max_ms": round(every[-1], 2),
        "threads": threads,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=4, help="concurrent connections (default 4)")
    p.add_argument("--seconds", type=float, default=20.0, help="how long (default 20)")
    p.add_argument("--url", default=None, help="a running server (default: start one)")
    p.add_argument("--token", default=os.environ.get("SPARSEMOD_API_TOKEN", TOKEN))
    p.add_argument("--search", type=int, default=None, help="the search id to poll")
    p.add_argument("--idle", action="store_true", help="start no worker: nothing trains")
    args = p.parse_args()
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="sparsemod-bench-") as tmp:
        try:
            if args.url is None:
                url, procs, search_id = _start(Path(tmp), train=not args.idle)
                token = TOKEN
            else:
                if args.search is None:
                    raise SystemExit("--url needs --search")
                url, token, search_id = args.url, args.token, args.search
            result = measure(url, token, search_id, args.threads, args.seconds)
            if procs:
                conn = http.client.HTTPConnection(urlsplit(url).hostname, urlsplit(url).port)
                got = json.loads(_request(conn, "GET", f"/api/v1/searches/{search_id}", token)[1])
                result["search_status_after"] = got["status"]
                result["trials_done_after"] = got["trials_done"]
            result["cpus"] = os.cpu_count()
            print(json.dumps(result, indent=2))
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
