"""Trials as Ray tasks: the one module that imports Ray (``pip install "sparsemod[ray]"``).

Ray only runs evaluations (``ray.remote`` tasks with resource requests); Ax stays the
brain and the store the record. A task whose worker or node is lost comes back as a
failed trial with Ray's reason; an exception raised by the task itself is a bug, raised
again in the search process as the other executors do (see
:mod:`sparsemod.executors.base`). Ray is imported when an executor is made, not with
this module.
"""

from __future__ import annotations

from typing import Any

from sparsemod.errors import ConfigError
from sparsemod.evaluate import TrialResult
from sparsemod.executors.base import (
    Executor,
    Task,
    WorkerError,
    check_named,
    failed,
    raise_from_worker,
)
from sparsemod.executors.worker import run_task
from sparsemod.problems import Problem


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            'executor = ray needs Ray: pip install "sparsemod[ray]" (or pip install ray)'
        ) from exc
    return ray


class RayExecutor(Executor):
    """Each trial a Ray task with ``num_cpus`` / ``num_gpus`` resources.

    Args:
        problem: the search's problem.
        ref: how config.ini names it (workers look it up by this).
        workers: tasks in flight at once.
        address: ``auto`` for a running cluster, ``host:port``, or None to start a local
            Ray (or use the one this process already started).
        num_cpus: CPUs a trial asks for.
        num_gpus: GPUs a trial asks for (fractions share a GPU).

    Raises:
        ConfigError: Ray is not installed, or a worker cannot find the problem by ``ref``.
    """

    def __init__(
        self,
        problem: Problem,
        ref: str,
        workers: int,
        address: str | None = None,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
    ) -> None:
        ray = _ray()
        check_named(problem, ref)
        if not ray.is_initialized():
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        self.workers = workers
        self._remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=0)(
            _evaluate_task
        )
        self._refs: dict[Any, Task] = {}

    def submit(self, task: Task) -> None:
        self._refs[self._remote.remote(task)] = task

    def poll(self) -> list[tuple[int, TrialResult]]:
        if not self._refs:
            return []
        ray = _ray()
        ready, _ = ray.wait(list(self._refs), num_returns=1)
        out = []
        for ref in ready:
            task = self._refs.pop(ref)
            try:
                out.append((task.key, ray.get(ref)))
            except ray.exceptions.RayTaskError as exc:
                # The task raised (not a candidate failure: those come back as results).
                self.stop()
                cause = exc.cause
                raise_from_worker(cause if isinstance(cause, WorkerError) else exc)
            except Exception as exc:  # a crashed or killed worker, a lost node
                reason = f"ray: {type(exc).__name__}: {str(exc).splitlines()[0][:500]}"
                out.append((task.key, failed(task, reason)))
        return out

    def stop(self) -> None:
        ray = _ray()
        for ref in list(self._refs):
            ray.cancel(ref, force=True)
        self._refs.clear()


def _evaluate_task(task: Task) -> TrialResult:
    return run_task(task)
