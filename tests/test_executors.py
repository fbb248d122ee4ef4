"""Executors: the same search with local processes and with Ray gives the same results."""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback

import pytest

from sparsemod.config import TrainConfig
from sparsemod.errors import ConfigError
from sparsemod.evaluate import EvalSettings
from sparsemod.executors import RemoteTraceback, Task, WorkerError, make_executor, raise_from_worker
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


# ------------------------------------------------------------------ failures, every executor
# A candidate that does not build, runs out of memory or diverges is a failed trial with its
# reason; any other exception in a worker is a bug, raised again in the search process with
# the worker's traceback. tests/faulty_problems.py picks each fault by units1.

TESTS = os.path.dirname(os.path.abspath(__file__))


@contextlib.contextmanager
def _executor(kind: str, monkeypatch):
    ref = "faulty_problems:mixed"
    monkeypatch.syspath_prepend(TESTS)  # spawned worker processes inherit sys.path
    if kind == "ray":
        ray = pytest.importorskip("ray")
        pythonpath = os.pathsep.join(p for p in (TESTS, os.environ.get("PYTHONPATH")) if p)
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": pythonpath}},
        )
    executor = make_executor(kind, get_problem(ref), ref, workers=2)
    try:
        yield executor
    finally:
        executor.stop()
        if kind == "ray":
            ray.shutdown()


def _task(key: int, fault: str | None) -> Task:
    from faulty_problems import FAULT_OF_UNITS1

    units = {f: u for u, f in FAULT_OF_UNITS1.items()}.get(fault, 16)
    params = dict(get_problem("digits_mlp").space.reference, units1=units, keep_ratio=1.0)
    settings = EvalSettings(
        epochs=1, quant_scheme="none", runtime="ideal", keep_model=False, device="cpu"
    )
    return Task(key, "faulty_problems:mixed", params, settings)


@pytest.mark.parametrize("kind", ["sequential", "processes", "ray"])
def test_candidate_failures_fail_their_trials_and_a_bug_stops_every_executor(kind, monkeypatch):
    with _executor(kind, monkeypatch) as executor:
        for key, fault in enumerate([None, "build", "diverge", "out_of_memory"]):
            executor.submit(_task(key, fault))
        results = {}
        while len(results) < 4:
            results.update(executor.poll())
        assert results[0].ok, results[0].failure_reason
        reasons = [results[k].failure_reason for k in (1, 2, 3)]
        assert reasons[0].startswith("BuildError: this candidate does not build")
        assert reasons[1].startswith("InfeasibleError: training diverged: loss is nan")
        assert reasons[2].startswith("out of memory: RuntimeError: ")
        assert "can't allocate memory" in reasons[2]

        executor.submit(_task(4, "bug"))
        executor.submit(_task(5, None))
        with pytest.raises(TypeError, match="injected bug") as info:
            while executor.poll():  # [] once nothing is pending: then it did not raise
                pass
    shown = "".join(traceback.format_exception(info.value))
    # the worker's frames, down to the bug, reach the user
    assert 'faulty_problems.py", line' in shown and "in injected_bug" in shown
    assert "in evaluate" in shown
    if kind != "sequential":
        assert isinstance(info.value.__cause__, RemoteTraceback)
        assert info.value.__cause__.text.startswith("trial 4 in worker process ")
        assert "in injected_bug" in info.value.__cause__.text


class _Unpicklable(Exception):
    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a} and {b}")


def test_an_error_that_cannot_be_pickled_still_brings_its_traceback():
    try:
        raise _Unpicklable("left", "right")
    except _Unpicklable as exc:
        carried = pickle.loads(pickle.dumps(WorkerError.of(_task(7, None), exc)))
    assert carried.error is None
    with pytest.raises(WorkerError) as info:
        raise_from_worker(carried)
    text = str(info.value)
    assert text.startswith("trial 7 in worker process ")
    assert "_Unpicklable: left and right" in text and "test_executors.py" in text
