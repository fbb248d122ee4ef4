"""Each task run in this process, when polled."""

from __future__ import annotations

from typing import Any

from sparsemod.evaluate import TrialResult, evaluate
from sparsemod.executors.base import Executor, Task, torch_threads
from sparsemod.problems import Problem


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
