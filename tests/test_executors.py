"""Executors: the same search with local processes and with Ray gives the same results."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
import threading
import time

import pytest

from sparsemod.config import TrainConfig
from sparsemod.errors import ConfigError
from sparsemod.executors import make_executor
from sparsemod.problems import get_problem
from sparsemod.search import Search
from sparsemod.store import Store

TINY = dict(
    r1=1,
    r2=1,
    r3=0,
    batch_size=2,
    epochs1=1,
    epochs2=1,
    device="cpu",
    prune_method="magnitude_layerwise",
    num_candidates=16,
)


def _run(tmp_path, executor: str, workers: int = 1) -> list[tuple]:
    cfg = TrainConfig(name=executor, root=str(tmp_path), executor=executor, workers=workers, **TINY)
    out = Search(cfg, get_problem("digits_cnn"), out=io.StringIO(), store=Store("sqlite://")).run()
    return [
        (
            t.index,
            t.phase,
            t.status,
            t.result.error,
            t.result.model_size_bytes,
            t.result.working_memory_bytes,
        )
        for t in out.trials
    ]


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("seq"), "sequential")


@pytest.mark.slow
def test_processes_give_the_sequential_results(tmp_path, sequential):
    assert _run(tmp_path, "processes", workers=2) == sequential
    assert all(row[2] == "completed" for row in sequential)


@pytest.mark.slow
def test_ray_gives_the_sequential_results(tmp_path, sequential):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert _run(tmp_path, "ray", workers=2) == sequential
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_a_killed_worker_retries_or_fails_its_trials_and_the_search_goes_on(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'k.db'}")
    cfg = TrainConfig(name="kill", root=str(tmp_path), executor="processes", workers=2, **TINY)
    search = Search(cfg, get_problem("digits_cnn"), out=io.StringIO(), store=store)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            search.run()
        except BaseException as exc:  # noqa: BLE001 - inspected below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    killed = None
    deadline = time.monotonic() + 180
    while killed is None and time.monotonic() < deadline:
        found = store.find_search("kill")
        workers = multiprocessing.active_children()
        # kill a worker while the first round's trials are training in it
        if found is not None and store.count_trials(found.id, "running") and workers:
            time.sleep(1.0)
            killed = workers[0].pid
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    thread.join(timeout=300)
    assert killed is not None and not errors, errors
    found = store.find_search("kill")
    assert found.status == "done"
    trials = store.list_trials(found.id)
    assert len(trials) == 4
    # The trials in flight when the worker died ran again, alone, on a fresh pool and
    # completed (their history says so); one that was alone in the pool when it died failed.
    retried = [t for t in trials if store.history(t.id)[0]["stage"] == "retry"]
    dead = [t for t in trials if t.status == "failed"]
    assert retried or dead
    assert all(t.status == "completed" for t in retried)
    assert all("worker process died" in store.history(t.id)[0]["reason"] for t in retried)
    assert all("worker process died" in t.failure_reason for t in dead)
    # the pool was started again: the next round completed
    assert any(t.status == "completed" and t.phase == "gp" for t in trials)


KILLER = """
import json, multiprocessing, os, signal
from pathlib import Path

from sparsemod.problems import Problem, get_problem

BASE = get_problem("digits_mlp")
DOOMED = {round(lr, 12) for lr in json.loads((Path(__file__).parent / "doomed.json").read_text())}


def build(params, input_shape, num_classes):
    # Only inside a worker process: the search process builds networks to cost them.
    if multiprocessing.parent_process() is not None and round(params["lr"], 12) in DOOMED:
        os.kill(os.getpid(), signal.SIGKILL)
    return BASE.build(params, input_shape, num_classes)


def problem():
    return Problem("killer", BASE.space, build, BASE.data)
"""


@pytest.mark.slow
def test_a_trial_that_kills_its_worker_every_time_fails_and_the_others_complete(
    tmp_path, monkeypatch
):
    (tmp_path / "killer_problem.py").write_text(KILLER)
    (tmp_path / "doomed.json").write_text("[]")
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned workers inherit sys.path
    mlp = dict(TINY, r2=0, r1=2)

    def run(executor: str, workers: int) -> list:
        cfg = TrainConfig(
            name=executor,
            root=str(tmp_path),
            problem="killer_problem:problem",
            executor=executor,
            workers=workers,
            **mlp,
        )
        return Search(cfg, out=io.StringIO(), store=Store("sqlite://")).run().trials

    first = run("sequential", 1)
    (tmp_path / "doomed.json").write_text(json.dumps([first[1].params["lr"]]))
    trials = run("processes", 2)
    assert [t.params for t in trials] == [t.params for t in first]
    assert [t.status for t in trials] == ["completed", "failed", "completed", "completed"]
    reason = trials[1].result.failure_reason
    assert reason.startswith("worker process died") and "this trial killed its worker" in reason
    # the trials that shared the broken pool ran again and give the sequential numbers
    for a, b in zip(trials, first):
        if a.status == "completed":
            assert (a.result.error, a.result.model_size_bytes) == (
                b.result.error,
                b.result.model_size_bytes,
            )


def test_unknown_executor_and_unfindable_problem_are_named():
    problem = get_problem("digits_cnn")
    with pytest.raises(ConfigError, match="executor: 'cluster' is not one of"):
        make_executor("cluster", problem, "digits_cnn")
    with pytest.raises(ConfigError, match="names 'digits_cnn', not the search's"):
        make_executor("processes", get_problem("digits_mlp"), "digits_cnn", workers=2)
