"""How the cost models read the nodes of a traced graph: op names, layer kinds, tensors.

A graph holds ``torch.nn`` layers as modules (``call_module``), and functions and aten ops
by name (``call_function``: an exported PT2E graph has only these). The tables below name
both spellings of each kind the cost models tell apart: quantize and dequantize ops, views
(no new bytes), ops fused into the conv / linear before them, and conv / linear themselves.
Shapes and dtypes are those :func:`~sparsemod.objectives.tracer.trace` recorded.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx, nn

QUANTIZE = {
    "quantize_per_tensor",
    "quantize_per_channel",
    "quantize_per_tensor.default",
    "quantize_per_tensor.tensor",
    "quantize_per_channel.default",
}


DEQUANTIZE = {
    "dequantize_per_tensor",
    "dequantize_per_channel",
    "dequantize",
    "dequantize_per_tensor.default",
    "dequantize_per_tensor.tensor",
    "dequantize_per_channel.default",
}


# Ops whose output is a view of their first input: no new bytes.
VIEW_NAMES = {
    "view",
    "reshape",
    "flatten",
    "squeeze",
    "unsqueeze",
    "contiguous",
    "getitem",
    "__getitem__",
    "_unsafe_view",
    "slice",
    "select",
    "alias",
    "detach",
    "clone_view",
    "flatten.using_ints",
    "view.default",
    "reshape.default",
    "expand",
    "dropout",
    "identity",
    "unflatten",
}


VIEW_MODULES = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)


# Elementwise ops and batch norm: fused into a conv / linear they follow.
FUSE_NAMES = {
    "relu",
    "relu_",
    "relu6",
    "hardtanh",
    "hardtanh_",
    "sigmoid",
    "tanh",
    "gelu",
    "silu",
    "hardswish",
    "hardsigmoid",
    "leaky_relu",
    "elu",
    "batch_norm",
    "_native_batch_norm_legit_no_training",
    "clamp",
    "clip",
}


FUSE_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.Hardtanh,
    nn.Sigmoid,
    nn.Tanh,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.LeakyReLU,
    nn.ELU,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
)


CONV_LINEAR_NAMES = {"conv1d", "conv2d", "conv3d", "convolution", "linear", "addmm"}
CONV_LINEAR_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def target_name(n: fx.Node) -> str:
    """The op a node calls, by name: a module path, a method, or a function's base name."""
    t = n.target
    if isinstance(t, str):
        return t
    if t is operator.getitem:
        return "getitem"
    name = getattr(t, "__name__", None) or str(t)
    # aten ops: "aten::conv2d" / OpOverload "conv2d.default" -> conv2d
    name = str(name).split("::")[-1]
    return name.split(".")[0] if name.split(".")[0] in _ALL_BASE_NAMES else name


_ALL_BASE_NAMES = {
    n.split(".")[0] for n in QUANTIZE | DEQUANTIZE | VIEW_NAMES | FUSE_NAMES
} | CONV_LINEAR_NAMES


def module_of(gm: fx.GraphModule, n: fx.Node) -> nn.Module | None:
    """The layer a ``call_module`` node runs, or None for any other node."""
    return gm.get_submodule(n.target) if n.op == "call_module" else None


def get_attr(gm: fx.GraphModule, target: str) -> Any:
    """The tensor (or module) a ``get_attr`` node reads, by its dotted ``target``."""
    *path, name = target.split(".")
    owner: Any = gm
    for part in path:
        owner = getattr(owner, part)
    return getattr(owner, name)


def node_args(n: fx.Node) -> list[fx.Node]:
    """The nodes ``n`` reads."""
    return list(n.all_input_nodes)


def has_tensor(n: fx.Node) -> bool:
    """Whether the recorded run saw ``n`` write a tensor."""
    return bool(n.meta.get("sm_tensors"))


def real_users(n: fx.Node) -> list[fx.Node]:
    """The nodes that read ``n`` and write a tensor, and the graph output."""
    return [u for u in n.users if u.op == "output" or has_tensor(u)]


def elem_bytes(dtype: torch.dtype) -> int:
    """Bytes of one element of ``dtype`` (a bool takes a byte)."""
    if dtype == torch.bool:
        return 1
    return torch.empty((), dtype=dtype).element_size()
