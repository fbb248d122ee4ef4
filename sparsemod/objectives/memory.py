"""Working memory: the peak bytes of activations alive at once for one input.

Tensor liveness over a real forward pass (see :func:`working_memory_bytes`): views alias
their input, batch norm and activations fuse into the conv / linear before them, and the
input counts.
"""

from __future__ import annotations

import math

import torch
from torch import fx, nn

from sparsemod.objectives.ops import (
    CONV_LINEAR_MODULES,
    CONV_LINEAR_NAMES,
    DEQUANTIZE,
    FUSE_MODULES,
    FUSE_NAMES,
    QUANTIZE,
    VIEW_MODULES,
    VIEW_NAMES,
    elem_bytes,
    has_tensor,
    module_of,
    node_args,
    real_users,
    target_name,
)
from sparsemod.objectives.tracer import is_fusable_root, trace


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
    return graph_working_memory(trace(model, example_input[:1]), activation_bytes)


def graph_working_memory(gm: fx.GraphModule, activation_bytes: int | None) -> int:
    """:func:`working_memory_bytes` of a graph that :func:`trace` recorded."""
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
            for a in node_args(n):
                if a in buffer_of:
                    ends[buffer_of[a]] = len(nodes)
                    if activation_bytes is not None:
                        # Nothing quantizes the outputs: they keep their dtype's size.
                        sizes[buffer_of[a]] = _recorded_bytes(writers[buffer_of[a]], None)
            continue
        if n.op == "get_attr":
            weightish.add(n)
            continue
        if not has_tensor(n) and n.op != "placeholder":
            continue
        acts = [a for a in node_args(n) if a in buffer_of]
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
            and len(real_users(acts[0])) == 1
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
        math.prod(s) * (activation_bytes or elem_bytes(d)) for s, d in n.meta.get("sm_tensors", [])
    )


def _classify(gm: fx.GraphModule, n: fx.Node) -> tuple[str, str]:
    """(how the node treats memory, what kind of op roots its buffer)."""
    m = module_of(gm, n)
    if m is not None:
        if isinstance(m, VIEW_MODULES):
            return "view", "view"
        if isinstance(m, FUSE_MODULES):
            return "fuse", "other"
        if isinstance(m, CONV_LINEAR_MODULES) or is_fusable_root(m):
            return "new", "conv_linear"
        return "new", "other"
    name = target_name(n)
    if name in QUANTIZE or name.split(".")[0] in {q.split(".")[0] for q in QUANTIZE}:
        return "quantize", "other"
    if name in DEQUANTIZE or name.split(".")[0] in {q.split(".")[0] for q in DEQUANTIZE}:
        return "dequantize", "other"
    base = name.split(".")[0]
    if base in VIEW_NAMES:
        return "view", "view"
    if base in FUSE_NAMES:
        return "fuse", "other"
    if base in CONV_LINEAR_NAMES:
        return "new", "conv_linear"
    return "new", "other"
