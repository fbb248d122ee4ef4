"""The search loop: a :class:`~sparsemod.search.study.Study` driven by sparsemod's evaluator.

The study proposes each round's arms (Sobol, GP, morphisms) and stores them, the executor
evaluates them (:func:`sparsemod.evaluate.evaluate`), and each result is told to the study
as it arrives; at the end the front is scored on the test split and the files written.
An ask/tell user drives the same study with their own evaluation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sparsemod.config import TrainConfig
from sparsemod.data import Splits
from sparsemod.errors import ConfigError
from sparsemod.evaluate import FAILED, TrialResult
from sparsemod.executors import Task, make_executor
from sparsemod.problems import Problem, get_problem
from sparsemod.search.journal import Cancelled
from sparsemod.search.phases import COLD, WARM
from sparsemod.search.problem_study import problem_study
from sparsemod.search.record import stored_front
from sparsemod.search.reporter import ConsoleReporter, Reporter
from sparsemod.search.state import Trial
from sparsemod.store import Store, default_url

__all__ = ["COLD", "WARM", "Cancelled", "Search", "SearchOutcome", "Trial", "run_search"]


@dataclass
class SearchOutcome:
    """What a finished search returns: where its files are, its trials and its front."""

    directory: Path
    trials: list[Trial]
    pareto: list[int]
    hypervolume: float
    wall_seconds: float
    generation_seconds: float
    rejected: int
    hv_history: list[float] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)


class Search:
    """A multi-objective search over one problem, configured by a :class:`TrainConfig`.

    Args:
        config: the validated ``[TRAIN]`` settings.
        problem: the problem; looked up by ``config.problem`` when omitted.
        out: where the console reporter's lines go (one per trial).
        store: the store (``config.root``'s SQLite file when omitted).
        search_id: resume this search from the store.
        reporter: receives the progress (a :class:`ConsoleReporter` on ``out`` by default).
        warm_start: the name of an earlier search in the same store (any problem, any
            board): its Pareto set is proposed first, each network checked against this
            space and its limits (one that fails is said and left out).
    """

    def __init__(
        self,
        config: TrainConfig,
        problem: Problem | None = None,
        out: TextIO | None = None,
        *,
        store: Store | None = None,
        search_id: int | None = None,
        reporter: Reporter | None = None,
        warm_start: str | None = None,
    ) -> None:
        if warm_start is not None and search_id is not None:
            raise ConfigError("--warm-start starts a new search; a resumed one has its trials")
        self.warm_start = warm_start
        self.config = config
        self.store = store
        self.search_id = search_id
        self.problem = problem or get_problem(config.problem)
        self.reporter = reporter if reporter is not None else ConsoleReporter(out)
        self.objectives = list(config.objective_names)

    def run(self) -> SearchOutcome:
        """Run every phase, write the result files, return the outcome."""
        start = time.perf_counter()
        cfg = self.config
        self.data: Splits = self.problem.load(cfg.seed)
        check_problem(cfg, self.problem, self.data)
        if self.store is None:
            self.store = Store(default_url(cfg.root))
        known = [] if self.warm_start is None else stored_front(self.store, self.warm_start)
        # Workers start now (a spawned process imports torch and loads the data: seconds),
        # while this process computes the reference point and starts Ax.
        self.executor = self._make_executor()
        try:
            resumed = self.search_id is not None
            self.study = problem_study(
                cfg, self.problem, self.data, self.store, self.search_id, self.reporter
            )
            self.search_id = self.study.search_id
            journal = self.study.journal
            self._enqueue(known)
            try:
                outcome = self._run(start, resumed)
            except Cancelled:
                journal.set_status("cancelled")
                raise
            except BaseException as exc:
                journal.set_status("failed", f"{type(exc).__name__}: {exc}")
                raise
            journal.set_status("done")
            return outcome
        finally:
            self.executor.stop()

    def _enqueue(self, known: list[dict[str, Any]]) -> None:
        taken = 0
        for params in known:
            try:
                self.study.enqueue(self.problem.space.coerce(params))
                taken += 1
            except ConfigError as exc:
                self.reporter.message(f"warm start: {params} left out: {exc}")
        if self.warm_start is not None:
            self.reporter.message(
                f"warm start: {taken} of the {len(known)} Pareto members of search "
                f"{self.warm_start!r} are proposed first"
            )

    def _make_executor(self) -> Any:
        cfg = self.config
        options: dict[str, Any] = {}
        if cfg.executor == "ray":
            options = {
                "address": None if cfg.ray_address == "local" else cfg.ray_address,
                "num_cpus": cfg.num_cpus,
                "num_gpus": cfg.num_gpus,
            }
        executor = make_executor(
            cfg.executor, self.problem, cfg.problem, cfg.workers, data=self.data, **options
        )
        executor.prepare(cfg.seed)
        return executor

    def _run(self, start: float, resumed: bool) -> SearchOutcome:
        cfg, study = self.config, self.study
        rerun = study.pending()
        if resumed:
            self.reporter.message(
                f"resuming search {self.search_id}: {len(study.trials) - len(rerun)} trials "
                f"done, {len(rerun)} to run again"
            )
        self.reporter.message(
            f"sparsemod: problem {self.problem.name}, objectives {', '.join(self.objectives)}, "
            f"rounds {cfg.r1}/{cfg.r2}/{cfg.r3} x {cfg.batch_size}, reference point "
            + ", ".join(f"{o}={v:.4g}" for o, v in zip(self.objectives, study.ref_point))
        )
        self._running: dict[int, Trial] = {}
        self._labels: dict[int, str | None] = {}
        try:
            if rerun:
                self._submit(rerun, "resumed")
                self._wait(until=0)
            if cfg.asynchronous:
                # A worker that finishes gets the next arm at once, chosen with the running
                # ones as pending; the Sobol rounds go out together as always.
                free = max(self.executor.workers, 1)
                while arms := study.ask(free):
                    self._submit(arms)
                    self._wait(until=self.executor.workers - 1)
                    free = max(self.executor.workers - len(self._running), 1)
                self._wait(until=0)
            else:
                while arms := study.ask_round():
                    self._submit(arms)
                    self._wait(until=0)
        except Cancelled:
            self.study.journal.close_cancelled(self._running.values())
            raise
        return self._finish(time.perf_counter() - start)

    def _submit(self, trials: Sequence[Trial], label: str | None = None) -> None:
        """Hand arms to the executor (one that does not build fails at once)."""
        study = self.study
        for trial in trials:
            settings = study.eval_settings(trial)  # with the front: see its docstring
            build_error = study.costs.why(trial.params)
            if build_error:
                failed = TrialResult(
                    FAILED, trial.params, settings.seed, failure_reason=f"BuildError: {build_error}"
                )
                self._record(trial, failed, label)
                continue
            self._running[trial.index] = trial
            self._labels[trial.index] = label
            self.executor.submit(
                Task(
                    trial.index, self.config.problem, trial.params, settings,
                    study.warm_start(trial), threads=self.config.threads,
                )
            )  # fmt: skip

    def _wait(self, until: int) -> None:
        """Tell the study each result as it comes, until at most ``until`` arms run."""
        while len(self._running) > until:
            for index, result in self.executor.poll():
                self._record(self._running.pop(index), result, self._labels.pop(index))

    def _record(self, trial: Trial, result: TrialResult, label: str | None) -> None:
        self.study.record(trial, result, label)
        if self.study.journal.cancelling():
            self.reporter.message(f"search {self.search_id} cancelled after trial {trial.index}")
            self.executor.stop()
            raise Cancelled(f"search {self.search_id} was cancelled")

    def _finish(self, wall: float) -> SearchOutcome:
        cfg, state = self.config, self.study.state
        directory = Path(cfg.root) / cfg.name
        pareto = state.pareto()
        summary = {
            "hypervolume_history": state.hv_history,
            "rejected_before_training": state.rejected,
            "generation_seconds": state.generation_seconds,
            "rounds": state.rounds,
        }
        self.study.journal.finish(
            self.problem, state, self.data, directory, summary, wall, cfg.deploy_check,
            self.reporter.message,
        )  # fmt: skip
        hv = state.hypervolume()
        self.reporter.message(
            f"done: {len(state.completed())}/{len(state.trials)} trials completed, "
            f"{len(pareto)} on the Pareto front, HV {hv:.4f}, {wall:.0f} s "
            f"({state.generation_seconds:.0f} s choosing arms); results in {directory}"
        )
        return SearchOutcome(
            directory, state.trials, [t.index for t in pareto], hv, wall,
            state.generation_seconds, state.rejected, state.hv_history, state.rounds,
        )  # fmt: skip


def check_problem(config: TrainConfig, problem: Problem, data: Splits) -> None:
    """What a search of ``problem`` needs that its config cannot say alone (before
    anything is stored or trained)."""
    if config.splitter and data.collate_fn is None:
        raise ConfigError(
            f"[TRAIN] splitter: true, but problem {problem.name!r} gives no "
            "collate_fn to batch its sequences with"
        )
    if config.deploy_check != "none":  # said before anything trains
        from sparsemod.deploy.base import missing_runtime

        missing = missing_runtime(config.deploy_check)
        if missing:
            raise ConfigError(f"[TRAIN] deploy_check: {missing}", key="deploy_check")


def run_search(
    config: TrainConfig, problem: Problem | None = None, out: TextIO | None = None
) -> SearchOutcome:
    """Run a search to the end (see :class:`Search`)."""
    return Search(config, problem, out).run()
