"""L1 structured pruning: remove whole channels / neurons and rebuild smaller layers.

Every conv (``groups == 1``) and linear layer whose outputs do not reach the network's
output (the classifier keeps its outputs) is a *root*: it keeps ``max(1,
round(keep_ratio * out))`` of its output channels, those whose filters have the largest L1
norm (Li et al., 2017). The layers that read those channels follow: batch norm and
depthwise convs keep the same channels, the next conv / linear keeps the matching input
slices, and a linear after ``Flatten`` keeps the channel-major blocks of each channel.
Elementwise activations, dropout and pooling pass the channels through.

Layers are replaced by new, smaller ``nn.Conv*`` / ``nn.Linear`` / ``nn.BatchNorm*``
modules, so FLOPs, working memory and model size all fall. Graphs whose channels meet
another tensor (residual adds, concatenation) or pass through an op this module does not
know raise :class:`CompressionError` naming the layer.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

from sparsemod.compress.base import Pruner
from sparsemod.compress.masks import check_keep_ratio, count_weights
from sparsemod.compress.step import PruneStep
from sparsemod.errors import CompressionError
from sparsemod.objectives.tracer import symbolic_trace

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
)
_POOL = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)
_ELEMENTWISE_FNS = {
    F.relu,
    F.relu6,
    F.leaky_relu,
    F.elu,
    F.gelu,
    F.silu,
    F.dropout,
    F.hardswish,
    torch.relu,
    torch.sigmoid,
    torch.tanh,
}
_ELEMENTWISE_METHODS = {"relu", "relu_", "sigmoid", "tanh", "contiguous"}

# Layouts of a root's output as it flows on: channels at dim 1 with spatial dims after
# (a conv's output), features in the last dim (a linear's), or flattened channel-major.
_SPATIAL, _FEATURES, _FLAT = "spatial", "features", "flat"


@dataclass
class Root:
    """A layer whose output channels are pruned, and the layers that follow its channels.

    ``followers`` are ``(module name, kind, positions)`` with kind ``bn`` / ``depthwise``
    (same channels), ``in`` (input slice) or ``flat`` (``positions`` entries per channel).
    """

    name: str
    module: nn.Module
    followers: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return self.module.weight.shape[0]


def plan(model: nn.Module) -> list[Root]:
    """The roots of ``model`` and who follows each one's channels.

    Raises:
        CompressionError: the model cannot be traced, a root's channels reach an op this
            module cannot follow (naming the layer and the op), or nothing can be pruned.
    """
    try:
        gm = symbolic_trace(model)
    except Exception as exc:  # fx raises many kinds; the user needs the reason
        raise CompressionError(
            f"l1_structured: {type(model).__name__} cannot be traced by torch.fx ({exc})"
        ) from exc
    roots = []
    blocked = []
    for n in gm.graph.nodes:
        if n.op != "call_module":
            continue
        m = gm.get_submodule(n.target)
        if isinstance(m, nn.RNNBase):
            blocked.append(f"{type(m).__name__} {n.target!r}")
        if isinstance(m, nn.Linear) or (isinstance(m, _CONV) and m.groups == 1):
            root = Root(n.target, m)
            layout = _FEATURES if isinstance(m, nn.Linear) else _SPATIAL
            if not _follow(gm, n, layout, root):
                roots.append(root)
    if not roots:
        extra = f"; {', '.join(blocked)} cannot be shrunk" if blocked else ""
        raise CompressionError(
            f"l1_structured found no conv / linear layer of {type(model).__name__} whose "
            f"output channels it can remove (the classifier keeps its outputs{extra})"
        )
    return roots


def _cannot(root: Root, what: str) -> CompressionError:
    return CompressionError(
        f"l1_structured cannot prune the channels of {root.name!r}: they reach {what}; "
        "it follows chains of conv / linear / batch norm / pooling / activations (residual "
        "adds and concatenations are not supported)"
    )


def _follow(gm: fx.GraphModule, start: fx.Node, layout: str, root: Root) -> bool:
    """Record who follows ``root``'s channels; True when they reach the network output."""
    classifier = False
    todo = [(start, layout)]
    while todo:
        node, layout = todo.pop()
        for u in node.users:
            if u.op == "output":
                classifier = True
                continue
            if u.op == "call_module":
                nxt = _follow_module(gm.get_submodule(u.target), u, layout, root)
            elif u.op == "call_function" and u.target in _ELEMENTWISE_FNS and u.args[0] is node:
                nxt = layout
            elif u.op == "call_method" and u.target in _ELEMENTWISE_METHODS:
                nxt = layout
            elif _is_flatten_call(u) and layout == _SPATIAL:
                nxt = _FLAT
            else:
                name = u.target if isinstance(u.target, str) else getattr(u.target, "__name__", u)
                if u.target is operator.add or name in ("add", "iadd", "__add__"):
                    raise _cannot(root, f"an addition ({u.name}), as in a residual block")
                raise _cannot(root, f"{u.op} {name!r}")
            if nxt is not None:
                todo.append((u, nxt))
    return classifier


def _follow_module(m: nn.Module, u: fx.Node, layout: str, root: Root) -> str | None:
    """The layout after module ``m``, or None where the channels stop (a consumer)."""
    c = root.channels
    if isinstance(m, _ELEMENTWISE):
        return layout
    if isinstance(m, _POOL) and layout == _SPATIAL:
        return layout
    if isinstance(m, _BN) and layout != _FLAT and m.num_features == c:
        root.followers.append((u.target, "bn", 1))
        return layout
    if isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1:
        return _FLAT if layout == _SPATIAL else layout
    if isinstance(m, _CONV) and layout == _SPATIAL and m.in_channels == c:
        if m.groups == 1:
            root.followers.append((u.target, "in", 1))
            return None
        if m.groups == c and m.out_channels == c:
            root.followers.append((u.target, "depthwise", 1))
            return layout
    if isinstance(m, nn.Linear) and layout == _FEATURES and m.in_features == c:
        root.followers.append((u.target, "in", 1))
        return None
    if isinstance(m, nn.Linear) and layout == _FLAT and m.in_features % c == 0:
        root.followers.append((u.target, "flat", m.in_features // c))
        return None
    raise _cannot(root, f"{type(m).__name__} {u.target!r} ({layout} layout)")


def _is_flatten_call(u: fx.Node) -> bool:
    if not (
        (u.op == "call_function" and u.target is torch.flatten)
        or (u.op == "call_method" and u.target == "flatten")
    ):
        return False
    start = u.args[1] if len(u.args) > 1 else u.kwargs.get("start_dim", 0)
    end = u.args[2] if len(u.args) > 2 else u.kwargs.get("end_dim", -1)
    return start == 1 and end == -1


def shrink(model: nn.Module, roots: list[Root], kept: Mapping[str, torch.Tensor]) -> None:
    """Rebuild the roots and their followers with only the ``kept`` output channels.

    Args:
        model: the model, changed in place.
        roots: from :func:`plan`.
        kept: per root name, the (sorted) indices of the output channels to keep; a root
            missing here keeps all.
    """
    out_idx: dict[str, torch.Tensor] = {}
    in_idx: dict[str, torch.Tensor] = {}
    chan_idx: dict[str, torch.Tensor] = {}
    for root in roots:
        if root.name not in kept:
            continue
        idx = kept[root.name].to(torch.long).cpu()
        out_idx[root.name] = idx
        for name, kind, positions in root.followers:
            if kind in ("bn", "depthwise"):
                chan_idx[name] = idx
            elif kind == "in":
                in_idx[name] = idx
            else:
                in_idx[name] = (idx[:, None] * positions + torch.arange(positions)).reshape(-1)
    for name in {*out_idx, *in_idx, *chan_idx}:
        old = model.get_submodule(name)
        new = _rebuild(old, out_idx.get(name), in_idx.get(name), chan_idx.get(name))
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, new)


def _take(t: torch.Tensor | None, idx: torch.Tensor | None, dim: int) -> torch.Tensor | None:
    if t is None or idx is None:
        return t
    return t.index_select(dim, idx.to(t.device))


def _rebuild(
    m: nn.Module,
    out: torch.Tensor | None,
    inp: torch.Tensor | None,
    chan: torch.Tensor | None,
) -> nn.Module:
    with torch.no_grad():
        if isinstance(m, _BN):
            return _rebuild_bn(m, chan)
        w, b = m.weight.detach(), None if m.bias is None else m.bias.detach()
        if chan is not None:  # depthwise: one filter per channel, channels follow the input
            out = chan
        w, b = _take(w, out, 0), _take(b, out, 0)
        if chan is None:
            w = _take(w, inp, 1)
        kw = {"bias": b is not None, "device": w.device, "dtype": w.dtype}
        if isinstance(m, nn.Linear):
            new = nn.Linear(w.shape[1], w.shape[0], **kw)
        else:
            groups = w.shape[0] if chan is not None else m.groups
            new = type(m)(
                w.shape[1] * groups,
                w.shape[0],
                m.kernel_size,
                stride=m.stride,
                padding=m.padding,
                dilation=m.dilation,
                groups=groups,
                padding_mode=m.padding_mode,
                **kw,
            )
        new.weight.copy_(w)
        if b is not None:
            new.bias.copy_(b)
    return new.train(m.training)


def _rebuild_bn(m: nn.Module, chan: torch.Tensor) -> nn.Module:
    ref = m.weight if m.weight is not None else m.running_mean
    new = type(m)(
        len(chan),
        eps=m.eps,
        momentum=m.momentum,
        affine=m.affine,
        track_running_stats=m.track_running_stats,
        device=None if ref is None else ref.device,
        dtype=None if ref is None else ref.dtype,
    )
    for name in ("weight", "bias", "running_mean", "running_var"):
        src = getattr(m, name)
        if src is not None:
            getattr(new, name).copy_(_take(src.detach(), chan, 0))
    if m.num_batches_tracked is not None:
        new.num_batches_tracked.copy_(m.num_batches_tracked)
    return new.train(m.training)


def l1_keep(root: Root, keep_ratio: float) -> torch.Tensor:
    """Sorted indices of the output channels with the largest filter L1 norms."""
    n = root.channels
    k = max(1, round(keep_ratio * n))
    norms = root.module.weight.detach().abs().reshape(n, -1).sum(dim=1)
    return torch.topk(norms.cpu(), k).indices.sort().values


class L1Structured(Pruner):
    """Remove whole channels / neurons by L1 norm and rebuild smaller layers.

    ``keep_ratio`` is the share of the output channels each root keeps; the step's weight
    counts are the prunable weights before and after the rebuild, and its detail lists
    ``channels`` as ``{layer: [kept, before]}``.
    """

    name = "l1_structured"

    def prune(self, model: nn.Module, keep_ratio: float) -> PruneStep:
        keep_ratio = check_keep_ratio(keep_ratio)
        roots = plan(model)
        before, _ = count_weights(model)
        kept = {r.name: l1_keep(r, keep_ratio) for r in roots}
        channels = {r.name: [len(kept[r.name]), r.channels] for r in roots}
        shrink(model, roots, kept)
        after, _ = count_weights(model)
        return PruneStep(self.name, keep_ratio, before, after, detail={"channels": channels})


def shrink_to_state(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Shrink a freshly built model to the channel counts a saved state dict has.

    Rebuilds the layers of an ``l1_structured`` network so that its state dict loads: the
    counts come from the saved weights (``<layer>.weight``, or ``<layer>.weight_int8`` for
    sparsemod's int8 layers). Does nothing when the shapes already match.
    """
    sizes = {}
    for key, t in state.items():
        for suffix in (".weight", ".weight_int8"):
            if key.endswith(suffix):
                sizes[key[: -len(suffix)]] = t.shape[0]
    modules = dict(model.named_modules())
    if all(
        not hasattr(modules.get(n), "weight") or modules[n].weight.shape[0] == s
        for n, s in sizes.items()
        if n in modules
    ):
        return
    roots = plan(model)
    kept = {r.name: torch.arange(sizes[r.name]) for r in roots if sizes.get(r.name, 0)}
    shrink(model, roots, {n: k for n, k in kept.items() if len(k) != modules[n].weight.shape[0]})
