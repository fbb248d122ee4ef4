"""A pool of local worker processes, each trial with its task's torch threads."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
from dataclasses import replace

from sparsemod.errors import ConfigError
from sparsemod.evaluate import TrialResult
from sparsemod.executors.base import Executor, Task, check_named, failed, raise_from_worker
from sparsemod.executors.worker import init_worker, run_task, warm_up
from sparsemod.problems import Problem


class ProcessExecutor(Executor):
    """A pool of local worker processes (each trial runs with its task's torch threads).

    A worker that dies (killed, out of memory, a crash in native code) breaks the whole
    pool, and the pool cannot say which task the dead worker held. The tasks it held are
    then run again one at a time on a fresh pool (tasks submitted meanwhile wait): a task
    whose worker dies while it runs alone fails, with the reason; the others complete, and
    their history starts with a ``retry`` row. So a trial that kills its worker fails, and
    the trials that merely shared the pool with it do not.

    Raises:
        ConfigError: ``workers`` below 1, or a problem a worker cannot find by ``ref``.
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
            self._pool.submit(warm_up, self.ref, seed)

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        ctx = mp.get_context("spawn")  # fork would copy torch's threads and CUDA state
        devices = ctx.Value("i", 0)
        return cf.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=ctx,
            initializer=init_worker,
            initargs=(devices,),
        )

    def submit(self, task: Task) -> None:
        if self._suspects or self._retried_in_flight():
            self._held.append(task)
        else:
            self._futures[self._pool.submit(run_task, task)] = task

    def _retried_in_flight(self) -> bool:
        return any(t.key in self._retried for t in self._futures.values())

    def _feed(self) -> None:
        """Start what may start: one suspect at a time, else everything held."""
        if self._suspects:
            if not self._futures:
                task = self._suspects.pop(0)
                self._futures[self._pool.submit(run_task, task)] = task
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
                    out.append((task.key, failed(task, why)))
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
