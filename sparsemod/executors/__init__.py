"""Where evaluations run: in this process, in a pool of local processes, or on Ray.

The contract (``submit`` / ``poll`` / ``stop``, :class:`Task`, how worker errors come
back) is in :mod:`sparsemod.executors.base`; one module per executor implements it, and
:func:`make_executor` picks one by its config.ini name. Only
:mod:`sparsemod.executors.ray` imports Ray, and only when a Ray executor is made.
"""

from __future__ import annotations

from typing import Any

from sparsemod.errors import ConfigError
from sparsemod.executors.base import (
    Executor,
    RemoteTraceback,
    Task,
    WorkerError,
    check_named,
    raise_from_worker,
    torch_threads,
)
from sparsemod.executors.processes import ProcessExecutor
from sparsemod.executors.ray import RayExecutor
from sparsemod.executors.sequential import SequentialExecutor
from sparsemod.problems import Problem
from sparsemod.settings import EXECUTORS

__all__ = [
    "EXECUTORS",
    "Executor",
    "ProcessExecutor",
    "RayExecutor",
    "RemoteTraceback",
    "SequentialExecutor",
    "Task",
    "WorkerError",
    "check_named",
    "make_executor",
    "raise_from_worker",
    "torch_threads",
]

# The executor key's declaration lists them (sparsemod.settings).


def make_executor(
    kind: str, problem: Problem, ref: str, workers: int = 1, data: Any = None, **options: Any
) -> Executor:
    """The executor called ``kind``: sequential, processes or ray.

    Args:
        kind: ``sequential``, ``processes`` or ``ray``.
        problem: the search's problem.
        ref: how config.ini names it; worker processes look it up by this.
        workers: processes (or concurrent Ray tasks).
        data: splits already loaded, for the sequential executor.
        **options: Ray's ``address``, ``num_cpus`` and ``num_gpus`` per trial.

    Raises:
        ConfigError: an unknown kind, a problem a worker cannot find, or Ray asked for but
            not installed.
    """
    if kind == "sequential":
        return SequentialExecutor(problem, data)
    if kind == "processes":
        return ProcessExecutor(problem, ref, workers)
    if kind == "ray":
        return RayExecutor(problem, ref, workers, **options)
    raise ConfigError(f"executor: {kind!r} is not one of {', '.join(EXECUTORS)}")
