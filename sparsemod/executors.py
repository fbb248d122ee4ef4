"""Where evaluations run: in this process, in a pool of local processes, or on Ray.

An executor is shaped like Ax's runner protocol: ``submit`` (run), ``poll`` (results as
they finish), ``stop``. The search loop hands it the arms of a round and takes the results
in whatever order they finish; it never knows which executor it has.

Failures are the same whichever executor runs a trial. A candidate failure (a network that
does not build, runs out of memory or diverges: :func:`sparsemod.evaluate.evaluate`
decides) is a failed trial, and so is a worker that dies under a trial (killed, out of
memory, a lost Ray node), never a hung search. Any other exception is a bug: ``poll``
raises it in the search process, as the sequential executor does, with the worker's
traceback as its ``__cause__`` (a :class:`RemoteTraceback`), and the search stops.

Tasks name their problem the way config.ini does (``problem = digits_cnn`` or
``package.module:function``), so a worker process rebuilds the problem with
:func:`sparsemod.problems.get_problem` and loads its data once, itself.
"""

from __future__ import annotations

import abc
import concurrent.futures as cf
import contextlib
import multiprocessing as mp
import os
import pickle
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, NoReturn

import torch

from sparsemod.errors import ConfigError
from sparsemod.evaluate import FAILED, EvalSettings, TrialResult, WarmStart, evaluate
from sparsemod.problems import Problem, get_problem

EXECUTORS = ("sequential", "processes", "ray")


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


def _failed(task: Task, reason: str) -> TrialResult:
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


# ----------------------------------------------------------------------------- sequential


class SequentialExecutor(Executor):
    """Runs each task in this process when polled (today's behaviour)."""

    def __init__(self, problem: Problem, data: Any = None) -> None:
        self.problem = problem
        self._data: dict[int, Any] = {}
        self._given = data  # the caller's loaded splits, used for every seed
        self._pending: list[Task] = []

    def submit(self, task: Task) -> None:
        self._pending.append(task)

    def poll(self) -> list[tuple[int, TrialResult]]:
        if not self._pending:
            return []
        task = self._pending.pop(0)
        seed = task.settings.seed
        if self._given is None and seed not in self._data:
            self._data[seed] = self.problem.load(seed)
        data = self._given if self._given is not None else self._data[seed]
        with torch_threads(task.threads):
            result = evaluate(self.problem, task.params, task.settings, data, task.warm_start)
        return [(task.key, result)]


# ----------------------------------------------------------------------------- processes

_WORKER: dict[str, Any] = {}


def _init_worker(devices: Any) -> None:
    # Each worker takes the next device in turn (one GPU each when there are enough).
    if devices is not None:
        with devices.get_lock():
            _WORKER["device_index"] = devices.value
            devices.value += 1


def _load_in_worker(ref: str, seed: int) -> tuple[Problem, Any]:
    cache = _WORKER.setdefault("problems", {})
    if ref not in cache:
        cache[ref] = get_problem(ref)
    data = _WORKER.setdefault("data", {})
    if (ref, seed) not in data:
        data[ref, seed] = cache[ref].load(seed)
    return cache[ref], data[ref, seed]


def _warm_up(ref: str, seed: int) -> None:
    # Runs once in each fresh worker: the imports (torch, sparsemod) and the data load
    # happen while the search process computes its reference point.
    time.sleep(0.2)  # hold this worker so that the next warm-up starts another process
    _load_in_worker(ref, seed)


def _run_in_worker(task: Task) -> TrialResult:
    try:
        problem, loaded = _load_in_worker(task.problem, task.settings.seed)
        settings = task.settings
        if settings.device == "auto" and torch.cuda.is_available():
            n = torch.cuda.device_count()
            settings = _with_device(settings, f"cuda:{_WORKER.get('device_index', 0) % n}")
        with torch_threads(task.threads):
            return evaluate(problem, task.params, settings, loaded, task.warm_start)
    except Exception as exc:
        # evaluate returned the candidate failures: this is a bug, for the search to raise.
        raise WorkerError.of(task, exc) from None


def _with_device(settings: EvalSettings, device: str) -> EvalSettings:
    return replace(settings, device=device)


class ProcessExecutor(Executor):
    """A pool of local worker processes (each trial runs with its task's torch threads).

    A worker that dies (killed, out of memory, a crash in native code) breaks the whole
    pool, and the pool cannot say which task the dead worker held. The tasks it held are
    then run again one at a time on a fresh pool (tasks submitted meanwhile wait): a task
    whose worker dies while it runs alone fails, with the reason; the others complete, and
    their history starts with a ``retry`` row. So a trial that kills its worker fails, and
    the trials that merely shared the pool with it do not.
    """

    def __init__(self, problem: Problem, ref: str, workers: int) -> None:
        if workers < 1:
            raise ConfigError(f"workers: {workers!r} must be >= 1")
        check_named(problem, ref)
        self.workers = workers
        self.ref = ref
        self._pool = self._new_pool()
        self._futures: dict[cf.Future, Task] = {}
        self._suspects: list[Task] = []  # lost with a broken pool: to run again, alone
        self._held: list[Task] = []  # submitted while suspects run
        self._retried: dict[int, str] = {}  # task key -> how its first run was lost

    def prepare(self, seed: int) -> None:
        # One warm-up per worker: each makes the pool spawn a process. Its outcome is not
        # awaited; a worker that fails to start shows up as a failed trial later.
        for _ in range(self.workers):
            self._pool.submit(_warm_up, self.ref, seed)

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        ctx = mp.get_context("spawn")  # fork would copy torch's threads and CUDA state
        devices = ctx.Value("i", 0)
        return cf.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(devices,),
        )

    def submit(self, task: Task) -> None:
        if self._suspects or self._retried_in_flight():
            self._held.append(task)
        else:
            self._futures[self._pool.submit(_run_in_worker, task)] = task

    def _retried_in_flight(self) -> bool:
        return any(t.key in self._retried for t in self._futures.values())

    def _feed(self) -> None:
        """Start what may start: one suspect at a time, else everything held."""
        if self._suspects:
            if not self._futures:
                task = self._suspects.pop(0)
                self._futures[self._pool.submit(_run_in_worker, task)] = task
            return
        if not self._retried_in_flight():
            held, self._held = self._held, []
            for task in held:
                self.submit(task)

    def poll(self) -> list[tuple[int, TrialResult]]:
        out: list[tuple[int, TrialResult]] = []
        while not out:
            self._feed()
            if not self._futures:
                return out
            out = self._wait()
        return out

    def _wait(self) -> list[tuple[int, TrialResult]]:
        alone = len(self._futures) == 1
        done, _ = cf.wait(list(self._futures), return_when=cf.FIRST_COMPLETED)
        out = []
        lost: list[tuple[Task, str]] = []
        for fut in done:
            task = self._futures.pop(fut)
            try:
                out.append((task.key, self._note_retry(task, fut.result())))
            except cf.process.BrokenProcessPool as exc:
                lost.append((task, f"worker process died: {exc}"))
            except Exception as exc:
                # Not a candidate failure (those come back as results): the search stops.
                self.stop()
                raise_from_worker(exc)
        if lost:
            # The whole pool is gone with the dead worker: everything it held is lost.
            lost += [(t, "worker process died: the pool broke") for t in self._futures.values()]
            self._futures.clear()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            for task, reason in lost:
                if alone:
                    why = f"{reason} (it ran alone in the pool, so this trial killed its worker)"
                    out.append((task.key, _failed(task, why)))
                else:
                    self._retried.setdefault(task.key, reason)
                    self._suspects.append(task)
        return out

    def _note_retry(self, task: Task, result: TrialResult) -> TrialResult:
        reason = self._retried.pop(task.key, None)
        if reason is None:
            return result
        row = {"stage": "retry", "epoch": 0, "reason": f"first run lost: {reason}"}
        return replace(result, history=(row, *result.history))

    def stop(self) -> None:
        # Not waiting: the workers exit on their own (tearing torch down takes them ~2 s),
        # and nothing they hold is needed any more.
        self._held.clear()
        self._suspects.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)


def check_named(problem: Problem, ref: str) -> None:
    """A worker process finds the problem by ``ref``; refuse one it would not find."""
    try:
        found = get_problem(ref)
    except ConfigError as exc:
        raise ConfigError(f"executor: a worker cannot load problem {ref!r}: {exc}") from exc
    if found.name != problem.name:
        raise ConfigError(
            f"executor: problem {ref!r} names {found.name!r}, not the search's "
            f"{problem.name!r}; a worker process would run another problem"
        )


# ----------------------------------------------------------------------------- factory


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
        from sparsemod.ray_executor import RayExecutor

        return RayExecutor(problem, ref, workers, **options)
    raise ConfigError(f"executor: {kind!r} is not one of {', '.join(EXECUTORS)}")
