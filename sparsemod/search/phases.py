"""The phases of a search, each a way to propose the next arms from the state.

A phase has a name, a budget of rounds and ``propose(state, n) -> arms``; the loop (or an
ask/tell study) asks the current phase for arms until its budget is spent, it has nothing
left to propose, or its stopper ends it, and then moves to the next (:func:`plan`).

* :class:`Sobol`: quasi-random arms from Ax. Its arms depend on no result, so all its
  rounds may be proposed at once (``all_at_once``); the stopper never cuts it.
* :class:`PoolGP` (``generator = pool``): qLogEHVI over a pool of Sobol points and one-step
  morphs of the front, costed exactly before training (:mod:`~sparsemod.search.acquisition`).
* :class:`AxGP` (``generator = ax``): Ax's own model-based generation.
* :class:`Morph`: the morphs of the front, ranked by the same acquisition; a child records
  its parent and whether it starts from the parent's weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sparsemod.config import TrainConfig
from sparsemod.morph import morphs
from sparsemod.search.acquisition import select
from sparsemod.search.ax_backend import AxBackend
from sparsemod.search.costs import Costs
from sparsemod.search.encoding import Encoder, key
from sparsemod.search.state import SearchState, Trial
from sparsemod.space import SearchSpace

# How a morph child's description says whether it starts from its parent's weights.
WARM = " (warm start)"
COLD = " (cold start: the parent's trained weights were lost on resume)"

_TRIES_PER_ARM = 50  # Ax arms drawn per arm wanted before a phase gives up on the limits


@dataclass(frozen=True)
class Plan:
    """How a search spends its budget: rounds of ``batch_size`` arms in each phase.

    A search takes it from its ``[TRAIN]`` keys (:meth:`of`), an ask/tell study from its
    arguments; each value is checked by the key's declaration in :mod:`sparsemod.settings`.
    """

    sobol: int  # rounds of quasi-random arms (r1)
    gp: int  # rounds of the GP phase (r2)
    morph: int  # rounds of morphisms (r3; 0 when morphisms are off)
    batch_size: int
    generator: str  # pool (exact costs) or ax
    num_candidates: int
    cost_scale: str
    tolerance: float
    patience: int
    seed: int

    @classmethod
    def of(cls, cfg: TrainConfig) -> Plan:
        """The plan of a search configured by ``[TRAIN]``."""
        return cls(
            cfg.r1, cfg.r2, cfg.r3 if cfg.morphisms else 0, cfg.batch_size, cfg.generator,
            cfg.num_candidates, cfg.cost_scale, cfg.tolerance, cfg.patience, cfg.seed,
        )  # fmt: skip


@dataclass
class Tools:
    """What the phases propose with (shared by all of them).

    ``morphs``: whether there is a morph phase (a study over a problem's builder, whose
    children may start from their parent's weights). The GP pool's one-step neighbours of
    the front are a step of each parameter, defined on any space: every study has them.
    """

    plan: Plan
    space: SearchSpace
    ax: AxBackend
    costs: Costs
    encoder: Encoder
    morphs: bool = True


@dataclass(frozen=True)
class Stopper:
    """Ends a phase when its hypervolume gained less than ``tolerance`` over ``patience``
    rounds (``tolerance = 0`` never stops)."""

    tolerance: float
    patience: int

    def stops(self, phase_hv: Sequence[float]) -> bool:
        """Whether the phase whose hypervolume after each round is ``phase_hv`` ends now."""
        if self.tolerance <= 0 or len(phase_hv) <= self.patience:
            return False
        return phase_hv[-1] - phase_hv[-1 - self.patience] < self.tolerance

    def reason(self) -> str:
        return f"hypervolume gained less than {self.tolerance} over {self.patience} rounds"


class Phase:
    """One phase: ``rounds`` rounds of arms from :meth:`propose`.

    Args:
        tools: what the phase proposes with.
        rounds: its budget in rounds of ``batch_size`` arms.
        stopper: ends the phase early (``None``: it runs its whole budget).
    """

    name = ""
    all_at_once = False  # its arms depend on no result: every round may be proposed together

    def __init__(self, tools: Tools, rounds: int, stopper: Stopper | None = None) -> None:
        self.tools = tools
        self.rounds = rounds
        self.stopper = stopper

    def propose(self, state: SearchState, n: int) -> list[Trial]:
        """Up to ``n`` new arms, added to ``state`` (fewer when the phase has no more)."""
        raise NotImplementedError

    def _from_ax(self, state: SearchState, n: int) -> list[Trial]:
        """Arms from Ax's generation strategy; those over a hard limit, and those of a
        network already trained or training, are abandoned."""
        t = self.tools
        arms: list[Trial] = []
        tries = 0
        while len(arms) < n and tries < _TRIES_PER_ARM * n:
            t0 = time.perf_counter()
            got = t.ax.generate(n - len(arms))
            state.generation_seconds += time.perf_counter() - t0
            if not got:
                break
            state.sobol_drawn = t.ax.drawn  # stored with the round
            for ax_index, params in got:
                tries += 1
                params = t.space.validate(params)
                costs = t.costs.predict(params)
                if costs is not None and t.costs.violates(costs):
                    state.rejected += 1
                    t.ax.abandon(ax_index)
                    continue
                if t.costs.identity(params) in state.seen:  # a network trained before
                    state.duplicates += 1
                    t.ax.abandon(ax_index)
                    continue
                trial = state.new_trial(params, self.name, costs or {})
                trial.ax_index = ax_index
                arms.append(trial)
        return arms

    def _attach(
        self,
        state: SearchState,
        params: dict[str, Any],
        parent: int | None = None,
        morph: str | None = None,
    ) -> Trial:
        """An arm chosen here, attached to Ax as a custom trial."""
        trial = state.new_trial(
            params, self.name, self.tools.costs.known(params), parent=parent, morph=morph
        )
        trial.ax_index = self.tools.ax.attach(params)
        return trial

    def _choose(
        self, state: SearchState, candidates: list[dict[str, Any]], n: int
    ) -> list[dict[str, Any]]:
        """The ``n`` candidates with the best joint expected hypervolume improvement."""
        if not candidates:
            return []
        t = self.tools
        done = state.observed()
        costs = state.costs
        scale = t.costs.scale(t.plan.cost_scale, state.ref_point)
        train_x = t.encoder.encode_many([d.params for d in done])
        train_err = torch.tensor([d.observed_error() for d in done], dtype=torch.float64)
        # A stopped trial measured no cost: its exact predicted ones stand in.
        train_c = torch.tensor(
            [[scale(c, d.value(c) if d.ok else d.predicted[c]) for c in costs] for d in done],
            dtype=torch.float64,
        ).reshape(len(done), len(costs))
        def exact(points: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
            c = [[scale(c, t.costs.known(p)[c]) for c in costs] for p in points]
            x = t.encoder.encode_many(points)
            return x, torch.tensor(c, dtype=torch.float64).reshape(len(points), len(costs))

        cand_x, cand_c = exact(candidates)
        # arms still training (asynchronous rounds): chosen around, believed at the GP's mean
        pending_x, pending_c = exact([p.params for p in state.running()])
        idx = select(
            train_x, train_err, train_c, cand_x, cand_c, state.ref_point[:1], n,
            seed=t.plan.seed + len(state.trials), pending_x=pending_x, pending_costs=pending_c,
        )  # fmt: skip
        return [candidates[i] for i in idx]


class Sobol(Phase):
    """Quasi-random arms from Ax's Sobol sequence."""

    name = "sobol"
    all_at_once = True

    def propose(self, state: SearchState, n: int) -> list[Trial]:
        return self._from_ax(state, n)


class AxGP(Phase):
    """Arms from Ax's own model-based generation (``generator = ax``)."""

    name = "gp"

    def propose(self, state: SearchState, n: int) -> list[Trial]:
        return self._from_ax(state, n)


class PoolGP(Phase):
    """qLogEHVI over a pool costed exactly before training (``generator = pool``).

    The pool is ``num_candidates`` Sobol points; each round costs the next chunk of it, so
    the pool the acquisition sees grows round by round, plus the one-step morphs of the
    current front. With fewer than two completed trials there is nothing to fit: Sobol arms.
    """

    name = "gp"

    def __init__(self, tools: Tools, rounds: int, stopper: Stopper | None = None) -> None:
        super().__init__(tools, rounds, stopper)
        self._pool: list[dict[str, Any]] | None = None
        self._costed: list[dict[str, Any]] = []

    def propose(self, state: SearchState, n: int) -> list[Trial]:
        t = self.tools
        if len(state.completed()) < 2:
            return self._from_ax(state, n)
        t0 = time.perf_counter()
        if self._pool is None:
            self._pool = t.encoder.sample(t.plan.num_candidates, t.plan.seed + 1)
        # Costing a candidate takes ~20 ms (build, prune, trace); costing the whole pool at
        # once stalled the first GP round for 40 s.
        chunk = max(32, math.ceil(t.plan.num_candidates / max(t.plan.gp, 1)))
        fresh, self._pool = self._pool[:chunk], self._pool[chunk:]
        self._costed += t.costs.feasible(fresh, state.seen)
        # one-step neighbours of the front: defined on any space (a step of each parameter)
        neighbours = [m.params for p in state.pareto() for m in morphs(t.space, p.params)]
        candidates = t.costs.feasible(self._costed + neighbours, state.seen)
        chosen = self._choose(state, candidates, n)
        state.generation_seconds += time.perf_counter() - t0
        return [self._attach(state, params) for params in chosen]


class Morph(Phase):
    """The one-step morphs of the front, ranked by the acquisition."""

    name = "morph"

    def propose(self, state: SearchState, n: int) -> list[Trial]:
        t = self.tools
        t0 = time.perf_counter()
        children: list[dict[str, Any]] = []
        origin: dict[tuple, tuple[int, str, bool]] = {}
        for parent in state.pareto():
            for m in morphs(t.space, parent.params):
                k = key(m.params)
                if k not in origin:
                    origin[k] = (parent.index, m.description, m.preserves_function)
                    children.append(dict(m.params))
        candidates = t.costs.feasible(children, state.seen)
        chosen = self._choose(state, candidates, n)
        state.generation_seconds += time.perf_counter() - t0
        arms = []
        for params in chosen:
            parent, description, preserves = origin[key(params)]
            trial = self._attach(state, params, parent=parent, morph=description)
            trial.morph = description + (WARM if preserves else "")
            arms.append(trial)
        return arms


GP_PHASES = {"pool": PoolGP, "ax": AxGP}  # by ``generator``


def plan(tools: Tools) -> list[Phase]:
    """The phases of a search in order, with their budgets: Sobol, GP, then morphisms."""
    p = tools.plan
    stopper = Stopper(p.tolerance, p.patience)
    return [
        Sobol(tools, p.sobol),
        GP_PHASES[p.generator](tools, p.gp, stopper),
        Morph(tools, p.morph if tools.morphs else 0, stopper),
    ]
