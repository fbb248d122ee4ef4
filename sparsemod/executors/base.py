"""The executor contract: ``submit`` (run), ``poll``, ``stop``, and what a task is.

An executor is shaped like Ax's runner protocol. The search loop hands it the arms of a
round and takes the results in whatever order they finish; it never knows which executor
it has.

Failures are the same whichever executor runs a trial. A candidate failure (a network that
does not build, runs out of memory or diverges: :func:`sparsemod.evaluate.evaluate`
decides) is a failed trial, and so is a worker that dies under a trial (killed, out of
memory, a lost Ray node), never a hung search. Any other exception is a bug: ``poll``
raises it in the search process, as the sequential executor does, with the worker's
traceback as its ``__cause__`` (a :class:`RemoteTraceback`), and the search stops.
"""

from __future__ import annotations

import abc
import contextlib
import os
import pickle
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import torch

from sparsemod.errors import ConfigError
from sparsemod.evaluate import FAILED, EvalSettings, TrialResult, WarmStart
from sparsemod.problems import Problem, get_problem


@dataclass(frozen=True)
class Task:
    """One evaluation: which trial, which problem, which point, how."""

    key: int
    problem: str
    params: Mapping[str, Any]
    settings: EvalSettings
    warm_start: WarmStart | None = None
    threads: int = 1  # torch threads for this trial, whichever executor runs it


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch threads, then restore the caller's setting.

    A trial always trains with its task's thread count: the sums inside conv and matmul
    split differently with another count, and the same seed must give the same network
    whichever executor ran it.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Executor(abc.ABC):
    """Runs tasks; results come back as they finish."""

    workers: int = 1

    @abc.abstractmethod
    def submit(self, task: Task) -> None:
        """Start a task (it may wait for a free worker)."""

    @abc.abstractmethod
    def poll(self) -> list[tuple[int, TrialResult]]:
        """Block until at least one submitted task finished; its (key, result) pairs.

        Returns:
            The finished tasks, empty only when none is pending.
        """

    def prepare(self, seed: int) -> None:  # noqa: B027 - nothing to start by default
        """Start the workers and load the data of ``seed`` before the first task comes."""

    def stop(self) -> None:  # noqa: B027 - nothing to release by default
        """Cancel what has not started and release the workers."""


def failed(task: Task, reason: str) -> TrialResult:
    """The failed trial of ``task``, for a worker lost under it."""
    return TrialResult(FAILED, dict(task.params), task.settings.seed, failure_reason=reason)


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker: the ``__cause__`` of that
    exception when ``poll`` raises it again in the search process."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n" + self.text


class WorkerError(Exception):
    """An exception raised while a worker ran a task, carried back to the search process.

    ``poll`` raises ``error`` (the exception itself) from a :class:`RemoteTraceback`; it
    raises this instead when ``error`` could not be pickled, its message being the
    worker's traceback.

    Args:
        text: which trial, which process, and the formatted traceback.
        error: the exception, or None when it does not survive pickling.
    """

    def __init__(self, text: str, error: BaseException | None = None) -> None:
        super().__init__(text, error)
        self.text = text
        self.error = error

    def __str__(self) -> str:
        return self.text

    @classmethod
    def of(cls, task: Task, exc: BaseException) -> WorkerError:
        """The carrier of ``exc``, raised while the worker ran ``task``."""
        text = f"trial {task.key} in worker process {os.getpid()}:\n" + "".join(
            traceback.format_exception(exc)
        )
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:  # noqa: BLE001 - e.g. an __init__ that its args do not fit
            return cls(text)
        return cls(text, exc)


def raise_from_worker(exc: BaseException) -> NoReturn:
    """Raise in the search process what a worker raised: the error, from its traceback."""
    if isinstance(exc, WorkerError) and exc.error is not None:
        raise exc.error from RemoteTraceback(exc.text)
    raise exc


def check_named(problem: Problem, ref: str) -> None:
    """A worker process finds the problem by ``ref``; refuse one it would not find.

    Raises:
        ConfigError: ``ref`` names no problem, or another problem than ``problem``.
    """
    try:
        found = get_problem(ref)
    except ConfigError as exc:
        raise ConfigError(f"executor: a worker cannot load problem {ref!r}: {exc}") from exc
    if found.name != problem.name:
        raise ConfigError(
            f"executor: problem {ref!r} names {found.name!r}, not the search's "
            f"{problem.name!r}; a worker process would run another problem"
        )
