"""What runs inside a worker process (a pool process or a Ray worker).

Tasks name their problem the way config.ini does (``problem = digits_cnn`` or
``package.module:function``), so a worker rebuilds the problem with
:func:`sparsemod.problems.get_problem` and loads its data once, itself. The functions here
are pickled by reference, so a worker imports this module, not the search's.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import torch

from sparsemod.evaluate import TrialResult, evaluate
from sparsemod.executors.base import Task, WorkerError, torch_threads
from sparsemod.problems import Problem, get_problem

_WORKER: dict[str, Any] = {}


def init_worker(devices: Any) -> None:
    """Pool initializer: each worker takes the next device in turn (one GPU each when there
    are enough)."""
    if devices is not None:
        with devices.get_lock():
            _WORKER["device_index"] = devices.value
            devices.value += 1


def _load(ref: str, seed: int) -> tuple[Problem, Any]:
    cache = _WORKER.setdefault("problems", {})
    if ref not in cache:
        cache[ref] = get_problem(ref)
    data = _WORKER.setdefault("data", {})
    if (ref, seed) not in data:
        data[ref, seed] = cache[ref].load(seed)
    return cache[ref], data[ref, seed]


def warm_up(ref: str, seed: int) -> None:
    """Runs once in each fresh worker: the imports (torch, sparsemod) and the data load
    happen while the search process computes its reference point."""
    time.sleep(0.2)  # hold this worker so that the next warm-up starts another process
    _load(ref, seed)


def run_task(task: Task) -> TrialResult:
    """Evaluate ``task`` in this worker.

    Raises:
        WorkerError: anything ``evaluate`` raised (a bug, not a candidate failure: those
            come back as results), carried to the search process to raise there.
    """
    try:
        problem, loaded = _load(task.problem, task.settings.seed)
        settings = task.settings
        if settings.device == "auto" and torch.cuda.is_available():
            n = torch.cuda.device_count()
            device = f"cuda:{_WORKER.get('device_index', 0) % n}"
            settings = replace(settings, device=device)
        with torch_threads(task.threads):
            return evaluate(problem, task.params, settings, loaded, task.warm_start)
    except Exception as exc:
        # evaluate returned the candidate failures: this is a bug, for the search to raise.
        raise WorkerError.of(task, exc) from None
