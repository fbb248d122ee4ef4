"""One-step mutations of a parameter dict: widen, narrow, deepen, shallow, kernel, keep ratio
and tweak, chosen by the *role* each parameter plays (width, depth, kernel size, pruning keep
ratio, anything else), from the naming conventions of the built-in spaces."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sparsemod.errors import ConfigError
from sparsemod.space import ChoiceParam, FixedParam, FloatParam, IntParam, Param, SearchSpace

ROLES = ("width", "depth", "kernel", "keep_ratio", "other")

WIDEN_FACTOR = 1.5
"""Widen multiplies a width by this, narrow divides by it (Net2Net-sized steps)."""
FLOAT_FACTOR = 1.25
"""Keep ratios and log-scale reals move by this factor."""
LINEAR_STEP = 0.1
"""Other reals move by this fraction of their range."""

_OPS_UP_DOWN = {"width": ("widen", "narrow"), "depth": ("deepen", "shallow")}
_PRESERVING_OPS = frozenset({"widen", "deepen"})

_WIDTH_NAME = re.compile(r"units\d+")


def infer_roles(space: SearchSpace) -> dict[str, str]:
    """Guess the role of every searched parameter of a space from its name.

    Args:
        space: the search space.

    Returns:
        ``{name: role}`` for every parameter that is not a :class:`FixedParam`, roles from
        :data:`ROLES`: names ending in ``_filters`` or ``_units``, ``units<k>``, ``hidden``,
        ``hidden_size`` and ``width`` are widths; ``num_blocks``, ``num_fc``, ``num_layers``
        and names ending in ``_layers`` are depths; ``kernel`` and names ending in
        ``_kernel`` are kernel sizes; ``keep_ratio`` is itself; the rest are ``other``.
    """
    roles: dict[str, str] = {}
    for p in space.parameters:
        if isinstance(p, FixedParam):
            continue
        roles[p.name] = _role_of(p.name)
    return roles


def _role_of(name: str) -> str:
    if (
        name.endswith(("_filters", "_units"))
        or _WIDTH_NAME.fullmatch(name)
        or name in ("hidden", "hidden_size", "width")
    ):
        return "width"
    if name in ("num_blocks", "num_fc", "num_layers") or name.endswith("_layers"):
        return "depth"
    if name == "kernel" or name.endswith("_kernel"):
        return "kernel"
    if name == "keep_ratio":
        return "keep_ratio"
    return "other"


@dataclass(frozen=True)
class Morph:
    """One single-step child of a parameter dict.

    Attributes:
        op: ``"widen"``, ``"narrow"``, ``"deepen"``, ``"shallow"``, ``"kernel"``,
            ``"keep_ratio"`` or ``"tweak"``.
        param: the parameter changed.
        params: the child's full parameter dict, valid in the space.
        preserves_function: True for widen and deepen, the morphs that keep every layer of
            the parent and add capacity, so the child can start from the parent's trained
            weights through :func:`inherit_weights`. How exact that start is depends on the
            network (see :func:`inherit_weights`).
        description: for logs, for example ``"widen b2_filters 32 -> 48"``.
    """

    op: str
    param: str
    params: Mapping[str, Any] = field(hash=False)
    preserves_function: bool
    description: str


def morphs(
    space: SearchSpace,
    params: Mapping[str, Any],
    *,
    roles: Mapping[str, str] | None = None,
) -> list[Morph]:
    """Every single-step morph of a parameter dict.

    Parameters are visited in the space's order; each gives its larger step before its
    smaller one. A parameter inactive at the parent (its ``active_if`` does not hold)
    cannot change the network and is skipped. Raising a count brings the next block into
    use with the values its parameters already hold.

    Args:
        space: the search space.
        params: a valid parameter dict of ``space`` (the parent).
        roles: role overrides by parameter name, applied over :func:`infer_roles`.

    Returns:
        The morphs, in a deterministic order; every child is valid in ``space``, differs
        from the parent and from every other child.

    Raises:
        ConfigError: ``params`` is not valid in ``space``, or ``roles`` names a parameter
            the space does not search or a role not in :data:`ROLES`.
    """
    parent = space.validate(params)
    all_roles = infer_roles(space)
    for name, role in (roles or {}).items():
        if name not in all_roles:
            raise ConfigError(f"roles: {name!r} is not a searched parameter of the space")
        if role not in ROLES:
            raise ConfigError(f"roles: {name!r} has role {role!r}; roles are {list(ROLES)}")
        all_roles[name] = role

    out: list[Morph] = []
    seen: list[dict[str, Any]] = [parent]
    for p in space.parameters:
        if isinstance(p, FixedParam) or not space.is_active(p.name, parent):
            continue
        old = parent[p.name]
        for op, new in _steps(p, all_roles[p.name], old):
            child = space.validate({**parent, p.name: new})
            # Dicts compare by value, and a list keeps the order deterministic.
            if child in seen:
                continue
            seen.append(child)
            # "keep_ratio keep_ratio 0.5 -> 0.625" would say the name twice.
            label = op if op == p.name else f"{op} {p.name}"
            out.append(
                Morph(
                    op=op,
                    param=p.name,
                    params=child,
                    preserves_function=op in _PRESERVING_OPS,
                    description=f"{label} {old} -> {child[p.name]}",
                )
            )
    return out


def _steps(p: Param, role: str, v: Any) -> list[tuple[str, Any]]:
    """``(op, new value)`` candidates for one parameter.

    A step clipped at a bound gives back the current value; :func:`morphs` drops it.
    """
    if role in _OPS_UP_DOWN:
        up, down = _OPS_UP_DOWN[role]
        if isinstance(p, IntParam):
            if role == "width":
                hi = max(_round_half_up(v * WIDEN_FACTOR), v + 1)
                lo = min(_round_half_up(v / WIDEN_FACTOR), v - 1)
            else:
                hi, lo = v + 1, v - 1
            return _within(p, [(up, hi), (down, lo)], clip=role == "width")
        if isinstance(p, ChoiceParam):
            return _neighbours(p, v, up, down, by_value=True)
        if isinstance(p, FloatParam) and role == "width":
            return _scaled(p, v, WIDEN_FACTOR, up, down)
    elif role == "kernel":
        if isinstance(p, ChoiceParam):
            return [("kernel", c) for c in p.values if c != v]
        if isinstance(p, IntParam):
            # Steps of two keep an odd kernel odd, so "same" padding stays exact.
            return _within(p, [("kernel", v + 2), ("kernel", v - 2)], clip=False)
    elif role == "keep_ratio" and isinstance(p, FloatParam):
        return _scaled(p, v, FLOAT_FACTOR, "keep_ratio", "keep_ratio")
    op = "keep_ratio" if role == "keep_ratio" else "tweak"
    return _tweaks(p, v, op)


def _tweaks(p: Param, v: Any, op: str) -> list[tuple[str, Any]]:
    if isinstance(p, ChoiceParam):
        if p.ordered:
            return _neighbours(p, v, op, op, by_value=False)
        return [(op, c) for c in p.values if c != v]
    if isinstance(p, FloatParam):
        if p.log:
            return _scaled(p, v, FLOAT_FACTOR, op, op)
        step = LINEAR_STEP * (p.high - p.low)
        return [(op, _clip(p, _tidy(v + step))), (op, _clip(p, _tidy(v - step)))]
    if isinstance(p, IntParam):
        return _within(p, [(op, v + 1), (op, v - 1)], clip=False)
    return []


def _round_half_up(x: float) -> int:
    # round() rounds halves to even, which would make 5 * 1.5 widen to 8 but 3 * 1.5 to 4.
    return math.floor(x + 0.5)


def _tidy(x: float) -> float:
    # Drops float noise (0.1 + 0.05 = 0.15000000000000002) from values users read in logs.
    return float(f"{x:.12g}")


def _clip(p: IntParam | FloatParam, x: float) -> Any:
    return min(max(x, p.low), p.high)


def _within(p: IntParam, steps: list[tuple[str, int]], *, clip: bool) -> list[tuple[str, int]]:
    if clip:
        return [(op, _clip(p, x)) for op, x in steps]
    return [(op, x) for op, x in steps if p.low <= x <= p.high]


def _scaled(p: FloatParam, v: float, factor: float, up: str, down: str) -> list[tuple[str, Any]]:
    return [(up, _clip(p, _tidy(v * factor))), (down, _clip(p, _tidy(v / factor)))]


def _neighbours(
    p: ChoiceParam, v: Any, up: str, down: str, *, by_value: bool
) -> list[tuple[str, Any]]:
    values = list(p.values)
    numeric = all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in values)
    if by_value and numeric:
        values.sort()
    i = values.index(p.check(v))
    out: list[tuple[str, Any]] = []
    if i + 1 < len(values):
        out.append((up, values[i + 1]))
    if i > 0:
        out.append((down, values[i - 1]))
    return out
