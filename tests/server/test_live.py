"""End to end: real uvicorn and a real worker as processes, talking over HTTP."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import subprocess
import sys
import time

import httpx
import pandas as pd
import pytest

from server.client import load_model_bytes
from sparsemod.problems import get_problem
from sparsemod.train import accuracy

API = "/api/v1"


@pytest.mark.slow
def test_submit_poll_download_and_load(live, procs, auth, tiny) -> None:
    worker = procs.start(["-m", "server.worker"], live.env)
    with httpx.Client(base_url=live.url + API, headers=auth, timeout=30) as http:
        r = http.post("/searches", json={"name": "e2e", "problem": "digits_cnn", "config": tiny})
        assert r.status_code == 202, r.text
        url = r.headers["Location"].removeprefix(API)
        deadline = time.monotonic() + 240
        while (got := http.get(url).json())["status"] not in ("done", "failed", "cancelled"):
            assert worker.poll() is None, procs.stop(worker)[-3000:]
            assert time.monotonic() < deadline, got
            time.sleep(0.5)
        assert got["status"] == "done", (got, procs.stop(worker)[-3000:])
        assert got["trials_done"] == got["trials_total"] == 1

        trials = pd.read_csv(io.StringIO(http.get(f"{url}/trials.csv").text))
        assert len(trials) == 1 and trials["status"].tolist() == ["completed"]
        member = http.get(f"{url}/pareto").json()["data"][0]
        r = http.get(member["model_url"].removeprefix(API))
        assert r.status_code == 200
        assert hashlib.sha256(r.content).hexdigest() == r.headers["x-sparsemod-sha256"]
        assert r.headers["content-disposition"].endswith(f'trial_{member["id"]}.pt2"')

        # The same model exported to a microcontroller runtime on request.
        model_url = member["model_url"].removeprefix(API)
        bad = http.get(model_url, params={"format": "tflm"})
        assert bad.status_code == 422, bad.text
        assert bad.json()["field"] == "format" and "tflite" in bad.json()["detail"]
        if importlib.util.find_spec("litert_torch") is not None:
            flat = http.get(model_url, params={"format": "tflite"}, timeout=300)
            assert flat.status_code == 200, flat.text
            assert flat.content[4:8] == b"TFL3"  # the TFLite flatbuffer's file identifier
            assert flat.headers["x-sparsemod-format"] == "tflite"
            assert flat.headers["content-disposition"].endswith(f'trial_{member["id"]}.tflite"')
    assert "ended: done" in procs.stop(worker)

    # The documented call: torch.export.load(io.BytesIO(data)).module() for "exported".
    model = load_model_bytes(r.content, r.headers["x-sparsemod-format"])
    problem = get_problem("digits_cnn")
    data = problem.load(got["config"]["seed"])
    acc = accuracy(model, data.val, collate_fn=data.collate_fn)
    assert acc == pytest.approx(member["metrics"]["accuracy_val"], abs=1e-12)
    assert int(trials.loc[0, "index"]) == member["index"]


@pytest.mark.slow
def test_uvicorn_refuses_to_start_without_a_token(tmp_path, server_env, free_port) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "uvicorn", "server.app:app", "--port", str(free_port)],
        cwd=server_env(tmp_path)["PYTHONPATH"].split(":")[0],
        env=server_env(tmp_path, token=None),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "SPARSEMOD_API_TOKEN is not set" in proc.stderr


@pytest.mark.slow
def test_sparsemod_serve_runs_the_api_and_a_worker(tmp_path, procs, free_port) -> None:
    import os
    import signal

    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARSEMOD_")}
    serve = procs.start(
        ["-c", "from sparsemod.cli import main; raise SystemExit(main())", "serve", "--dev"]
        + ["--port", str(free_port), "--root", str(tmp_path)],
        env,
    )
    url = f"http://127.0.0.1:{free_port}"
    deadline = time.monotonic() + 60
    while True:
        assert serve.poll() is None, procs.output(serve)[-3000:]
        assert time.monotonic() < deadline, procs.output(serve)[-3000:]
        try:
            if httpx.get(f"{url}/api/v1/searches", timeout=1).status_code == 200:  # dev: no token
                break
        except httpx.TransportError:
            time.sleep(0.2)
    while "waiting for searches" not in procs.output(serve):
        assert time.monotonic() < deadline, procs.output(serve)[-3000:]
        time.sleep(0.2)
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=90) == 0, procs.output(serve)[-3000:]  # after both children
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/health", timeout=1)
