"""The exact costs of candidates before training, cached, and what follows from them.

Size, working memory, FLOPs and latency follow from a candidate's parameters alone (for a
problem, :func:`sparsemod.evaluate.predict_costs` builds it, applies the structural part
of compression and counts; an ask/tell study may give its own cost function).
:class:`Costs` computes each candidate once, remembers those that do not build, filters
candidates over a hard limit, derives the reference point and maps costs onto the scale
the acquisition sees.
"""

from __future__ import annotations

import contextlib
import math
import traceback
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch

from sparsemod.errors import BuildError, ConfigError
from sparsemod.evaluate import COMPLETED, FAILED, TrialResult
from sparsemod.search.encoding import Encoder, key

_REFERENCE_SAMPLE = 64  # quasi-random points the reference point and log floors are read from
_REFERENCE_SEED = 7  # added to the search's seed for that sample


class Costs:
    """Costs of candidates before training, by their parameters.

    Args:
        predict: a candidate's costs by name, from its parameters alone; raises
            :class:`~sparsemod.errors.BuildError` for one that does not build. ``None``:
            nothing is known before training (an ask/tell study without a cost function):
            every candidate passes the limits here and is judged by what it is told.
        constraints: hard limits by cost name.
        objectives: the objective names (error first).
        encoder: the space's encoder (draws the reference sample).
        seed: the search's seed.
        debug: keep the traceback of a candidate that does not build.
        identify: which network a candidate is (equal for two candidates that train the
            same network; for a problem,
            :func:`~sparsemod.identity.network_fingerprint`). ``None``: the parameters
            with the inactive ones at one value (:meth:`SearchSpace.canonical`).
    """

    def __init__(
        self,
        predict: Callable[[Mapping[str, Any]], Mapping[str, float]] | None,
        constraints: Mapping[str, float],
        objectives: Sequence[str],
        encoder: Encoder,
        seed: int,
        debug: bool = False,
        identify: Callable[[Mapping[str, Any]], Hashable] | None = None,
    ) -> None:
        self._predict = predict
        self._identify = identify
        self._identity: dict[tuple, Hashable] = {}
        self.constraints = dict(constraints)
        self.costs = [o for o in objectives if o != "error"]
        self.encoder = encoder
        self.seed = seed
        self.debug = debug
        self._predicted: dict[tuple, dict[str, float] | None] = {}
        self.build_errors: dict[tuple, str] = {}  # by key(): why the candidate does not build
        self._floors: dict[str, float] | None = None

    @property
    def exact(self) -> bool:
        """Whether every cost is known before training."""
        return self._predict is not None

    def predict(self, params: Mapping[str, Any]) -> dict | None:
        """The candidate's costs (empty when none are known before training), or ``None``
        when it does not build (the reason is kept)."""
        if self._predict is None:
            return {}
        k = key(params)
        if k not in self._predicted:
            try:
                with _one_thread():
                    self._predicted[k] = self._checked(self._predict(params))
            except BuildError as exc:
                self._predicted[k] = None
                self.build_errors[k] = str(exc)
                if self.debug:  # as the evaluator does for a failed candidate
                    self.build_errors[k] += "\n" + "".join(traceback.format_exception(exc))
        return self._predicted[k]

    def _checked(self, found: Mapping[str, float]) -> dict[str, float]:
        if not isinstance(found, Mapping):
            raise ConfigError(f"the cost function returned {found!r}, not a dict of costs")
        out = dict(found)
        for name in self.costs:
            value = out.get(name)
            if name not in out:
                raise ConfigError(
                    f"the cost function gave no {name}: it gives every cost objective "
                    f"({', '.join(self.costs)}); when one is known only after training, "
                    "use costs=None and tell them all"
                )
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"the cost function gave {name} = {value!r}, not a number")
            if not math.isfinite(value):
                raise ConfigError(f"the cost function gave {name} = {value!r}, not a finite number")
        return out

    def identity(self, params: Mapping[str, Any]) -> Hashable:
        """Which network ``params`` train: equal for two candidates exactly when one would
        repeat the other's training (see ``identify``). A candidate that does not build is
        known by its canonical parameters."""
        k = key(params)
        if k not in self._identity:
            found = None
            if self._identify is not None:
                try:
                    with _one_thread():
                        found = self._identify(params)
                except BuildError:
                    found = None
            self._identity[k] = (
                found if found is not None else key(self.encoder.space.canonical(params))
            )
        return self._identity[k]

    def admit(self, params: Mapping[str, Any], what: str) -> None:
        """Refuse ``params`` that do not build or break a hard limit (``what`` names the
        caller in the error).

        Raises:
            ConfigError: naming why.
        """
        costs = self.predict(params)
        if costs is None:
            raise ConfigError(f"{what}: {dict(params)} does not build: {self.why(params)}")
        over = {k: costs[k] for k, v in self.constraints.items() if k in costs and costs[k] > v}
        if over:
            limits = ", ".join(over)
            raise ConfigError(f"{what}: {dict(params)} breaks the limit on {limits}: {over}")

    def why(self, params: Mapping[str, Any]) -> str:
        """Why ``params`` do not build (empty when they do, or were never costed)."""
        return self.build_errors.get(key(params), "")

    def known(self, params: Mapping[str, Any]) -> dict[str, float]:
        """The costs computed before for ``params`` (empty when none were)."""
        return self._predicted.get(key(params)) or {}

    def violates(self, costs: Mapping[str, float]) -> bool:
        """Whether ``costs`` break a hard limit."""
        return any(
            name in costs and costs[name] > limit for name, limit in self.constraints.items()
        )

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
        self, candidates: Sequence[Mapping[str, Any]], seen: Collection[Hashable]
    ) -> list[dict[str, Any]]:
        """The candidates that build and keep every hard limit, one per network, none of
        them a network in ``seen`` (by :meth:`identity`)."""
        out, networks = [], set()
        for params in candidates:
            costs = self.predict(params)
            if costs is None or self.violates(costs):
                continue
            network = self.identity(params)
            if network in seen or network in networks:
                continue
            networks.add(network)
            out.append(dict(params))
        return out

    def _sample(self) -> list[dict[str, float]]:
        if self._predict is None:
            return []
        found = [
            self.predict(p)
            for p in self.encoder.sample(_REFERENCE_SAMPLE, self.seed + _REFERENCE_SEED)
        ]
        return [s for s in found if s is not None]

    def reference_point(self) -> list[float]:
        """Error 1; each cost its hard limit, else 1.1 x its largest value over the space.

        The largest value is read from 64 quasi-random points of the space, so the point
        is fixed for the whole search (and the same for every run with the same seed).
        """
        ref = [1.0]
        sample = self._sample()
        for c in self.costs:
            if c in self.constraints:
                ref.append(float(self.constraints[c]))
            elif sample:
                ref.append(1.1 * max(s[c] for s in sample))
            else:
                why = "no sampled network builds" if self.exact else "no cost function"
                raise ConfigError(
                    f"could not derive a reference point for {c}: {why}; set ref_point "
                    f"([TRAIN] ref_point, or Study(ref_point=...)) or a limit on {c}"
                )
        return ref

    def scale(self, kind: str, ref_point: Sequence[float]) -> Callable[[str, float], float]:
        """Each cost mapped so that its reference value is 1, as the acquisition sees it.

        ``linear``: cost / reference. ``log``: log(cost / floor) / log(reference / floor),
        floor = half the smallest value over the 64 Sobol points of the reference point
        (fixed for the search, the same after a resume); below the floor counts as 0.
        """
        refs = dict(zip(self.costs, ref_point[1:]))
        if kind == "linear":
            return lambda name, value: value / refs[name]
        if self._floors is None:
            found = self._sample()
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
