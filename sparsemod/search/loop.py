"""The three-phase search: Sobol, then GP rounds, then morphism rounds.

The loop knows the phases, the budget, the constraints and the stopper. It asks the Ax
backend for Sobol arms (and, with ``generator = ax``, for GP arms), asks
:mod:`sparsemod.search.acquisition` to pick arms from a candidate set whose costs are
exact, evaluates each arm with :func:`sparsemod.evaluate.evaluate`, and writes the results.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from sparsemod.config import TrainConfig, resume_changes
from sparsemod.data import Splits
from sparsemod.errors import BuildError, ConfigError, SparsemodError
from sparsemod.evaluate import (
    COMPLETED,
    FAILED,
    EvalSettings,
    TrialResult,
    WarmStart,
    predict_costs,
)
from sparsemod.executors import Task, make_executor
from sparsemod.morph import morphs
from sparsemod.problems import Problem, get_problem
from sparsemod.results.pareto import hypervolume, pareto_mask
from sparsemod.search import record
from sparsemod.search.acquisition import select
from sparsemod.search.ax_backend import AxBackend
from sparsemod.search.encoding import Encoder, key
from sparsemod.store import NewTrial, Store, default_url

# How a morph child's description says whether it starts from its parent's weights.
WARM = " (warm start)"
COLD = " (cold start: the parent's trained weights were lost on resume)"


class Cancelled(SparsemodError):
    """The search was asked to stop (its status set to ``cancelling``); it stops between trials."""


@dataclass
class Trial:
    """One arm of the search and, once evaluated, its result."""

    index: int
    phase: str
    params: dict[str, Any]
    predicted: dict[str, float]
    parent: int | None = None
    morph: str | None = None
    result: TrialResult | None = None
    ax_index: int | None = None
    id: int | None = None  # the store's trial id

    @property
    def status(self) -> str:
        return "running" if self.result is None else self.result.status

    def value(self, name: str) -> float:
        v = getattr(self.result, name, None) if self.result is not None else None
        return float("nan") if v is None else float(v)


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
        out: where progress lines go (one per trial).
    """

    def __init__(
        self,
        config: TrainConfig,
        problem: Problem | None = None,
        out: TextIO | None = None,
        *,
        store: Store | None = None,
        search_id: int | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.search_id = search_id  # given: resume that search from the store
        self.problem = problem or get_problem(config.problem)
        self.out = out if out is not None else sys.stdout
        self.objectives = list(config.objective_names)
        self.costs = [o for o in self.objectives if o != "error"]
        self.encoder = Encoder(self.problem.space)
        self.trials: list[Trial] = []
        self._seen: set[tuple] = set()
        self._predicted: dict[tuple, dict[str, float] | None] = {}
        self._build_errors: dict[tuple, str] = {}
        self.rejected = 0
        self.generation_seconds = 0.0
        self.hv_history: list[float] = []
        self.rounds: list[dict[str, Any]] = []
        self.sobol_drawn = 0
        self._with_model: set[int] = set()

    # ------------------------------------------------------------------ the loop

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
        self.shape = (tuple(self.data.input_shape), self.data.num_classes)
        self.settings = {
            "sobol": self._settings(cfg.epochs1),
            "gp": self._settings(cfg.epochs2),
            "morph": self._settings(cfg.epochs3),
        }
        if self.store is None:
            self.store = Store(default_url(cfg.root))
        # Workers start now (a spawned process imports torch and loads the data: seconds),
        # while this process computes the reference point and starts Ax.
        self.executor = self._make_executor()
        try:
            return self._start(start)
        finally:
            self.executor.stop()

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

    def _start(self, start: float) -> SearchOutcome:
        cfg = self.config
        resumed = self.search_id is not None
        if resumed:
            found = self.store.get_search(self.search_id)
            # Refuses (before anything is written) a config that changes what was measured.
            changes = resume_changes(found.config, cfg)
            if changes:
                self._say(
                    f"resuming search {self.search_id} with "
                    + ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changes.items())
                )
                self.store.set_search_config(self.search_id, _config_dict(cfg))
            if found.ref_point is None:  # queued through the service: nothing ran yet
                self.store.set_reference_point(self.search_id, self._reference_point())
                found = self.store.get_search(self.search_id)
            self.ref_point = list(found.ref_point)
        else:
            self.ref_point = self._reference_point()
            self.search_id = self.store.create_search(
                cfg.name, self.problem.name, _config_dict(cfg), self.objectives, self.ref_point
            )
        if self.store.get_search(self.search_id).status in ("cancelling", "cancelled"):
            # cancelled between a worker's claim and this start: do not run it
            self.store.set_search_status(self.search_id, "cancelled")
            raise Cancelled(f"search {self.search_id} was cancelled before it started")
        self.store.set_search_status(self.search_id, "running")
        try:
            outcome = self._run(start, resumed)
        except Cancelled:
            self.store.set_search_status(self.search_id, "cancelled")
            raise
        except BaseException as exc:
            self.store.set_search_status(self.search_id, "failed", f"{type(exc).__name__}: {exc}")
            raise
        self.store.set_search_status(self.search_id, "done")
        return outcome

    def _run(self, start: float, resumed: bool) -> SearchOutcome:
        cfg = self.config
        budget_sobol = cfg.r1 * cfg.batch_size
        ax_init = budget_sobol if cfg.generator == "ax" else budget_sobol + 10_000
        self.ax = AxBackend(self.problem.space, self.objectives, cfg.constraints, cfg.seed, ax_init)
        rerun = self._restore() if resumed else []
        return self._phases(start, rerun)

    def _phases(self, start: float, rerun: list[Trial]) -> SearchOutcome:
        cfg = self.config
        self._say(
            f"sparsemod: problem {self.problem.name}, objectives {', '.join(self.objectives)}, "
            f"rounds {cfg.r1}/{cfg.r2}/{cfg.r3} x {cfg.batch_size}, reference point "
            + ", ".join(f"{o}={v:.4g}" for o, v in zip(self.objectives, self.ref_point))
        )
        plans: list[tuple[str, int, Callable[[int], list[Trial]]]] = [
            ("sobol", cfg.r1, self._sobol_round),
            ("gp", cfg.r2, self._gp_round),
            ("morph", cfg.r3 if cfg.morphisms else 0, self._morph_round),
        ]
        if rerun:
            self._evaluate_batch(rerun, "resumed")
        for phase, rounds, propose in plans:
            phase_hv: list[float] = []
            # A resumed search goes on after the rounds it has (a round's arms are stored
            # together, so a round is either in the store whole or not at all).
            first = math.ceil(sum(t.phase == phase for t in self.trials) / cfg.batch_size)
            if phase == "sobol":
                self._sobol_phase(first, rounds)
                continue
            for r in range(first, rounds):
                t0 = time.perf_counter()
                arms = propose(cfg.batch_size)
                t1 = time.perf_counter()
                if not arms:
                    self._say(f"[{phase}] no candidate left that meets the constraints; phase ends")
                    break
                self._store_round(arms)
                self._evaluate_batch(arms, f"{phase} {r + 1}/{rounds}")
                phase_hv.append(self.hypervolume())
                self.hv_history.append(phase_hv[-1])
                self.rounds.append(
                    {
                        "phase": phase,
                        "round": r + 1,
                        "arms": len(arms),
                        "propose_seconds": t1 - t0,
                        "evaluate_seconds": time.perf_counter() - t1,
                        "hypervolume": phase_hv[-1],
                    }
                )
                if self._stop(phase_hv):
                    self._say(
                        f"[{phase}] stopper: hypervolume gained less than {cfg.tolerance} over "
                        f"{cfg.patience} rounds; phase ends after round {r + 1}"
                    )
                    break
        wall = time.perf_counter() - start
        return self._finish(wall)

    def _sobol_phase(self, first: int, rounds: int) -> None:
        """Every Sobol round at once: its arms do not depend on any result.

        The executor gets all ``(rounds - first) x batch_size`` arms together, so a free
        worker starts the next arm instead of waiting for the slowest arm of its round. The
        arms and their order are the same as round by round (one Sobol sequence), and the
        per-round records (hypervolume after each round, for the summary) are computed from
        the results afterwards. The stopper does not cut the Sobol phase: it is the fixed
        exploration budget ``r1``.
        """
        cfg = self.config
        if first >= rounds:
            return
        t0 = time.perf_counter()
        arms = self._sobol_round(cfg.batch_size * (rounds - first))
        t1 = time.perf_counter()
        if not arms:
            self._say("[sobol] no candidate left that meets the constraints; phase ends")
            return
        self._store_round(arms)
        groups = [arms[i : i + cfg.batch_size] for i in range(0, len(arms), cfg.batch_size)]
        labels = {
            t.index: f"sobol {first + g + 1}/{rounds}" for g, grp in enumerate(groups) for t in grp
        }
        self._evaluate_batch(arms, labels)
        t2 = time.perf_counter()
        for g, grp in enumerate(groups):
            last = grp[-1].index
            done = [t for t in self._completed() if t.index <= last]
            hv = hypervolume(self._values(done), self.ref_point) if done else 0.0
            self.hv_history.append(hv)
            self.rounds.append(
                {
                    "phase": "sobol",
                    "round": first + g + 1,
                    "arms": len(grp),
                    "propose_seconds": (t1 - t0) / len(groups),
                    "evaluate_seconds": (t2 - t1) / len(groups),
                    "hypervolume": hv,
                }
            )

    def _settings(self, epochs: int) -> EvalSettings:
        return replace(self.config.eval_settings(epochs), keep_trained=self.config.morphisms)

    # ------------------------------------------------------------------ proposals

    def _sobol_round(self, n: int) -> list[Trial]:
        return self._from_ax("sobol", n)

    def _from_ax(self, phase: str, n: int) -> list[Trial]:
        arms: list[Trial] = []
        tries = 0
        while len(arms) < n and tries < 50 * n:
            t0 = time.perf_counter()
            got = self.ax.generate(n - len(arms))
            self.generation_seconds += time.perf_counter() - t0
            if not got:
                break
            self.sobol_drawn += len(got)  # stored with the round (see _store_round)
            for ax_index, params in got:
                tries += 1
                trial = self._admit(params, phase)
                if trial is None:
                    self.ax.abandon(ax_index)
                    continue
                trial.ax_index = ax_index
                arms.append(trial)
        return arms

    def _gp_round(self, n: int) -> list[Trial]:
        done = self._completed()
        if self.config.generator == "ax":
            return self._from_ax("gp", n)
        if len(done) < 2:
            return self._from_ax("gp", n)  # nothing to fit yet: Sobol arms
        t0 = time.perf_counter()
        if not hasattr(self, "_pool"):
            self._pool = self.encoder.sample(self.config.num_candidates, self.config.seed + 1)
            self._pool_costed: list[dict[str, Any]] = []
        # Costing a candidate takes ~20 ms (build, prune, trace); costing the whole pool at
        # once stalled the first GP round for 40 s. Each round costs the next chunk, so the
        # pool the acquisition sees grows round by round.
        chunk = max(32, math.ceil(self.config.num_candidates / max(self.config.r2, 1)))
        fresh, self._pool = self._pool[:chunk], self._pool[chunk:]
        self._pool_costed += self._feasible(fresh, self.settings["gp"])
        neighbours = [
            m.params for t in self._pareto_trials() for m in morphs(self.problem.space, t.params)
        ]
        candidates = self._feasible(self._pool_costed + neighbours, self.settings["gp"])
        chosen = self._choose(candidates, n)
        self.generation_seconds += time.perf_counter() - t0
        return [self._attach(params, "gp") for params in chosen]

    def _morph_round(self, n: int) -> list[Trial]:
        t0 = time.perf_counter()
        children: list[dict[str, Any]] = []
        origin: dict[tuple, tuple[int, str, bool]] = {}
        for parent in self._pareto_trials():
            for m in morphs(self.problem.space, parent.params):
                k = key(m.params)
                if k not in origin:
                    origin[k] = (parent.index, m.description, m.preserves_function)
                    children.append(dict(m.params))
        candidates = self._feasible(children, self.settings["morph"])
        chosen = self._choose(candidates, n)
        self.generation_seconds += time.perf_counter() - t0
        arms = []
        for params in chosen:
            parent, description, preserves = origin[key(params)]
            trial = self._attach(params, "morph", parent=parent, morph=description)
            trial.morph = description + (WARM if preserves else "")
            arms.append(trial)
        return arms

    def _choose(self, candidates: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
        """The ``n`` candidates with the best joint expected hypervolume improvement."""
        if not candidates:
            return []
        done = self._completed()
        ref = self.ref_point
        train_x = self.encoder.encode_many([t.params for t in done])
        train_err = torch.tensor([t.value("error") for t in done], dtype=torch.float64)
        scale = self._cost_scale()
        train_c = torch.tensor(
            [[scale(c, t.value(c)) for c in self.costs] for t in done],
            dtype=torch.float64,
        ).reshape(len(done), len(self.costs))
        cand_x = self.encoder.encode_many(candidates)
        cand_c = torch.tensor(
            [[scale(c, self._predicted[key(p)][c]) for c in self.costs] for p in candidates],
            dtype=torch.float64,
        ).reshape(len(candidates), len(self.costs))
        idx = select(
            train_x,
            train_err,
            train_c,
            cand_x,
            cand_c,
            ref[:1],
            n,
            seed=self.config.seed + len(self.trials),
        )
        return [candidates[i] for i in idx]

    def _cost_scale(self) -> Callable[[str, float], float]:
        """Each cost mapped so that its reference value is 1, as the acquisition sees it.

        ``linear``: cost / reference. ``log``: log(cost / floor) / log(reference / floor),
        floor = half the smallest value over the 64 Sobol points of the reference point
        (fixed for the search, the same after a resume); below the floor counts as 0.
        """
        refs = dict(zip(self.costs, self.ref_point[1:]))
        if self.config.cost_scale == "linear":
            return lambda name, value: value / refs[name]
        if not hasattr(self, "_floors"):
            sample = [
                self._predict(p, self.settings["sobol"])
                for p in self.encoder.sample(64, self.config.seed + 7)
            ]
            found = [s for s in sample if s is not None]
            self._floors = {
                c: 0.5 * max(min(s[c] for s in found), 1e-12) if found else refs[c] * 1e-3
                for c in self.costs
            }
        floors = self._floors

        def log_scale(name: str, value: float) -> float:
            lo = min(floors[name], 0.5 * refs[name])
            return max(0.0, math.log(max(value, 1e-300) / lo) / math.log(refs[name] / lo))

        return log_scale

    # ------------------------------------------------------------------ feasibility

    def _predict(self, params: Mapping[str, Any], settings: EvalSettings) -> dict | None:
        k = key(params)
        if k not in self._predicted:
            try:
                with _one_thread():
                    self._predicted[k] = predict_costs(self.problem, params, settings, *self.shape)
            except BuildError as exc:
                self._predicted[k] = None
                self._build_errors[k] = str(exc)
                if self.config.debug:  # as the evaluator does for a failed candidate
                    self._build_errors[k] += "\n" + "".join(traceback.format_exception(exc))
        return self._predicted[k]

    def _violates(self, costs: Mapping[str, float]) -> bool:
        return any(costs[name] > limit for name, limit in self.config.constraints.items())

    def _feasible(
        self, candidates: Sequence[Mapping[str, Any]], settings: EvalSettings
    ) -> list[dict[str, Any]]:
        out, keys = [], set()
        for params in candidates:
            k = key(params)
            if k in self._seen or k in keys:
                continue
            costs = self._predict(params, settings)
            if costs is None or self._violates(costs):
                continue
            keys.add(k)
            out.append(dict(params))
        return out

    def _admit(self, params: dict[str, Any], phase: str) -> Trial | None:
        """A trial for an arm from Ax, or None when it breaks a hard constraint."""
        params = self.problem.space.validate(params)
        costs = self._predict(params, self.settings[phase])
        if costs is not None and self._violates(costs):
            self.rejected += 1
            return None
        return self._new_trial(params, phase, costs or {})

    def _attach(
        self,
        params: dict[str, Any],
        phase: str,
        parent: int | None = None,
        morph: str | None = None,
    ) -> Trial:
        trial = self._new_trial(
            params, phase, self._predicted.get(key(params)) or {}, parent=parent, morph=morph
        )
        trial.ax_index = self.ax.attach(params)
        return trial

    def _new_trial(
        self,
        params: dict[str, Any],
        phase: str,
        costs: dict[str, float],
        parent: int | None = None,
        morph: str | None = None,
    ) -> Trial:
        # Stored with the rest of its round by _store_round.
        trial = Trial(len(self.trials), phase, dict(params), costs, parent, morph)
        self.trials.append(trial)
        self._seen.add(key(params))
        return trial

    def _store_round(self, arms: Sequence[Trial]) -> None:
        """Write a round's arms in one transaction, with the Sobol points drawn so far.

        A process killed while a round is written leaves none of it in the store, so a
        resume proposes the whole round again (it counts rounds by the arms stored).
        """
        seed = self.config.seed
        rows = [
            NewTrial(t.index, t.phase, t.params, t.parent, t.morph, seed, t.predicted) for t in arms
        ]
        ids = self.store.add_trials(self.search_id, rows, sobol_drawn=self.sobol_drawn)
        for trial, trial_id in zip(arms, ids):
            trial.id = trial_id

    # ------------------------------------------------------------------ evaluation

    def _evaluate_batch(self, trials: Sequence[Trial], label: str | Mapping[int, str]) -> None:
        """Run arms on the executor; record each result as it finishes.

        ``label`` heads the progress lines: one for all, or one per trial index.
        """
        labels = label if isinstance(label, Mapping) else {t.index: label for t in trials}
        # A candidate the current front dominates will never be a Pareto member, and only
        # Pareto members keep their model: the evaluator skips serialising it.
        front = tuple(
            tuple((o, t.value(o)) for o in self.objectives) for t in self._pareto_trials()
        )
        pending: dict[int, Trial] = {}
        for trial in trials:
            label = labels[trial.index]
            settings = replace(self.settings[trial.phase], model_front=front)
            build_error = self._build_errors.get(key(trial.params))
            if build_error is not None:
                failed = TrialResult(
                    FAILED, trial.params, settings.seed, failure_reason=f"BuildError: {build_error}"
                )
                self._record(trial, failed, label)
                continue
            pending[trial.index] = trial
            self.executor.submit(
                Task(
                    trial.index,
                    self.config.problem,
                    trial.params,
                    settings,
                    self._warm_start(trial),
                    threads=self.config.threads,
                )
            )
        try:
            while pending:
                for index, result in self.executor.poll():
                    self._record(pending.pop(index), self._check_measured(result), labels[index])
        except Cancelled:
            # The arms that never ran (or were cut off) are closed, not left "running".
            for trial in pending.values():
                self.store.complete_trial(
                    trial.id, FAILED, {}, failure_reason="cancelled: the search was cancelled"
                )
            raise

    def _warm_start(self, trial: Trial) -> WarmStart | None:
        if trial.morph and trial.morph.endswith(WARM) and trial.parent is not None:
            parent = self.trials[trial.parent].result
            if parent is not None and parent.trained_state is not None:
                return WarmStart(self.trials[trial.parent].params, parent.trained_state)
        return None

    def _record(self, trial: Trial, result: TrialResult, label: str) -> None:
        trial.result = result
        self._persist(trial)
        if result.status == COMPLETED:
            self.ax.complete(trial.ax_index, {o: trial.value(o) for o in self.objectives})
        else:
            self.ax.fail(trial.ax_index)
        self.store.heartbeat(self.search_id)
        self._progress(trial, label)
        if self.store.get_search(self.search_id).status == "cancelling":
            self._say(f"search {self.search_id} cancelled after trial {trial.index}")
            self.executor.stop()
            raise Cancelled(f"search {self.search_id} was cancelled")

    def _persist(self, trial: Trial) -> None:
        """Complete the trial in the store: one transaction, model swap included."""
        result = trial.result
        front = {t.index for t in self._pareto_trials()}
        model = None
        if trial.index in front and result.model is not None:
            model = record.model_payload(result.model, self.problem.name)
        leaving = self._with_model - front
        self.store.complete_trial(
            trial.id,
            result.status,
            record.metrics_of(result),
            failure_reason=result.failure_reason,
            history=list(result.history),
            model=model,
            drop_models=[self.trials[i].id for i in sorted(leaving)],
        )
        self._with_model = (self._with_model - leaving) | ({trial.index} if model else set())
        # The store holds the model now; keeping every one in memory would fill it.
        trial.result = replace(result, model=None)

    def _restore(self) -> list[Trial]:
        """Rebuild the trials and the Ax experiment from the store; returns those to re-run.

        Trials that were running when the process died are run again. Ax's Sobol sequence
        is fast-forwarded past the arms drawn before, so it goes on where it was.
        """
        rec = self.store.get_search(self.search_id)
        with_model = set(self.store.model_trial_ids(self.search_id))
        rerun = []
        for tr in self.store.list_trials(self.search_id):
            trial = Trial(
                tr.index,
                tr.phase,
                dict(tr.params),
                dict(tr.predicted),
                tr.parent_index,
                tr.morph,
                id=tr.id,
            )
            self.trials.append(trial)
            self._seen.add(key(trial.params))
            trial.ax_index = self.ax.attach(trial.params)
            if tr.status == "running":
                rerun.append(trial)
                if trial.morph and trial.morph.endswith(WARM):
                    # The parent's trained weights lived in the process that died (the store
                    # keeps only the int8 model): the child trains from scratch, and says so.
                    trial.morph = trial.morph.removesuffix(WARM) + COLD
                    self.store.set_trial_morph(trial.id, trial.morph)
                continue
            trial.result = record.result_of(tr)
            if tr.status == COMPLETED:
                self.ax.complete(trial.ax_index, {o: trial.value(o) for o in self.objectives})
            else:
                self.ax.fail(trial.ax_index)
            if tr.id in with_model:
                self._with_model.add(tr.index)
        for ax_index, _ in self.ax.generate(rec.sobol_drawn):
            self.ax.abandon(ax_index)
        self.sobol_drawn = rec.sobol_drawn
        self._say(
            f"resuming search {self.search_id}: {len(self.trials) - len(rerun)} trials done, "
            f"{len(rerun)} to run again"
        )
        return rerun

    def _check_measured(self, result: TrialResult) -> TrialResult:
        """A trained network whose measured costs break a hard limit cannot ship.

        The model size predicted before training can differ from the measured one by how
        pruning spread the kept weights over the layers; such a trial keeps its numbers
        but fails, and stays off the Pareto set.
        """
        if result.status != COMPLETED:
            return result
        over = [
            f"measured {name} {getattr(result, name):.6g} > limit {limit:.6g}"
            for name, limit in self.config.constraints.items()
            if getattr(result, name) > limit
        ]
        if not over:
            return result
        return replace(
            result, status=FAILED, model=None, failure_reason="constraint: " + "; ".join(over)
        )

    # ------------------------------------------------------------------ fronts

    def _completed(self) -> list[Trial]:
        return [t for t in self.trials if t.status == COMPLETED]

    def _values(self, trials: Sequence[Trial]) -> np.ndarray:
        return np.array([[t.value(o) for o in self.objectives] for t in trials]).reshape(
            len(trials), len(self.objectives)
        )

    def _pareto_trials(self) -> list[Trial]:
        done = self._completed()
        if not done:
            return []
        mask = pareto_mask(self._values(done))
        return [t for t, m in zip(done, mask) if m]

    def hypervolume(self) -> float:
        """Hypervolume of the completed trials, normalised by the reference point."""
        done = self._completed()
        return hypervolume(self._values(done), self.ref_point) if done else 0.0

    def _stop(self, phase_hv: list[float]) -> bool:
        cfg = self.config
        if cfg.tolerance <= 0 or len(phase_hv) <= cfg.patience:
            return False
        return phase_hv[-1] - phase_hv[-1 - cfg.patience] < cfg.tolerance

    def _reference_point(self) -> list[float]:
        """Error 1; each cost its hard limit, else 1.1 x its largest value over the space.

        The largest value is read from 64 quasi-random points of the space, so the point
        is fixed for the whole search (and the same for every run with the same seed).
        """
        cfg = self.config
        if cfg.ref_point is not None:
            return [float(v) for v in cfg.ref_point]
        ref = [1.0]
        sample = [
            self._predict(p, self.settings["sobol"]) for p in self.encoder.sample(64, cfg.seed + 7)
        ]
        sample = [s for s in sample if s is not None]
        for c in self.costs:
            if c in cfg.constraints:
                ref.append(float(cfg.constraints[c]))
            elif sample:
                ref.append(1.1 * max(s[c] for s in sample))
            else:
                raise ConfigError(
                    "could not derive a reference point: no sampled network builds; "
                    "set ref_point in [TRAIN]"
                )
        return ref

    # ------------------------------------------------------------------ output

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def _progress(self, t: Trial, label: str) -> None:
        r = t.result
        head = f"[{label}] trial {t.index}"
        if t.parent is not None:
            head += f" <- {t.parent} ({t.morph})"
        if r.status != COMPLETED:
            # All of it: under debug the reason ends with the traceback (DESIGN.md).
            self._say(f"{head} FAILED: {r.failure_reason or 'no reason recorded'}")
            return
        self._say(
            f"{head}: error {r.error:.4f}, size {_bytes(r.model_size_bytes)}, "
            f"memory {_bytes(r.working_memory_bytes)}, latency {r.latency_s * 1e3:.3g} ms, "
            f"{r.total_seconds:.1f} s | pareto {len(self._pareto_trials())}, "
            f"HV {self.hypervolume():.4f}"
        )

    def _finish(self, wall: float) -> SearchOutcome:
        cfg = self.config
        directory = Path(cfg.root) / cfg.name
        pareto = self._pareto_trials()
        record.score_test(self.store, self.problem, [t.id for t in pareto], self.data)
        hv = self.hypervolume()
        record.export_search(
            self.store,
            self.search_id,
            directory,
            self.problem.space.names,
            extra_summary={
                "hypervolume_history": self.hv_history,
                "rejected_before_training": self.rejected,
                "generation_seconds": self.generation_seconds,
                "rounds": self.rounds,
            },
            wall_seconds=wall,
        )
        self._say(
            f"done: {len(self._completed())}/{len(self.trials)} trials completed, "
            f"{len(pareto)} on the Pareto front, HV {hv:.4f}, {wall:.0f} s "
            f"({self.generation_seconds:.0f} s choosing arms); results in {directory}"
        )
        return SearchOutcome(
            directory,
            self.trials,
            [t.index for t in pareto],
            hv,
            wall,
            self.generation_seconds,
            self.rejected,
            self.hv_history,
            self.rounds,
        )


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    # Costing runs tiny ops one network at a time: with several torch threads they spend
    # their time waiting for each other (83 ms a candidate on 2 busy cores, 18 ms on one).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _bytes(n: float | None) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "-"
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{int(n)} B"


def _config_dict(cfg: TrainConfig) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: v for k, v in asdict(cfg).items()}


def run_search(
    config: TrainConfig, problem: Problem | None = None, out: TextIO | None = None
) -> SearchOutcome:
    """Run a search to the end (see :class:`Search`)."""
    return Search(config, problem, out).run()
