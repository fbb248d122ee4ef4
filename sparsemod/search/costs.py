"""The exact costs of candidates before training, cached, and what follows from them.

Size, working memory, FLOPs and latency follow from a candidate's parameters alone
(:func:`sparsemod.evaluate.predict_costs` builds it, applies the structural part of
compression and counts). :class:`Costs` computes each candidate once, remembers those that
do not build, filters candidates over a hard limit, derives the reference point and maps
costs onto the scale the acquisition sees.
"""

from __future__ import annotations

import contextlib
import math
import traceback
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch

from sparsemod.errors import BuildError, ConfigError
from sparsemod.evaluate import COMPLETED, FAILED, EvalSettings, TrialResult, predict_costs
from sparsemod.problems import Problem
from sparsemod.search.encoding import Encoder, key

_REFERENCE_SAMPLE = 64  # quasi-random points the reference point and log floors are read from
_REFERENCE_SEED = 7  # added to the search's seed for that sample


class Costs:
    """Predicted costs of candidates, by their parameters.

    Args:
        problem: the problem the candidates are built by.
        shape: ``(input_shape, num_classes)`` of its data.
        constraints: hard limits by cost name.
        objectives: the objective names (error first).
        encoder: the space's encoder (draws the reference sample).
        seed: the search's seed.
        debug: keep the traceback of a candidate that does not build.
    """

    def __init__(
        self,
        problem: Problem,
        shape: tuple[tuple[int, ...], int],
        constraints: Mapping[str, float],
        objectives: Sequence[str],
        encoder: Encoder,
        seed: int,
        debug: bool = False,
    ) -> None:
        self.problem = problem
        self.shape = shape
        self.constraints = dict(constraints)
        self.costs = [o for o in objectives if o != "error"]
        self.encoder = encoder
        self.seed = seed
        self.debug = debug
        self._predicted: dict[tuple, dict[str, float] | None] = {}
        self.build_errors: dict[tuple, str] = {}  # by key(): why the candidate does not build
        self._floors: dict[str, float] | None = None

    def predict(self, params: Mapping[str, Any], settings: EvalSettings) -> dict | None:
        """The candidate's costs, or ``None`` when it does not build (the reason is kept)."""
        k = key(params)
        if k not in self._predicted:
            try:
                with _one_thread():
                    self._predicted[k] = predict_costs(self.problem, params, settings, *self.shape)
            except BuildError as exc:
                self._predicted[k] = None
                self.build_errors[k] = str(exc)
                if self.debug:  # as the evaluator does for a failed candidate
                    self.build_errors[k] += "\n" + "".join(traceback.format_exception(exc))
        return self._predicted[k]

    def known(self, params: Mapping[str, Any]) -> dict[str, float]:
        """The costs computed before for ``params`` (empty when none were)."""
        return self._predicted.get(key(params)) or {}

    def violates(self, costs: Mapping[str, float]) -> bool:
        """Whether ``costs`` break a hard limit."""
        return any(costs[name] > limit for name, limit in self.constraints.items())

    def check_measured(self, result: TrialResult) -> TrialResult:
        """A trained network whose measured costs break a hard limit cannot ship.

        The model size predicted before training can differ from the measured one by how
        pruning spread the kept weights over the layers; such a trial keeps its numbers
        but fails, and stays off the Pareto set.
        """
        if result.status != COMPLETED:
            return result
        over = [
            f"measured {name} {getattr(result, name):.6g} > limit {limit:.6g}"
            for name, limit in self.constraints.items()
            if getattr(result, name) > limit
        ]
        if not over:
            return result
        return replace(
            result, status=FAILED, model=None, failure_reason="constraint: " + "; ".join(over)
        )

    def feasible(
        self,
        candidates: Sequence[Mapping[str, Any]],
        settings: EvalSettings,
        seen: Collection[tuple],
    ) -> list[dict[str, Any]]:
        """The candidates not in ``seen`` that build and keep every hard limit, once each."""
        out, keys = [], set()
        for params in candidates:
            k = key(params)
            if k in seen or k in keys:
                continue
            costs = self.predict(params, settings)
            if costs is None or self.violates(costs):
                continue
            keys.add(k)
            out.append(dict(params))
        return out

    def _sample(self, settings: EvalSettings) -> list[dict[str, float]]:
        found = [
            self.predict(p, settings)
            for p in self.encoder.sample(_REFERENCE_SAMPLE, self.seed + _REFERENCE_SEED)
        ]
        return [s for s in found if s is not None]

    def reference_point(self, settings: EvalSettings) -> list[float]:
        """Error 1; each cost its hard limit, else 1.1 x its largest value over the space.

        The largest value is read from 64 quasi-random points of the space, so the point
        is fixed for the whole search (and the same for every run with the same seed).
        """
        ref = [1.0]
        sample = self._sample(settings)
        for c in self.costs:
            if c in self.constraints:
                ref.append(float(self.constraints[c]))
            elif sample:
                ref.append(1.1 * max(s[c] for s in sample))
            else:
                raise ConfigError(
                    "could not derive a reference point: no sampled network builds; "
                    "set ref_point in [TRAIN]"
                )
        return ref

    def scale(
        self, kind: str, ref_point: Sequence[float], settings: EvalSettings
    ) -> Callable[[str, float], float]:
        """Each cost mapped so that its reference value is 1, as the acquisition sees it.

        ``linear``: cost / reference. ``log``: log(cost / floor) / log(reference / floor),
        floor = half the smallest value over the 64 Sobol points of the reference point
        (fixed for the search, the same after a resume); below the floor counts as 0.
        """
        refs = dict(zip(self.costs, ref_point[1:]))
        if kind == "linear":
            return lambda name, value: value / refs[name]
        if self._floors is None:
            found = self._sample(settings)
            self._floors = {
                c: 0.5 * max(min(s[c] for s in found), 1e-12) if found else refs[c] * 1e-3
                for c in self.costs
            }
        floors = self._floors

        def log_scale(name: str, value: float) -> float:
            lo = min(floors[name], 0.5 * refs[name])
            return max(0.0, math.log(max(value, 1e-300) / lo) / math.log(refs[name] / lo))

        return log_scale


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
