"""A search others drive: :class:`Study` proposes arms (``ask``) and records results (``tell``).

A study is the engine ``python main.py`` runs (:class:`~sparsemod.search.loop.Search`
drives one with sparsemod's evaluator and executor), and the one a user drives with their
own training and their own measurements::

    study = Study(space, objectives=("error", "latency_s"), costs=my_costs, name="kws")
    while trials := study.ask(2):           # [] once every phase has spent its budget
        for trial in trials:
            study.tell(trial, {"error": train_and_score(trial.params)})

Phases run in order (Sobol, then the GP; then the morphisms for a study over a problem's
builder), each for its budget of rounds of ``batch_size`` arms. Every arm is written to the
store when it is asked for and every result when it is told, so a study killed at any
moment is loaded by name (:meth:`Study.load`) and goes on to its budget.

With ``costs`` (a function from parameters to exact costs), the GP models only the error
and candidates over a hard limit are never proposed: the pool acquisition of the search
(qLogEHVI over exactly costed candidates). Without it, nothing is known before training
and Ax's own model-based step proposes (one GP per objective, qLogNEHVI: the noisy
variant, because a told error is one noisy training run and the arms of a round are asked
before the earlier ones are told).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

from sparsemod.errors import ConfigError
from sparsemod.evaluate import COMPLETED, TrialResult
from sparsemod.search.ax_backend import AxBackend
from sparsemod.search.costs import Costs
from sparsemod.search.encoding import Encoder
from sparsemod.search.journal import Journal
from sparsemod.search.phases import Plan, Tools, plan
from sparsemod.search.reporter import Reporter, SilentReporter
from sparsemod.search.rounds import Run, Schedule
from sparsemod.search.state import SearchState, Trial
from sparsemod.search.told import STUDY, open_store, same_study, study_plan, told_result
from sparsemod.settings import SPECS
from sparsemod.space import SearchSpace
from sparsemod.store import Store

__all__ = ["Study"]


class Study:
    """An ask/tell multi-objective search over ``space``.

    Args:
        space: the search space.
        objectives: objective names, all minimised: ``error`` first, then costs
            (``model_size_bytes``, ``working_memory_bytes``, ``latency_s``).
        costs: ``params -> {cost: value}``, exact costs known before training; ``None``:
            they are told with the error.
        store: a store URL (``sqlite:///path.db``) or :class:`Store`; in memory by default.
        name: the study's name, by which :meth:`load` finds it.
        seed: seeds Sobol, the GP and the pool.
        phases: budgets in trials, ``{"sobol": 8, "gp": 24}``.
        batch_size: arms per round (chosen jointly by the GP); the stopper and the
            hypervolume history count rounds. 1 by default: ask/tell users mostly
            evaluate one network at a time (``[TRAIN] batch_size`` is 2).
        constraints: hard limits by cost name; arms over one are never proposed when
            ``costs`` is given, and a told trial over one fails.
        ref_point: the hypervolume reference point; by default error 1 and each cost its
            limit, else 1.1 x its largest value over 64 quasi-random points.
        generator, num_candidates, cost_scale, tolerance, patience: as the ``[TRAIN]``
            keys of the same names (README); ``generator`` is ``pool`` with ``costs``,
            and must be ``ax`` without.
        reporter: hears each event and each told trial (silent by default).
        load_if_exists: a study of this name in the store is loaded (as :meth:`load`),
            provided it was created with the same arguments; without, its name is refused.
    """

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[str] = ("error", "model_size_bytes"),
        costs: Callable[[Mapping[str, Any]], Mapping[str, float]] | None = None,
        *,
        store: str | Store = "sqlite://",
        name: str = "study",
        seed: int = SPECS["seed"].default,
        phases: Mapping[str, int] | None = None,
        batch_size: int = 1,
        constraints: Mapping[str, float] | None = None,
        ref_point: Sequence[float] | None = None,
        generator: str | None = None,
        num_candidates: int = SPECS["num_candidates"].default,
        cost_scale: str = SPECS["cost_scale"].default,
        tolerance: float = SPECS["tolerance"].default,
        patience: int = SPECS["patience"].default,
        reporter: Reporter | None = None,
        load_if_exists: bool = False,
    ) -> None:
        objectives, the_plan, limits = study_plan(
            objectives, costs is not None, phases, constraints, seed=seed,
            batch_size=batch_size, generator=generator, num_candidates=num_candidates,
            cost_scale=cost_scale, tolerance=tolerance, patience=patience,
        )  # fmt: skip
        stored = {
            "space": space.to_dict(), "plan": asdict(the_plan), "constraints": limits,
            "exact_costs": costs is not None,
        }  # fmt: skip
        if ref_point is not None:
            stored["ref_point"] = [float(v) for v in ref_point]
        store = open_store(store)
        found = store.find_search(name)
        if found is not None:
            same_study(found, stored, objectives, load_if_exists, store.url)
            stored = found.config
        self._setup(space, objectives, costs, the_plan, limits, store, reporter)
        search_id = None if found is None else found.id
        self._open(name, stored, search_id, lambda: self._reference(ref_point))

    @classmethod
    def load(
        cls,
        name: str,
        store: str | Store,
        costs: Callable[[Mapping[str, Any]], Mapping[str, float]] | None = None,
        *,
        reporter: Reporter | None = None,
    ) -> Study:
        """The study named ``name`` in ``store``, as it was left: every told trial, and
        the asked ones never told in :meth:`pending`. Give the same ``costs`` again.

        Raises:
            ConfigError: there is no study of that name, it is a search of a problem (run
                ``python main.py`` to resume it), or ``costs`` is given for a study
                created without (or the reverse).
        """
        store = open_store(store)
        found = store.find_search(name)
        if found is None:
            raise ConfigError(f"no study named {name!r} in {store.url}")
        if found.problem != STUDY:
            raise ConfigError(
                f"{name!r} is a search of problem {found.problem!r}, not a study: resume it "
                "with python main.py"
            )
        cfg = found.config
        the_plan = Plan(**cfg["plan"])
        if (costs is not None) != cfg.get("exact_costs"):
            raise ConfigError(
                f"study {name!r} was created {'with' if costs is None else 'without'} a cost "
                "function; load it the same way"
            )
        self = cls.__new__(cls)
        space = SearchSpace.from_dict(cfg["space"])
        self._setup(space, found.objectives, costs, the_plan, cfg["constraints"], store, reporter)
        self._open(name, cfg, found.id, lambda: self._reference(cfg.get("ref_point")))
        return self

    def _setup(
        self,
        space: SearchSpace,
        objectives: Sequence[str],
        costs: Any,
        the_plan: Plan,
        limits: Mapping[str, float],
        store: Store,
        reporter: Reporter | None,
        *,
        problem: str = STUDY,
        morphs: bool = False,
    ) -> None:
        self.space, self.objectives, self.plan = space, list(objectives), the_plan
        self.store = store
        self.reporter = reporter if reporter is not None else SilentReporter()
        self.encoder = Encoder(space)
        self.costs = costs if isinstance(costs, Costs) else Costs(
            costs, limits, self.objectives, self.encoder, the_plan.seed
        )  # fmt: skip
        self.journal = Journal(store, problem, heartbeat=problem != STUDY)
        self._morphs = morphs

    def _reference(self, given: Sequence[float] | None) -> list[float]:
        return [float(v) for v in given] if given is not None else self.costs.reference_point()

    def _open(
        self,
        name: str,
        config: Mapping[str, Any],
        search_id: int | None,
        reference: Callable[[], list[float]],
        changes: Any = None,
    ) -> None:
        """Start Ax (a space it refuses writes nothing), then open the study in the store."""
        p = self.plan
        ax_init = p.sobol * p.batch_size if p.generator == "ax" else None
        limits = {k: v for k, v in self.costs.constraints.items() if k in self.objectives}
        self.ax = AxBackend(self.space, self.objectives, limits, p.seed, ax_init)
        ref_point = self.journal.open(
            name, config, self.objectives, reference, search_id, self.reporter.message, changes
        )
        self.search_id = self.journal.search_id
        self.state = SearchState(self.objectives, ref_point, identify=self.costs.identity)
        try:
            self._start(search_id is not None)
        except BaseException as exc:
            self.journal.set_status("failed", f"{type(exc).__name__}: {exc}")
            raise

    def _start(self, resumed: bool) -> None:
        p = self.plan
        tools = Tools(p, self.space, self.ax, self.costs, self.encoder, self._morphs)
        self.schedule = Schedule(plan(tools), p.batch_size, self.reporter.message)
        self._queue: list[dict[str, Any]] = []
        self._pending: list[Trial] = []
        self.journal.set_status("running")
        if resumed:
            self._pending = self.journal.restore(self.state, self.ax)
            self.schedule.rebuild(self.state)

    # -- asking -----------------------------------------------------------------------

    def enqueue(self, params: Mapping[str, Any]) -> None:
        """Propose ``params`` before anything else (a known-good network): the next
        :meth:`ask` returns it, in the current phase. Checked against the space now.

        Raises:
            ConfigError: ``params`` are not a point of the space, do not build, or break a
                hard limit.
        """
        params = self.space.validate(params)
        self.costs.admit(params, "enqueue")
        self._queue.append(params)

    def ask(self, n: int = 1) -> list[Trial]:
        """Up to ``n`` new trials of the current phase (fewer at a phase's end; ``[]``
        when every phase has spent its budget). Each is stored before it is returned;
        ``trial.predicted`` holds its exact costs when the study has a cost function."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"ask: n must be a number of trials >= 1, got {n!r}")
        return self._next(lambda run, free: n)

    def ask_round(self) -> list[Trial]:
        """The next round: ``batch_size`` arms, or every remaining round of a phase whose
        arms depend on no result (Sobol), so that free workers never wait."""
        return self._next(lambda run, free: free if run.phase.all_at_once else self.plan.batch_size)

    def _next(self, wanted: Callable[[Run, int], int]) -> list[Trial]:
        for run in self.schedule.runs:
            if run.finished:
                continue
            while (free := self.schedule.free(run)) > 0:
                arms = self._ask(run, min(wanted(run, free), free))
                if arms is None:
                    break
                if arms:
                    return arms
                # every arm of the round was a duplicate, which took its result: ask again
            self.schedule.end(run, self.state)
        if not self._pending and self.journal.problem == STUDY:
            # every phase has spent its budget (a search is done once its files are written)
            self.journal.set_status("done")
        return []

    def _ask(self, run: Run, k: int) -> list[Trial] | None:
        """The arms of the round that need an evaluation (``None``: the phase has none)."""
        t0 = time.perf_counter()
        arms = self._from_queue(run, k)
        if len(arms) < k:
            arms += run.phase.propose(self.state, k - len(arms))
        t1 = time.perf_counter()
        if not arms:
            self.reporter.message(
                f"[{run.phase.name}] no candidate left that meets the constraints; phase ends"
            )
            return None
        self.journal.store_round(arms, self.plan.seed, self.state.sobol_drawn)
        self.schedule.place(run, arms, k, t0, t1)
        self._pending += arms
        for arm in arms:
            if arm.duplicate_of is not None:  # the network's result is known: no training
                done = self.state.trials[arm.duplicate_of].result
                self.record(arm, replace(done, model=None, trained_state=None))
        return [arm for arm in arms if arm.duplicate_of is None]

    def _from_queue(self, run: Run, k: int) -> list[Trial]:
        """Enqueued arms; one of a network trained before is a duplicate that takes the
        earlier result, one of a network still training waits in the queue for it."""
        arms, waiting = [], []
        while self._queue and len(arms) < k:
            params = self._queue.pop(0)
            earlier = self.state.trained(params)
            if earlier is not None and earlier.result is None:
                waiting.append(params)
                continue
            costs = self.costs.predict(params)
            arms.append(self.state.new_trial(params, run.phase.name, costs or {}))
            arms[-1].ax_index = self.ax.attach(params)
            if earlier is not None:
                arms[-1].duplicate_of = earlier.index
        self._queue[:0] = waiting
        return arms

    # -- telling ----------------------------------------------------------------------

    def tell(
        self,
        trial: Trial | int,
        values: Mapping[str, float] | None = None,
        *,
        failed: str | None = None,
    ) -> Trial:
        """Complete an asked trial with its objectives, or fail it with a reason.

        ``values`` holds the error and any cost the study cannot know (all of them without
        a cost function); a told cost replaces the predicted one (a measurement on the
        board). Other metrics of the vocabulary (``accuracy_val``, ``flops``, ...) are
        stored too. A trial whose costs break a hard limit fails.

        Raises:
            ConfigError: an unknown trial, one told before, both or neither of ``values``
                and ``failed``, a missing objective, an unknown name or a value that is not a
                finite number. Nothing is written then.
        """
        t = self._asked(trial)
        result = told_result(t, values, failed, self.objectives, self.plan.seed)
        self.record(t, result)
        return t

    def _asked(self, trial: Trial | int) -> Trial:
        index = trial.index if isinstance(trial, Trial) else trial
        if (
            isinstance(index, bool)
            or not isinstance(index, int)
            or not 0 <= index < len(self.state.trials)
        ):
            raise ConfigError(
                f"tell: no trial {index!r} in study {self.search_id} "
                f"(its trials are 0..{len(self.state.trials) - 1})"
            )
        t = self.state.trials[index]
        if isinstance(trial, Trial) and trial is not t:
            raise ConfigError(f"tell: trial {index} was asked of another study")
        if t.result is not None:
            raise ConfigError(f"tell: trial {index} was told before ({t.result.status})")
        return t

    def record(self, trial: Trial, result: TrialResult, label: str | None = None) -> None:
        """Record a whole evaluation (:func:`sparsemod.evaluate.evaluate` gives one):
        state, Ax, store, reporter, and the rounds it closes. A trained network whose
        measured costs break a hard limit cannot ship: it keeps its numbers and fails."""
        result = self.costs.check_measured(result)
        trial.result = result
        self.journal.complete(trial, self.state)
        if result.status == COMPLETED:
            self.ax.complete(trial.ax_index, {o: trial.value(o) for o in self.objectives})
        else:
            self.ax.fail(trial.ax_index)
        self._pending = [p for p in self._pending if p is not trial]
        self.reporter.trial(trial, label or self.schedule.label(trial), self.state)
        self.schedule.close(self.state)

    # -- results ----------------------------------------------------------------------

    def pending(self) -> list[Trial]:
        """The trials asked for and not told yet (after :meth:`load`: those that were
        running when the study stopped); tell them, or they stay running."""
        return list(self._pending)

    @property
    def trials(self) -> list[Trial]:
        """Every trial, in the order asked."""
        return list(self.state.trials)

    def pareto(self) -> list[Trial]:
        """The completed trials no other completed trial dominates."""
        return self.state.pareto()

    def hypervolume(self) -> float:
        """The hypervolume of the completed trials, normalised by the reference point."""
        return self.state.hypervolume()

    @property
    def ref_point(self) -> list[float]:
        return list(self.state.ref_point)

    def trials_frame(self) -> Any:
        """A pandas DataFrame, one row per trial: index, phase, status, the parameters,
        ``duplicate_of``, the objectives, ``predicted_<cost>`` and whether it is on the front."""
        import pandas as pd

        front = {t.index for t in self.pareto()}
        rows = []
        for t in self.state.trials:
            row: dict[str, Any] = {"index": t.index, "phase": t.phase, "status": t.status}
            row.update(t.params, duplicate_of=t.duplicate_of)
            row.update({o: t.value(o) for o in self.objectives})
            row.update({f"predicted_{k}": v for k, v in t.predicted.items()})
            row["pareto"] = t.index in front
            row["failure_reason"] = t.result.failure_reason if t.result is not None else None
            rows.append(row)
        return pd.DataFrame(rows)
