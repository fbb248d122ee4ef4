"""Network morphism: one-step mutations of a parameter dict, and warm starts from a parent.

The morphism rounds of the search take the current Pareto networks and try their
neighbours. :func:`morphs` lists every single-step change of one parameter dict, chosen by
the *role* each parameter plays (width, depth, kernel size, pruning keep ratio, anything
else). :func:`inherit_weights` then copies a trained parent's weights into a freshly built
child, Net2Net-style, so that a widened or deepened child starts out computing what its
parent computed instead of from scratch.

Both work on names only: nothing here knows which builder made a network beyond the
naming conventions of the built-in spaces (``b{k}_*``, ``fc{k}_units``, ``units{k}``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

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
# A parameter of a repeated structure only matters while its index is within the count.
_GATED = (
    (re.compile(r"b(\d+)_.+"), "num_blocks"),
    (re.compile(r"fc(\d+)_units"), "num_fc"),
    (re.compile(r"units(\d+)"), "num_layers"),
)
_GATES = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}


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
    smaller one. Parameters that cannot change the network are skipped: ``b{k}_*`` when
    ``k > num_blocks``, ``fc{k}_units`` when ``k > num_fc``, ``units{k}`` when
    ``k > num_layers`` (each rule only when the count parameter is in the space). Raising a
    count brings the next block into use with the values its parameters already hold.

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
        if isinstance(p, FixedParam) or not _matters(p.name, parent):
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


def _matters(name: str, params: Mapping[str, Any]) -> bool:
    for pattern, count in _GATED:
        m = pattern.fullmatch(name)
        if m and count in params and int(m.group(1)) > int(params[count]):
            return False
    return True


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


# --------------------------------------------------------------------------- weights


def inherit_weights(parent: nn.Module, child: nn.Module) -> dict[str, int]:
    """Warm start a freshly built child from a trained parent (Net2Net-style).

    Every entry of the child's ``state_dict`` whose name is also in the parent's is
    handled once:

    * same shape: copied;
    * larger in some dimensions (a widened layer, a larger kernel): the parent's values go
      into the leading slice (the centre, for convolution kernels). For a ``Linear`` or
      convolution, the rows that came from the parent get zeros in every new input column
      (and around a grown kernel), so new units contribute nothing; new output rows, and
      new BatchNorm channels, keep the child's fresh initialisation. Recurrent layers
      (``LSTM``, ``GRU``, ``RNN``) stack their gates along dimension 0, so each gate block is
      grown separately. A ``Linear`` right after an ``nn.Flatten`` reads channel-major
      ``C*H*W`` features; it is grown channel by channel when ``H*W`` is unchanged, and left
      fresh when the spatial size changed (the old columns would mean other pixels);
    * smaller in any dimension, or a different layer type: left fresh.

    Entries new to the child are fresh, except that a new convolution with as many output
    as input channels and "same" padding (stride 1, odd kernel) starts as the identity
    (``dirac_``, zero bias), and so does a new BatchNorm right after it (running mean 0,
    variance 1, weight ``sqrt(1 + eps)``, bias 0). After a ReLU, such a conv-BN-ReLU passes
    its input through unchanged.

    In eval mode the child then computes exactly what the parent did for every widen of the
    built-in CNN, MLP and RNN (LSTM and GRU), and for a deepen of the CNN whose new layers
    are square standard or depthwise layers without a change of the feature-map size. Other
    morphs get a partial warm start. Bidirectional recurrent layers are not grown
    gate-correctly in their consumers (their outputs concatenate both directions).

    Args:
        parent: the trained parent; not changed.
        child: the freshly built child; changed in place.

    Returns:
        Counts of child entries: ``{"copied": n, "partial": n, "fresh": n, "identity": n}``.
    """
    counts = {"copied": 0, "partial": 0, "fresh": 0, "identity": 0}
    parent_sd = parent.state_dict()
    child_sd = child.state_dict()
    parent_mods = dict(parent.named_modules())
    child_leaves = _leaves(child)
    parent_leaves = _leaves(parent)
    identity = _identity_init(child, child_leaves, parent_mods)

    with torch.no_grad():
        for key, dst in child_sd.items():
            if key in identity:
                counts["identity"] += 1
                continue
            src = parent_sd.get(key)
            mod_name, _, entry = key.rpartition(".")
            mod = child.get_submodule(mod_name)
            pmod = parent_mods.get(mod_name)
            if src is None or pmod is None or type(pmod) is not type(mod):
                counts["fresh"] += 1
                continue
            if isinstance(mod, nn.Linear) and entry == "weight":
                kind = _inherit_linear(dst, src, mod_name, child_leaves, parent_leaves)
            elif tuple(dst.shape) == tuple(src.shape):
                dst.copy_(src)
                kind = "copied"
            elif isinstance(mod, tuple(_GATES)):
                gates = next(g for cls, g in _GATES.items() if isinstance(mod, cls))
                kind = _inherit_recurrent(dst, src, entry, gates)
            elif isinstance(mod, nn.modules.conv._ConvNd) and entry == "weight":
                kind = _grow(dst, src, consumer=True, centred=range(2, dst.dim()))
            else:
                kind = _grow(dst, src, consumer=dst.dim() >= 2)
            counts[kind] += 1
    return counts


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    # Registration order; for an nn.Sequential it is also the order of execution.
    return [(n, m) for n, m in model.named_modules() if next(m.children(), None) is None]


def _grow(
    dst: torch.Tensor, src: torch.Tensor, *, consumer: bool, centred: range = range(0)
) -> str:
    """Copy ``src`` into a larger ``dst``; returns the count key."""
    if dst.dim() != src.dim() or any(d < s for d, s in zip(dst.shape, src.shape)):
        return "fresh"
    region = []
    for i, (d, s) in enumerate(zip(dst.shape, src.shape)):
        offset = 0
        if i in centred:
            if (d - s) % 2:
                return "fresh"
            offset = (d - s) // 2
        region.append(slice(offset, offset + s))
    src = src.to(dst.dtype)
    if consumer:
        # The parent's output rows see zeros from every input the parent did not have.
        rows = dst[: src.shape[0]]
        rows.zero_()
        rows[(slice(None), *region[1:])] = src
    else:
        dst[tuple(region)] = src
    return "partial"


def _inherit_linear(
    dst: torch.Tensor,
    src: torch.Tensor,
    name: str,
    child_leaves: list[tuple[str, nn.Module]],
    parent_leaves: list[tuple[str, nn.Module]],
) -> str:
    c_child = _flatten_channels(name, child_leaves)
    c_parent = _flatten_channels(name, parent_leaves)
    if c_child is None or c_parent is None:
        if tuple(dst.shape) == tuple(src.shape):
            dst.copy_(src)
            return "copied"
        return _grow(dst, src, consumer=True)
    spatial_child, rem_child = divmod(dst.shape[1], c_child)
    spatial_parent, rem_parent = divmod(src.shape[1], c_parent)
    if rem_child or rem_parent or spatial_child != spatial_parent:
        # A different H*W puts other pixels behind every column: nothing lines up.
        return "fresh"
    if tuple(dst.shape) == tuple(src.shape):
        dst.copy_(src)
        return "copied"
    # Viewed as (out, C, H*W), new channels are new slices of dim 1, as for a conv.
    return _grow(
        dst.view(dst.shape[0], c_child, spatial_child),
        src.reshape(src.shape[0], c_parent, spatial_parent),
        consumer=True,
    )


def _flatten_channels(name: str, leaves: list[tuple[str, nn.Module]]) -> int | None:
    """Channels of the feature map a Linear reads through an ``nn.Flatten``, if it does."""
    names = [n for n, _ in leaves]
    if name not in names:
        return None
    i = names.index(name)
    if i == 0 or not isinstance(leaves[i - 1][1], nn.Flatten):
        return None
    for _, m in reversed(leaves[: i - 1]):
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            return int(m.num_features)
        if isinstance(m, nn.modules.conv._ConvNd):
            return int(m.out_channels)
        if isinstance(m, (nn.Linear, nn.Flatten)):
            return None
    return None


def _inherit_recurrent(dst: torch.Tensor, src: torch.Tensor, entry: str, gates: int) -> str:
    if not entry.startswith(("weight_ih", "weight_hh", "bias_ih", "bias_hh")):
        return _grow(dst, src, consumer=dst.dim() >= 2)
    if dst.dim() != src.dim() or dst.shape[0] % gates or src.shape[0] % gates:
        return "fresh"
    h_child, h_parent = dst.shape[0] // gates, src.shape[0] // gates
    if h_child < h_parent or any(d < s for d, s in zip(dst.shape[1:], src.shape[1:])):
        return "fresh"
    for g in range(gates):
        _grow(
            dst[g * h_child : (g + 1) * h_child],
            src[g * h_parent : (g + 1) * h_parent],
            consumer=dst.dim() >= 2,
        )
    return "partial"


def _identity_init(
    child: nn.Module,
    child_leaves: list[tuple[str, nn.Module]],
    parent_mods: Mapping[str, nn.Module],
) -> set[str]:
    """Make new square "same" convolutions (and their BatchNorm) identities.

    Returns:
        The ``state_dict`` keys set.
    """
    keys: set[str] = set()
    with torch.no_grad():
        for i, (name, conv) in enumerate(child_leaves):
            if name in parent_mods or not _is_square_same_conv(conv):
                continue
            nn.init.dirac_(conv.weight, groups=conv.groups)
            if conv.bias is not None:
                conv.bias.zero_()
            keys.update(f"{name}.{k}" for k in conv.state_dict())
            if i + 1 == len(child_leaves):
                continue
            bn_name, bn = child_leaves[i + 1]
            if (
                bn_name in parent_mods
                or not isinstance(bn, nn.modules.batchnorm._BatchNorm)
                or bn.num_features != conv.out_channels
            ):
                continue
            if bn.track_running_stats and bn.running_mean is not None:
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0)
            if bn.affine:
                bn.weight.fill_(math.sqrt(1.0 + bn.eps))
                bn.bias.zero_()
            keys.update(f"{bn_name}.{k}" for k in bn.state_dict())
    return keys


def _is_square_same_conv(m: nn.Module) -> bool:
    if not isinstance(m, nn.modules.conv._ConvNd) or m.transposed:
        return False
    if m.in_channels != m.out_channels or any(s != 1 for s in m.stride):
        return False
    if m.padding == "same":
        return True
    if isinstance(m.padding, str):
        return False
    return all(
        k % 2 == 1 and p == d * (k - 1) // 2
        for k, p, d in zip(m.kernel_size, m.padding, m.dilation)
    )
