"""The hardware objectives, measured on the network as it ships.

Every function here reads a real forward pass (a ``torch.fx`` graph with the shapes and
dtypes recorded while running one input) and counts bytes and multiply-accumulates the
way DESIGN.md defines them. They accept a float model, a pruned model, a model quantized
with PT2E (an exported ``GraphModule`` holding int8 weights) and a model whose layers were
replaced by sparsemod's dynamic int8 layers (any module with a ``deployed_tensors()``
method).

Definitions (the unit tests count each one by hand):

* model size: per weight tensor ``min(dense, sparse)`` with ``dense = ceil(n*bits/8)`` and
  ``sparse = ceil(nnz*bits/8) + min(ceil(n/8), csr)``; CSR of the tensor viewed as
  ``(out, rest)`` costs ``nnz * w(rest-1) + (out+1) * w(nnz)`` with ``w(v)`` = 1, 2 or 4 bytes,
  the smallest unsigned int that holds ``v``. Biases and other 1-d tensors are dense.
  Quantization scales cost 4 bytes each, zero points 1 byte each; each distinct activation
  quantization (scale, zero point) pair costs 5 bytes. A batch norm that follows a conv /
  linear folds into it (it adds a 4-byte bias per channel only when the layer had none); a
  lone batch norm costs a scale and a shift per channel.
* working memory: peak bytes of activations alive at once, op by op (see
  :func:`working_memory_bytes`).
* FLOPs: 2 per multiply-accumulate of conv, linear and recurrent layers; pooling,
  activations and additions are not counted.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable
from typing import Any

import torch
from torch import fx, nn

from sparsemod.errors import MeasureError
from sparsemod.objectives.tracer import trace

FLOAT_BITS = 32
SCALE_BYTES = 4
ZERO_POINT_BYTES = 1

_QUANTIZE = {
    "quantize_per_tensor",
    "quantize_per_channel",
    "quantize_per_tensor.default",
    "quantize_per_tensor.tensor",
    "quantize_per_channel.default",
}
_DEQUANTIZE = {
    "dequantize_per_tensor",
    "dequantize_per_channel",
    "dequantize",
    "dequantize_per_tensor.default",
    "dequantize_per_tensor.tensor",
    "dequantize_per_channel.default",
}
# Ops whose output is a view of their first input: no new bytes.
_VIEW_NAMES = {
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
_VIEW_MODULES = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)
# Elementwise ops and batch norm: fused into a conv / linear they follow.
_FUSE_NAMES = {
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
_FUSE_MODULES = (
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
_CONV_LINEAR_NAMES = {"conv1d", "conv2d", "conv3d", "convolution", "linear", "addmm"}
_CONV_LINEAR_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_RNN_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _target_name(n: fx.Node) -> str:
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
    n.split(".")[0] for n in _QUANTIZE | _DEQUANTIZE | _VIEW_NAMES | _FUSE_NAMES
} | _CONV_LINEAR_NAMES


def _module(gm: fx.GraphModule, n: fx.Node) -> nn.Module | None:
    return gm.get_submodule(n.target) if n.op == "call_module" else None


def _get_attr(gm: fx.GraphModule, target: str) -> Any:
    *path, name = target.split(".")
    owner: Any = gm
    for part in path:
        owner = getattr(owner, part)
    return getattr(owner, name)


def _node_args(n: fx.Node) -> list[fx.Node]:
    return list(n.all_input_nodes)


def _has_tensor(n: fx.Node) -> bool:
    return bool(n.meta.get("sm_tensors"))


def _real_users(n: fx.Node) -> list[fx.Node]:
    return [u for u in n.users if u.op == "output" or _has_tensor(u)]


# ----------------------------------------------------------------------------- working memory


def working_memory_bytes(
    model: nn.Module, example_input: torch.Tensor, *, activation_bytes: int | None = None
) -> int:
    """Peak bytes of activations alive at once for one input (batch 1).

    Ops run in graph order. A tensor is alive from the op that writes it to the last op
    that reads it (the graph output is read at the end). Views, reshapes, dropout,
    (de)quantize and tuple indexing alias their input; batch norm and elementwise
    activations that follow a conv / linear are fused into it; a quantize op makes the
    tensor it writes int8 (1 byte an element); everything else writes a new tensor of its
    recorded dtype. An RNN's output, hidden and cell state are one tensor group. Weights and
    anything computed from weights alone are not working memory.

    Args:
        model: the network (float, pruned or quantized).
        example_input: one input of batch size 1 (a larger batch is cut to 1).
        activation_bytes: predicts the memory of a static int8 network from its float twin:
            every activation counts at this many bytes an element instead of its dtype's
            size, except what the graph returns. That keeps its dtype's size, as it does in
            the int8 network, where a quantize op precedes each op that reads an activation
            and the logits leave dequantized, as floats.

    Returns:
        The peak in bytes.

    Raises:
        MeasureError: the model cannot be traced.
    """
    return _working_memory(trace(model, example_input[:1]), activation_bytes)


def _working_memory(gm: fx.GraphModule, activation_bytes: int | None) -> int:
    nodes = list(gm.graph.nodes)
    index = {n: i for i, n in enumerate(nodes)}
    buffer_of: dict[fx.Node, int] = {}
    sizes: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    roots: list[str] = []
    writers: list[fx.Node] = []
    weightish: set[fx.Node] = set()

    def new_buffer(n: fx.Node, nbytes: int, root: str) -> None:
        buffer_of[n] = len(sizes)
        writers.append(n)
        sizes.append(nbytes)
        starts.append(index[n])
        ends.append(index[n])
        roots.append(root)

    for n in nodes:
        if n.op == "output":
            for a in _node_args(n):
                if a in buffer_of:
                    ends[buffer_of[a]] = len(nodes)
                    if activation_bytes is not None:
                        # Nothing quantizes the outputs: they keep their dtype's size.
                        sizes[buffer_of[a]] = _recorded_bytes(writers[buffer_of[a]], None)
            continue
        if n.op == "get_attr":
            weightish.add(n)
            continue
        if not _has_tensor(n) and n.op != "placeholder":
            continue
        acts = [a for a in _node_args(n) if a in buffer_of]
        if n.op != "placeholder" and not acts:
            weightish.add(n)  # e.g. dequantizing a weight
            continue
        for a in acts:
            ends[buffer_of[a]] = max(ends[buffer_of[a]], index[n])
        kind, root = _classify(gm, n)
        nbytes = _recorded_bytes(n, activation_bytes)
        if n.op == "placeholder":
            new_buffer(n, nbytes, "input")
        elif kind in ("view", "dequantize"):
            buffer_of[n] = buffer_of[acts[0]]
        elif kind == "quantize":
            b = buffer_of[acts[0]]
            buffer_of[n] = b
            sizes[b] = math.prod(n.meta["sm_tensors"][0][0])
        elif (
            kind == "fuse"
            and roots[buffer_of[acts[0]]] == "conv_linear"
            and len(_real_users(acts[0])) == 1
        ):
            buffer_of[n] = buffer_of[acts[0]]
        else:
            new_buffer(n, nbytes, root)

    # Memory only grows when a tensor is created, so the peak is at one of those moments.
    peak = 0
    for start in starts:
        alive = sum(sizes[o] for o in range(len(sizes)) if starts[o] <= start <= ends[o])
        peak = max(peak, alive)
    return int(peak)


def _recorded_bytes(n: fx.Node, activation_bytes: int | None) -> int:
    """Bytes of a node's output tensors: their dtype's size, or ``activation_bytes``."""
    return sum(
        math.prod(s) * (activation_bytes or _elem_bytes(d)) for s, d in n.meta.get("sm_tensors", [])
    )


def _classify(gm: fx.GraphModule, n: fx.Node) -> tuple[str, str]:
    """(how the node treats memory, what kind of op roots its buffer)."""
    m = _module(gm, n)
    if m is not None:
        if isinstance(m, _VIEW_MODULES):
            return "view", "view"
        if isinstance(m, _FUSE_MODULES):
            return "fuse", "other"
        if isinstance(m, _CONV_LINEAR_MODULES) or getattr(m, "fusable_root", False):
            return "new", "conv_linear"
        return "new", "other"
    name = _target_name(n)
    if name in _QUANTIZE or name.split(".")[0] in {q.split(".")[0] for q in _QUANTIZE}:
        return "quantize", "other"
    if name in _DEQUANTIZE or name.split(".")[0] in {q.split(".")[0] for q in _DEQUANTIZE}:
        return "dequantize", "other"
    base = name.split(".")[0]
    if base in _VIEW_NAMES:
        return "view", "view"
    if base in _FUSE_NAMES:
        return "fuse", "other"
    if base in _CONV_LINEAR_NAMES:
        return "new", "conv_linear"
    return "new", "other"


def _elem_bytes(dtype: torch.dtype) -> int:
    if dtype == torch.bool:
        return 1
    return torch.empty((), dtype=dtype).element_size()


# ----------------------------------------------------------------------------- FLOPs


def flops(model: nn.Module, example_input: torch.Tensor) -> int:
    """FLOPs of one inference (batch 1): 2 per multiply-accumulate.

    Conv, linear and recurrent layers are counted from the shapes of a real forward
    pass, so a layer shrunk by structured pruning counts less; zeros left by unstructured
    pruning are still multiplied and still count.

    Args:
        model: the network (float, pruned or quantized).
        example_input: one input (a larger batch is cut to 1).

    Returns:
        FLOPs as an int.

    Raises:
        MeasureError: the model cannot be traced.
    """
    return _flops(trace(model, example_input[:1]))


def _flops(gm: fx.GraphModule) -> int:
    macs = 0
    for n in gm.graph.nodes:
        if not _has_tensor(n):
            continue
        out_shape = n.meta["sm_tensors"][0][0]
        m = _module(gm, n)
        if m is not None:
            macs += _module_macs(m, n, out_shape)
            continue
        name = _target_name(n).split(".")[0]
        if name in {"conv1d", "conv2d", "conv3d", "convolution", "linear"} and len(n.args) > 1:
            w = n.args[1]
            if isinstance(w, fx.Node) and _has_tensor(w):
                w_shape = w.meta["sm_tensors"][0][0]
                macs += math.prod(out_shape) * math.prod(w_shape[1:])
    return int(2 * macs)


def _module_macs(m: nn.Module, n: fx.Node, out_shape: tuple[int, ...]) -> int:
    if hasattr(m, "macs"):
        in_shape = n.all_input_nodes[0].meta["sm_tensors"][0][0]
        return int(m.macs(in_shape))
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
        return math.prod(out_shape) * math.prod(m.weight.shape[1:])
    if isinstance(m, nn.RNNBase):
        in_shape = n.all_input_nodes[0].meta["sm_tensors"][0][0]
        return rnn_macs(
            m.mode,
            in_shape,
            m.input_size,
            m.hidden_size,
            m.num_layers,
            m.bidirectional,
            m.batch_first,
        )
    return 0


def rnn_macs(
    mode: str,
    in_shape: tuple[int, ...],
    input_size: int,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    batch_first: bool,
) -> int:
    """Multiply-accumulates of a stacked LSTM / GRU / RNN over one input sequence.

    Per time step and direction, layer ``l`` does ``gates * hidden * (in_l + hidden)`` with
    ``in_l`` the input size for the first layer and ``hidden * directions`` after it.
    """
    gates = _RNN_GATES[mode]
    dirs = 2 if bidirectional else 1
    if len(in_shape) == 2:
        steps, batch = in_shape[0], 1
    else:
        steps, batch = (in_shape[1], in_shape[0]) if batch_first else (in_shape[0], in_shape[1])
    per_step = 0
    for layer in range(num_layers):
        in_l = input_size if layer == 0 else hidden_size * dirs
        per_step += dirs * gates * hidden_size * (in_l + hidden_size)
    return steps * batch * per_step


def latency_seconds(flop_count: int, target_flops: float) -> float:
    """Latency on the target device: FLOPs / the device's operations per second."""
    if not target_flops > 0:
        raise MeasureError(f"target flops must be > 0, got {target_flops!r}")
    return flop_count / target_flops


# ----------------------------------------------------------------------------- model size


def index_width(max_value: int) -> int:
    """Bytes of the smallest unsigned integer type that holds ``max_value``."""
    if max_value < 2**8:
        return 1
    if max_value < 2**16:
        return 2
    return 4


def tensor_bytes(t: torch.Tensor, bits: int, sparse: bool = True) -> int:
    """Bytes to store one tensor: the smaller of dense and sparse (mask or CSR) storage.

    Args:
        t: the tensor (its zeros are what sparse storage skips).
        bits: bits per stored value (32 float, 8 int8).
        sparse: False for tensors always stored dense (biases).
    """
    n = t.numel()
    dense = math.ceil(n * bits / 8)
    if not sparse or n == 0:
        return dense
    nnz = int(torch.count_nonzero(t).item())
    rows = t.shape[0] if t.dim() > 0 else 1
    cols = n // rows if rows else 0
    mask = math.ceil(n / 8)
    csr = nnz * index_width(max(cols - 1, 0)) + (rows + 1) * index_width(nnz)
    return min(dense, math.ceil(nnz * bits / 8) + min(mask, csr))


def model_size_bytes(model: nn.Module, *, int8_layers: tuple[type[nn.Module], ...] = ()) -> int:
    """Bytes to store every parameter of the model as deployed (see the module doc).

    Args:
        model: a float, pruned, PT2E-quantized or dynamically quantized model.
        int8_layers: float layers of these types are counted as int8 would store them (a
            byte a weight, a scale and a zero point per output channel, float biases);
            predicts the size of a quantized network from its float twin.

    Returns:
        The size in bytes.

    Raises:
        MeasureError: the model cannot be traced.
    """
    return _model_size(trace(model), int8_layers)


def _model_size(gm: fx.GraphModule, int8_layers: tuple[type[nn.Module], ...] = ()) -> int:
    if any(
        _target_name(n).split(".")[0]
        in {"quantize_per_tensor", "dequantize_per_channel", "dequantize_per_tensor"}
        for n in gm.graph.nodes
        if n.op == "call_function"
    ):
        return _pt2e_size(gm)
    total = 0
    seen: set[str] = set()
    for n in gm.graph.nodes:
        if n.op == "get_attr":
            if not n.users:  # exported graphs keep the unused float originals
                continue
            t = _get_attr(gm, n.target)
            if isinstance(t, torch.Tensor) and n.target not in seen:
                seen.add(n.target)
                total += tensor_bytes(t, _bits_of(t), sparse=t.dim() > 1)
            continue
        if n.op != "call_module" or n.target in seen:
            continue
        seen.add(n.target)
        total += _module_bytes(gm, n, int8_layers)
    return int(total)


def _bits_of(t: torch.Tensor) -> int:
    return 8 * _elem_bytes(t.dtype) if t.dtype != torch.bool else 1


def _module_bytes(
    gm: fx.GraphModule, n: fx.Node, int8_layers: tuple[type[nn.Module], ...] = ()
) -> int:
    m = gm.get_submodule(n.target)
    if int8_layers and isinstance(m, int8_layers):
        return sum(_as_int8_bytes(p.detach()) for p in m.parameters(recurse=False))
    if hasattr(m, "deployed_tensors"):
        return sum(_deployed_bytes(t, kind) for t, kind in m.deployed_tensors())
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        prev = n.all_input_nodes[0] if n.all_input_nodes else None
        pm = _module(gm, prev) if prev is not None else None
        channels = m.num_features
        if pm is not None and isinstance(pm, _CONV_LINEAR_MODULES) and len(prev.users) == 1:
            return 0 if pm.bias is not None else channels * FLOAT_BITS // 8
        return 2 * channels * FLOAT_BITS // 8
    return sum(
        tensor_bytes(p.detach(), _bits_of(p), sparse=p.dim() > 1)
        for p in m.parameters(recurse=False)
    )


def _as_int8_bytes(p: torch.Tensor) -> int:
    if p.dim() < 2:
        return tensor_bytes(p, FLOAT_BITS, sparse=False)
    rows = p.shape[0]
    return tensor_bytes(p, 8) + rows * (SCALE_BYTES + ZERO_POINT_BYTES)


def _deployed_bytes(t: torch.Tensor, kind: str) -> int:
    if kind == "weight":
        return tensor_bytes(t, _bits_of(t), sparse=True)
    if kind == "scale":
        return t.numel() * SCALE_BYTES
    if kind == "zero_point":
        return t.numel() * ZERO_POINT_BYTES
    return tensor_bytes(t, _bits_of(t), sparse=False)


def _pt2e_size(gm: fx.GraphModule) -> int:
    roles: dict[str, str] = {}
    act_qparams: set[tuple[float, int]] = set()
    for n in gm.graph.nodes:
        if n.op != "call_function":
            continue
        name = _target_name(n).split(".")[0]
        if name.startswith("dequantize_per") or name.startswith("quantize_per"):
            src = n.args[0]
            if isinstance(src, fx.Node) and src.op == "get_attr":
                roles[src.target] = "weight"
            for arg, role in ((n.args[1], "scale"), (n.args[2], "zero_point")):
                if isinstance(arg, fx.Node) and arg.op == "get_attr":
                    roles[arg.target] = role
            if name == "quantize_per_tensor" and not isinstance(n.args[1], fx.Node):
                act_qparams.add((float(n.args[1]), int(n.args[2])))
    total = len(act_qparams) * (SCALE_BYTES + ZERO_POINT_BYTES)
    seen: set[str] = set()
    for n in gm.graph.nodes:
        if n.op == "get_attr" and n.users and n.target not in seen:
            seen.add(n.target)
            t = _get_attr(gm, n.target)
            if isinstance(t, torch.Tensor):
                role = roles.get(n.target, "weight" if t.dim() > 1 else "bias")
                total += _deployed_bytes(t, role)
        elif n.op == "call_module" and n.target not in seen:
            seen.add(n.target)
            total += _module_bytes(gm, n)
    return total


def measure_all(
    model: nn.Module,
    example_input: torch.Tensor,
    target_flops: float,
    *,
    int8_layers: tuple[type[nn.Module], ...] = (),
    activation_bytes: int | None = None,
) -> dict[str, float]:
    """All hardware objectives of one model from one trace, keyed as in a TrialResult.

    ``int8_layers`` and ``activation_bytes`` are as in :func:`model_size_bytes` and
    :func:`working_memory_bytes`.
    """
    gm = trace(model, example_input[:1])
    f = _flops(gm)
    return {
        "model_size_bytes": _model_size(gm, int8_layers),
        "working_memory_bytes": _working_memory(gm, activation_bytes),
        "flops": f,
        "latency_s": latency_seconds(f, target_flops),
    }


__all__: Iterable[str] = [
    "flops",
    "index_width",
    "latency_seconds",
    "measure_all",
    "model_size_bytes",
    "rnn_macs",
    "tensor_bytes",
    "trace",
    "working_memory_bytes",
]
