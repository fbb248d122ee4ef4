"""The search loop: it drives the phases, the executor and the journal.

:func:`~sparsemod.search.phases.plan` gives the phases in order (Sobol, GP, morphisms);
each proposes arms from the :class:`~sparsemod.search.state.SearchState`, the journal
stores them, the executor evaluates them (:func:`sparsemod.evaluate.evaluate`), and each
result is recorded in the state, in Ax, in the store and with the reporter as it arrives.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from sparsemod.config import TrainConfig
from sparsemod.data import Splits
from sparsemod.errors import ConfigError
from sparsemod.evaluate import COMPLETED, FAILED, EvalSettings, TrialResult, WarmStart
from sparsemod.executors import Task, make_executor
from sparsemod.problems import Problem, get_problem
from sparsemod.search.ax_backend import AxBackend
from sparsemod.search.costs import Costs
from sparsemod.search.encoding import Encoder, key
from sparsemod.search.journal import Cancelled, Journal
from sparsemod.search.phases import COLD, WARM, Phase, Tools, plan
from sparsemod.search.reporter import ConsoleReporter, Reporter
from sparsemod.search.state import SearchState, Trial
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
    ) -> None:
        self.config = config
        self.store = store
        self.search_id = search_id
        self.problem = problem or get_problem(config.problem)
        self.reporter = reporter if reporter is not None else ConsoleReporter(out)
        self.objectives = list(config.objective_names)
        self.encoder = Encoder(self.problem.space)

    def run(self) -> SearchOutcome:
        """Run every phase, write the result files, return the outcome."""
        start = time.perf_counter()
        cfg = self.config
        self.data: Splits = self.problem.load(cfg.seed)
        if cfg.splitter and self.data.collate_fn is None:
            raise ConfigError(
                f"[TRAIN] splitter: true, but problem {self.problem.name!r} gives no "
                "collate_fn to batch its sequences with"
            )
        if cfg.deploy_check != "none":  # said before anything trains
            from sparsemod.deploy.base import missing_runtime

            missing = missing_runtime(cfg.deploy_check)
            if missing:
                raise ConfigError(f"[TRAIN] deploy_check: {missing}", key="deploy_check")
        shape = (tuple(self.data.input_shape), self.data.num_classes)
        self.settings = {
            "sobol": self._settings(cfg.epochs1),
            "gp": self._settings(cfg.epochs2),
            "morph": self._settings(cfg.epochs3),
        }
        self.costs = Costs(
            self.problem, shape, cfg.constraints, self.objectives, self.encoder, cfg.seed,
            cfg.debug,
        )  # fmt: skip
        if self.store is None:
            self.store = Store(default_url(cfg.root))
        self.journal = Journal(self.store, self.problem)
        # Workers start now (a spawned process imports torch and loads the data: seconds),
        # while this process computes the reference point and starts Ax.
        self.executor = self._make_executor()
        try:
            return self._start(start)
        finally:
            self.executor.stop()

    def _settings(self, epochs: int) -> EvalSettings:
        return replace(self.config.eval_settings(epochs), keep_trained=self.config.morphisms)

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

    def _reference_point(self) -> list[float]:
        if self.config.ref_point is not None:
            return [float(v) for v in self.config.ref_point]
        return self.costs.reference_point(self.settings["sobol"])

    def _start(self, start: float) -> SearchOutcome:
        resumed = self.search_id is not None
        ref_point = self.journal.open(
            self.config, self.objectives, self._reference_point, self.search_id,
            say=self.reporter.message,
        )  # fmt: skip
        self.search_id = self.journal.search_id
        self.state = SearchState(self.objectives, ref_point)
        self.journal.set_status("running")
        try:
            outcome = self._run(start, resumed)
        except Cancelled:
            self.journal.set_status("cancelled")
            raise
        except BaseException as exc:
            self.journal.set_status("failed", f"{type(exc).__name__}: {exc}")
            raise
        self.journal.set_status("done")
        return outcome

    def _run(self, start: float, resumed: bool) -> SearchOutcome:
        cfg, state = self.config, self.state
        # generator = pool: Ax draws Sobol arms only; ax: Ax's BoTorch step follows Sobol.
        ax_init = cfg.r1 * cfg.batch_size if cfg.generator == "ax" else None
        self.ax = AxBackend(self.problem.space, self.objectives, cfg.constraints, cfg.seed, ax_init)
        tools = Tools(cfg, self.problem.space, self.ax, self.costs, self.encoder, self.settings)
        rerun = []
        if resumed:
            rerun = self.journal.restore(state, self.ax)
            self.reporter.message(
                f"resuming search {self.search_id}: {len(state.trials) - len(rerun)} trials "
                f"done, {len(rerun)} to run again"
            )
        self.reporter.message(
            f"sparsemod: problem {self.problem.name}, objectives {', '.join(self.objectives)}, "
            f"rounds {cfg.r1}/{cfg.r2}/{cfg.r3} x {cfg.batch_size}, reference point "
            + ", ".join(f"{o}={v:.4g}" for o, v in zip(self.objectives, state.ref_point))
        )
        if rerun:
            self._evaluate(rerun, "resumed")
        for phase in plan(tools):
            self._run_phase(phase)
        return self._finish(time.perf_counter() - start)

    def _run_phase(self, phase: Phase) -> None:
        """The phase's rounds that are not in the store yet (a round is stored whole)."""
        n = self.config.batch_size
        first = math.ceil(self.state.in_phase(phase.name) / n)
        if first >= phase.rounds:
            return
        if phase.all_at_once:
            self._all_rounds(phase, first)
            return
        phase_hv: list[float] = []
        for r in range(first, phase.rounds):
            t0 = time.perf_counter()
            arms = phase.propose(self.state, n)
            t1 = time.perf_counter()
            if not arms:
                self._no_candidates(phase)
                break
            self.journal.store_round(arms, self.config.seed, self.state.sobol_drawn)
            self._evaluate(arms, f"{phase.name} {r + 1}/{phase.rounds}")
            phase_hv.append(self.state.hypervolume())
            self._round_done(phase, r, len(arms), t1 - t0, time.perf_counter() - t1, phase_hv[-1])
            if phase.stopper is not None and phase.stopper.stops(phase_hv):
                self.reporter.message(
                    f"[{phase.name}] stopper: {phase.stopper.reason()}; "
                    f"phase ends after round {r + 1}"
                )
                break

    def _all_rounds(self, phase: Phase, first: int) -> None:
        """Every round of the phase at once: its arms depend on no result.

        The executor gets all ``(rounds - first) x batch_size`` arms together, so a free
        worker starts the next arm instead of waiting for the slowest arm of its round. The
        arms and their order are the same as round by round (one Sobol sequence), and the
        per-round records (hypervolume after each round) are computed afterwards.
        """
        n = self.config.batch_size
        t0 = time.perf_counter()
        arms = phase.propose(self.state, n * (phase.rounds - first))
        t1 = time.perf_counter()
        if not arms:
            self._no_candidates(phase)
            return
        self.journal.store_round(arms, self.config.seed, self.state.sobol_drawn)
        groups = [arms[i : i + n] for i in range(0, len(arms), n)]
        labels = {
            t.index: f"{phase.name} {first + g + 1}/{phase.rounds}"
            for g, grp in enumerate(groups)
            for t in grp
        }
        self._evaluate(arms, labels)
        t2 = time.perf_counter()
        for g, grp in enumerate(groups):
            hv = self.state.hypervolume(upto=grp[-1].index)
            share = len(groups)
            self._round_done(phase, first + g, len(grp), (t1 - t0) / share, (t2 - t1) / share, hv)

    def _no_candidates(self, phase: Phase) -> None:
        self.reporter.message(
            f"[{phase.name}] no candidate left that meets the constraints; phase ends"
        )

    def _round_done(
        self, phase: Phase, r: int, arms: int, propose_s: float, evaluate_s: float, hv: float
    ) -> None:
        self.state.hv_history.append(hv)
        self.state.rounds.append(
            {
                "phase": phase.name,
                "round": r + 1,
                "arms": arms,
                "propose_seconds": propose_s,
                "evaluate_seconds": evaluate_s,
                "hypervolume": hv,
            }
        )

    def _evaluate(self, trials: Sequence[Trial], label: str | Mapping[int, str]) -> None:
        """Run arms on the executor; record each result as it finishes.

        ``label`` heads the progress lines: one for all, or one per trial index.
        """
        labels = label if isinstance(label, Mapping) else {t.index: label for t in trials}
        # A candidate the current front dominates will never be a Pareto member, and only
        # Pareto members keep their model: the evaluator skips serialising it.
        front = tuple(tuple((o, t.value(o)) for o in self.objectives) for t in self.state.pareto())
        pending: dict[int, Trial] = {}
        for trial in trials:
            settings = replace(self.settings[trial.phase], model_front=front)
            build_error = self.costs.build_errors.get(key(trial.params))
            if build_error is not None:
                failed = TrialResult(
                    FAILED, trial.params, settings.seed, failure_reason=f"BuildError: {build_error}"
                )
                self._record(trial, failed, labels[trial.index])
                continue
            pending[trial.index] = trial
            self.executor.submit(
                Task(
                    trial.index, self.config.problem, trial.params, settings,
                    self._warm_start(trial), threads=self.config.threads,
                )
            )  # fmt: skip
        try:
            while pending:
                for index, result in self.executor.poll():
                    measured = self.costs.check_measured(result)
                    self._record(pending.pop(index), measured, labels[index])
        except Cancelled:
            self.journal.close_cancelled(pending.values())
            raise

    def _warm_start(self, trial: Trial) -> WarmStart | None:
        if trial.morph and trial.morph.endswith(WARM) and trial.parent is not None:
            parent = self.state.trials[trial.parent]
            if parent.result is not None and parent.result.trained_state is not None:
                return WarmStart(parent.params, parent.result.trained_state)
        return None

    def _record(self, trial: Trial, result: TrialResult, label: str) -> None:
        trial.result = result
        self.journal.complete(trial, self.state)
        if result.status == COMPLETED:
            self.ax.complete(trial.ax_index, {o: trial.value(o) for o in self.objectives})
        else:
            self.ax.fail(trial.ax_index)
        self.reporter.trial(trial, label, self.state)
        if self.journal.cancelling():
            self.reporter.message(f"search {self.search_id} cancelled after trial {trial.index}")
            self.executor.stop()
            raise Cancelled(f"search {self.search_id} was cancelled")

    def _finish(self, wall: float) -> SearchOutcome:
        cfg, state = self.config, self.state
        directory = Path(cfg.root) / cfg.name
        pareto = state.pareto()
        summary = {
            "hypervolume_history": state.hv_history,
            "rejected_before_training": state.rejected,
            "generation_seconds": state.generation_seconds,
            "rounds": state.rounds,
        }
        self.journal.finish(
            state, self.data, directory, summary, wall, cfg.deploy_check, self.reporter.message
        )
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


def run_search(
    config: TrainConfig, problem: Problem | None = None, out: TextIO | None = None
) -> SearchOutcome:
    """Run a search to the end (see :class:`Search`)."""
    return Search(config, problem, out).run()
