"""Parameters as numbers: a unit-cube encoding for the GP and quasi-random sampling.

Ranges map linearly (or on a log scale) to [0, 1]; ordered choices to their rank spread
over [0, 1]; unordered choices to one-hot columns; fixed parameters are left out. An
inactive parameter (``active_if``) is encoded at the one value
:meth:`~sparsemod.space.SearchSpace.canonical` gives it, so the GP sees one point per
network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from sparsemod.space import ChoiceParam, FixedParam, FloatParam, IntParam, SearchSpace


class Encoder:
    """Encodes parameter dicts of one space as rows of a float tensor in [0, 1]^d."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.free = [p for p in space.parameters if not isinstance(p, FixedParam)]
        self.dim = sum(
            len(p.values) if isinstance(p, ChoiceParam) and not p.ordered else 1 for p in self.free
        )

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """One parameter dict as a vector of length ``dim``."""
        out: list[float] = []
        params = self.space.canonical(params)
        for p in self.free:
            v = params[p.name]
            if isinstance(p, ChoiceParam):
                idx = _index(p.values, v)
                if p.ordered:
                    out.append(idx / max(len(p.values) - 1, 1))
                else:
                    out.extend(1.0 if i == idx else 0.0 for i in range(len(p.values)))
            else:
                out.append(_unit(p, float(v)))
        return np.asarray(out, dtype=np.float64)

    def encode_many(self, rows: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        if not rows:
            return torch.zeros(0, self.dim, dtype=torch.float64)
        return torch.as_tensor(np.stack([self.encode(r) for r in rows]))

    def sample(self, n: int, seed: int) -> list[dict[str, Any]]:
        """``n`` scrambled-Sobol points of the space (one Sobol dimension a parameter)."""
        if n <= 0 or not self.free:
            return []
        engine = torch.quasirandom.SobolEngine(len(self.free), scramble=True, seed=seed)
        u = engine.draw(n, dtype=torch.float64).numpy()
        fixed = {p.name: p.value for p in self.space.parameters if isinstance(p, FixedParam)}
        rows = []
        for row in u:
            params = dict(fixed)
            for p, x in zip(self.free, row):
                params[p.name] = _from_unit(p, float(x))
            rows.append(params)
        return rows


def key(params: Mapping[str, Any]) -> tuple:
    """A hashable identity of a parameter dict (floats rounded so equal arms match)."""
    return tuple(
        sorted((k, round(v, 10) if isinstance(v, float) else v) for k, v in params.items())
    )


def _index(values: Sequence[Any], v: Any) -> int:
    for i, allowed in enumerate(values):
        if allowed == v:
            return i
    raise ValueError(f"{v!r} is not one of {list(values)}")


def _unit(p: IntParam | FloatParam, v: float) -> float:
    if p.high == p.low:
        return 0.0
    if p.log:
        return (math.log(v) - math.log(p.low)) / (math.log(p.high) - math.log(p.low))
    return (v - p.low) / (p.high - p.low)


def _from_unit(p: Any, x: float) -> Any:
    x = min(max(x, 0.0), 1.0 - 1e-12)
    if isinstance(p, ChoiceParam):
        return p.values[int(x * len(p.values))]
    if isinstance(p, IntParam):
        if p.log:
            lo, hi = math.log(p.low - 0.5 if p.low > 0.5 else p.low), math.log(p.high + 0.5)
            v = round(math.exp(lo + x * (hi - lo)))
        else:
            v = math.floor(p.low + x * (p.high - p.low + 1))
        return int(min(max(v, p.low), p.high))
    if p.log:
        return float(math.exp(math.log(p.low) + x * (math.log(p.high) - math.log(p.low))))
    return float(p.low + x * (p.high - p.low))
