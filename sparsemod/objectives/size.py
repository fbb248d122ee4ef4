"""Model size: the bytes every stored tensor of the deployed network takes.

Per weight tensor ``min(dense, sparse)`` with ``dense = ceil(n*bits/8)`` and ``sparse =
ceil(nnz*bits/8) + min(ceil(n/8), csr)``; CSR of the tensor viewed as ``(out, rest)``
costs ``nnz * w(rest-1) + (out+1) * w(nnz)`` with ``w(v)`` = 1, 2 or 4 bytes, the smallest
unsigned int that holds ``v``. Biases and other 1-d tensors are dense. Quantization
scales cost 4 bytes each, zero points 1 byte each; each distinct activation quantization
(scale, zero point) pair costs 5 bytes. A batch norm that follows a conv / linear folds
into it (it adds a 4-byte bias per channel only when the layer had none); a lone batch
norm costs a scale and a shift per channel.
"""

from __future__ import annotations

import math

import torch
from torch import fx, nn

from sparsemod.objectives.ops import (
    CONV_LINEAR_MODULES,
    elem_bytes,
    get_attr,
    module_of,
    target_name,
)
from sparsemod.objectives.tracer import DeployedLayer, trace

FLOAT_BITS = 32
SCALE_BYTES = 4
ZERO_POINT_BYTES = 1


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
    return graph_size_bytes(trace(model), int8_layers)


def graph_size_bytes(gm: fx.GraphModule, int8_layers: tuple[type[nn.Module], ...] = ()) -> int:
    """:func:`model_size_bytes` of a traced graph (shapes need not be recorded)."""
    if any(
        target_name(n).split(".")[0]
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
            t = get_attr(gm, n.target)
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
    return 8 * elem_bytes(t.dtype) if t.dtype != torch.bool else 1


def _module_bytes(
    gm: fx.GraphModule, n: fx.Node, int8_layers: tuple[type[nn.Module], ...] = ()
) -> int:
    m = gm.get_submodule(n.target)
    if int8_layers and isinstance(m, int8_layers):
        return sum(_as_int8_bytes(p.detach()) for p in m.parameters(recurse=False))
    if isinstance(m, DeployedLayer):
        return sum(_deployed_bytes(t, kind) for t, kind in m.deployed_tensors())
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        prev = n.all_input_nodes[0] if n.all_input_nodes else None
        pm = module_of(gm, prev) if prev is not None else None
        channels = m.num_features
        if pm is not None and isinstance(pm, CONV_LINEAR_MODULES) and len(prev.users) == 1:
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
        name = target_name(n).split(".")[0]
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
            t = get_attr(gm, n.target)
            if isinstance(t, torch.Tensor):
                role = roles.get(n.target, "weight" if t.dim() > 1 else "bias")
                total += _deployed_bytes(t, role)
        elif n.op == "call_module" and n.target not in seen:
            seen.add(n.target)
            total += _module_bytes(gm, n)
    return total
