"""The one place sparsemod talks to Ax.

Ax holds the experiment (the space, the objectives and every trial's arm and data) and
generates the quasi-random Sobol arms; with ``generator = ax`` it also generates the
GP-phase arms with its own default BoTorch strategy. Arms chosen by sparsemod (the
exact-cost candidate pool, the morphisms) are attached as custom trials. Ax objects are
never persisted: the results and the store are the record.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from sparsemod.space import ChoiceParam, FixedParam, FloatParam, IntParam, SearchSpace


def _quiet_ax() -> None:
    # Ax gives each of its modules an INFO logger as it is imported (some lazily, at the
    # first model fit); sparsemod prints its own progress line per trial instead.
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in ("ax", "botorch", "pyro"):
            logging.getLogger(name).setLevel(logging.WARNING)


class AxBackend:
    """An Ax ``Client`` for one search.

    Args:
        space: the search space.
        objectives: the objective names, all minimised.
        thresholds: objective thresholds (hard constraints on costs), by objective name.
        seed: seeds Sobol (and Ax's model-based generation).
        init_budget: arms Ax generates with Sobol before it switches to its BoTorch step
            (``generator = ax``); ``None``: Ax generates Sobol arms only (``generator =
            pool``, where the GP phase chooses its arms itself).
    """

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[str],
        thresholds: Mapping[str, float],
        seed: int,
        init_budget: int | None,
    ) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.disable(logging.INFO)  # Ax logs at INFO while it imports
            try:
                from ax import Client
            finally:
                logging.disable(logging.NOTSET)
        _quiet_ax()

        self.space = space
        self.objectives = list(objectives)
        self.thresholds = dict(thresholds)
        self.seed = seed
        # Sobol only (generator = pool): Ax is the source of quasi-random arms and nothing
        # else. Its experiment then holds no data and no attached arm, and each batch of arms
        # comes from a new one that starts where the last one stopped: with every arm kept,
        # each Ax call got slower (0.36 s an arm at 300 trials, a resume replayed every trial
        # at about 60 ms each; bench/scale.py).
        self.lean = init_budget is None
        self.drawn = 0  # Sobol positions used (lean), or arms generated (else)
        self.fixed = {p.name: p.value for p in space.parameters if isinstance(p, FixedParam)}
        self.client = self._client(Client)
        if not self.lean:
            self.client.configure_generation_strategy(
                method="fast",
                initialization_budget=init_budget,
                initialization_random_seed=seed,
                initialize_with_center=False,
                use_existing_trials_for_initialization=False,
            )

    def _client(self, client_class: Any = None) -> Any:
        """A new Ax client of the space and objectives (Sobol from ``drawn`` when lean)."""
        if client_class is None:
            from ax import Client as client_class
        client = client_class(random_seed=self.seed)
        client.configure_experiment(
            parameters=[_to_ax(p) for p in self.space.parameters if not isinstance(p, FixedParam)],
            name="sparsemod",
        )
        objective = ", ".join(f"-{o}" for o in self.objectives)
        constraints = [
            f"{k} <= {v!r}" for k, v in self.thresholds.items() if k in self.objectives
        ]
        client.configure_optimization(objective=objective, outcome_constraints=constraints)
        if self.lean:
            client.set_generation_strategy(_sobol_only(self.seed, self.drawn))
        return client

    def generate(self, n: int) -> list[tuple[int, dict[str, Any]]]:
        """Up to ``n`` new arms from Ax's generation strategy, as (Ax index, params).

        Ax may return fewer than asked (right after its Sobol step); ask until there are
        ``n`` or it stops giving any.
        """
        if self.lean and self.client is None:
            self.client = self._client()
        out: list[tuple[int, dict[str, Any]]] = []
        while len(out) < n:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = self.client.get_next_trials(max_trials=n - len(out))
            _quiet_ax()
            if not got:
                break
            out += [(i, self._from_ax(p)) for i, p in got.items()]
        if self.lean:  # where the Sobol engine stopped; the next batch starts a new client
            if out:
                spec = self.client._generation_strategy._nodes[0].generator_specs[0]
                self.drawn = int(spec.fitted_adapter.generator.init_position)
            self.client = None
        else:
            self.drawn += len(out)
        return out

    def attach(self, params: Mapping[str, Any]) -> int | None:
        """Attach an arm chosen outside Ax; returns its Ax trial index (``None`` when Ax
        only draws Sobol arms)."""
        if self.lean:
            return None
        free = {k: v for k, v in params.items() if k not in self.fixed}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.client.attach_trial(parameters=free)

    def complete(self, index: int | None, values: Mapping[str, float]) -> None:
        """Complete a trial with plain floats for every objective (one form for all)."""
        if self.lean or index is None:
            return
        data = {k: float(values[k]) for k in self.objectives}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.client.complete_trial(trial_index=index, raw_data=data)

    def fail(self, index: int | None) -> None:
        if not self.lean and index is not None:
            self.client.mark_trial_failed(trial_index=index)

    def abandon(self, index: int | None) -> None:
        """An arm rejected before training (it breaks a hard constraint)."""
        if not self.lean and index is not None:
            self.client.mark_trial_abandoned(trial_index=index)

    def fast_forward(self, drawn: int) -> None:
        """Go on past the ``drawn`` Sobol positions a search used before it was stopped."""
        if self.lean:  # the next batch's Sobol sequence starts at that position
            self.drawn, self.client = drawn, None
            return
        for index, _ in self.generate(drawn):
            self.abandon(index)

    def _from_ax(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(self.fixed)
        for p in self.space.parameters:
            if p.name in params:
                v = params[p.name]
                out[p.name] = int(v) if isinstance(p, IntParam) else v
        return out


def _sobol_only(seed: int, position: int = 0) -> Any:
    """Ax's Sobol step alone, as ``method="fast"`` builds it (seeded, deduplicated), with no
    step after it. ``method="random_search"`` would not deduplicate: a space of integers and
    choices would get repeated arms."""
    from ax.adapter.registry import Generators
    from ax.generation_strategy.generation_node import GenerationNode
    from ax.generation_strategy.generation_strategy import GenerationStrategy
    from ax.generation_strategy.generator_spec import GeneratorSpec

    sobol = GeneratorSpec(
        generator_enum=Generators.SOBOL,
        generator_kwargs={"seed": seed, "init_position": position},
    )
    node = GenerationNode(name="Sobol", generator_specs=[sobol], should_deduplicate=True)
    return GenerationStrategy(name="Sobol", nodes=[node])


def _to_ax(p: Any) -> Any:
    from ax import ChoiceParameterConfig, RangeParameterConfig

    if isinstance(p, IntParam):
        return RangeParameterConfig(
            name=p.name,
            bounds=(p.low, p.high),
            parameter_type="int",
            scaling="log" if p.log else None,
        )
    if isinstance(p, FloatParam):
        return RangeParameterConfig(
            name=p.name,
            bounds=(p.low, p.high),
            parameter_type="float",
            scaling="log" if p.log else None,
        )
    if isinstance(p, ChoiceParam):
        kinds = {type(v) for v in p.values}
        kind = (
            {str: "str", int: "int", float: "float", bool: "bool"}[kinds.pop()]
            if len(kinds) == 1
            else "str"
        )
        values = list(p.values) if kind != "str" else [str(v) for v in p.values]
        return ChoiceParameterConfig(
            name=p.name, values=values, parameter_type=kind, is_ordered=p.ordered
        )
    raise TypeError(f"no Ax parameter for {p!r}")
