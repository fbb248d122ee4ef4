"""Executors: the same search with local processes and with Ray gives the same results."""

from __future__ import annotations

import io
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
def test_a_killed_worker_fails_its_trial_and_the_search_goes_on(tmp_path):
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
    dead = [t for t in trials if t.status == "failed"]
    assert dead and all("worker process died" in t.failure_reason for t in dead)
    # the pool was started again: the next round completed
    assert any(t.status == "completed" and t.phase == "gp" for t in trials)


def test_unknown_executor_and_unfindable_problem_are_named():
    problem = get_problem("digits_cnn")
    with pytest.raises(ConfigError, match="executor: 'cluster' is not one of"):
        make_executor("cluster", problem, "digits_cnn")
    with pytest.raises(ConfigError, match="names 'digits_cnn', not the search's"):
        make_executor("processes", get_problem("digits_mlp"), "digits_cnn", workers=2)
