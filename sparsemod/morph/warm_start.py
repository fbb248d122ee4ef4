"""Warm starts: a trained parent's weights copied into a freshly built child, Net2Net-style.

A widened or deepened child starts out computing what its parent computed instead of from
scratch. Matching is by module names and shapes only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

_GATES = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}


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
