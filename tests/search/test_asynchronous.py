"""Asynchronous GP rounds on a simulated cluster of 8 workers.

Each trial is trained for real (digits MLP, one epoch) but takes a drawn time on the
simulated cluster: the clock moves by those times, and by the real time the search spends
choosing arms between two calls of the executor. With ``asynchronous = true`` no worker
waits longer than one evaluation for its next arm; with rounds, a worker that finishes
early waits for the slowest arm of its round, which the same cluster shows.
"""

from __future__ import annotations

import heapq
import io
import random
import time

import pytest

from sparsemod.config import TrainConfig
from sparsemod.evaluate import TrialResult
from sparsemod.executors import Executor, Task, make_executor
from sparsemod.problems import get_problem
from sparsemod.search import Search

WORKERS = 8
SHORTEST, LONGEST = 20.0, 60.0  # simulated seconds an evaluation takes


class SimulatedCluster(Executor):
    """``WORKERS`` workers on a simulated clock; each task trains in this process."""

    def __init__(self, problem, data) -> None:
        self.workers = WORKERS
        self.inner = make_executor("sequential", problem, problem.name, data=data)
        self.clock = 0.0
        self.idle_since = [0.0] * WORKERS  # when each worker last became free
        self.busy: list[tuple[float, int, int, TrialResult]] = []  # (end, worker, key, result)
        self.queue: list[tuple[Task, TrialResult]] = []
        self.waits: list[float] = []  # how long a worker waited for each arm after its first
        self._last = time.perf_counter()  # the search's own time is counted from here

    def _advance(self) -> None:
        now = time.perf_counter()
        self.clock += now - self._last
        self._last = now

    def submit(self, task: Task) -> None:
        self._advance()
        self.inner.submit(task)
        ((_, result),) = self.inner.poll()  # trained now; the cluster's clock does not see it
        self.queue.append((task, result))
        self._start()
        self._last = time.perf_counter()

    def _start(self) -> None:
        free = sorted(set(range(WORKERS)) - {w for _, w, _, _ in self.busy})
        while self.queue and free:
            task, result = self.queue.pop(0)
            w = free.pop(0)
            if self.idle_since[w] > 0:  # its first arm does not count
                self.waits.append(self.clock - self.idle_since[w])
            duration = random.Random(task.key).uniform(SHORTEST, LONGEST)
            heapq.heappush(self.busy, (self.clock + duration, w, task.key, result))

    def poll(self) -> list[tuple[int, TrialResult]]:
        self._advance()
        if not self.busy:
            return []
        end, w, key, result = heapq.heappop(self.busy)
        self.clock = max(self.clock, end)
        self.idle_since[w] = self.clock
        self._last = time.perf_counter()
        return [(key, result)]


CONFIG = dict(
    problem="digits_mlp", r1=1, r2=2, r3=0, morphisms=False, epochs1=1, epochs2=1,
    batch_size=WORKERS, objectives=3, num_candidates=64, device="cpu",
    prune_method="magnitude", workers=WORKERS,
)  # fmt: skip


def _search(tmp_path, asynchronous: bool) -> tuple[SimulatedCluster, object]:
    cfg = TrainConfig(
        name=f"async-{asynchronous}", root=str(tmp_path), asynchronous=asynchronous, **CONFIG
    )
    search = Search(cfg, get_problem("digits_mlp"), out=io.StringIO())
    clusters = []

    def make() -> SimulatedCluster:
        clusters.append(SimulatedCluster(search.problem, search.data))
        return clusters[0]

    search._make_executor = make
    outcome = search.run()
    return clusters[0], outcome


@pytest.mark.slow
def test_no_worker_waits_longer_than_one_evaluation(tmp_path) -> None:
    cluster, outcome = _search(tmp_path, asynchronous=True)
    assert len(outcome.trials) == 3 * WORKERS
    gp = [t for t in outcome.trials if t.phase == "gp"]
    assert len(gp) == 2 * WORKERS and all(t.result is not None for t in gp)
    assert len(cluster.waits) == 2 * WORKERS
    assert max(cluster.waits) <= SHORTEST, sorted(cluster.waits)[-5:]
    # each GP arm was chosen with the running ones pending: they are all different networks
    assert len({tuple(sorted(t.params.items())) for t in outcome.trials}) == 3 * WORKERS
    # the rounds are still counted, each with its hypervolume
    assert [r["phase"] for r in outcome.rounds] == ["sobol"] + ["gp"] * 2


@pytest.mark.slow
def test_in_rounds_a_worker_waits_for_the_slowest_arm_of_its_round(tmp_path) -> None:
    cluster, outcome = _search(tmp_path, asynchronous=False)
    assert len(outcome.trials) == 3 * WORKERS
    assert max(cluster.waits) > SHORTEST  # what the asynchronous rounds remove
