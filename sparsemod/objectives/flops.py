"""FLOPs and latency: 2 FLOPs per multiply-accumulate, latency = FLOPs / the device's rate.

Conv, linear and recurrent layers count, from the shapes of a real forward pass; pooling,
activations and additions do not.
"""

from __future__ import annotations

import math

import torch
from torch import fx, nn

from sparsemod.errors import MeasureError
from sparsemod.objectives.ops import has_tensor, module_of, target_name
from sparsemod.objectives.tracer import reports_macs, trace

_RNN_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


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
    return graph_flops(trace(model, example_input[:1]))


def graph_flops(gm: fx.GraphModule) -> int:
    """:func:`flops` of a graph :func:`~sparsemod.objectives.tracer.trace` recorded."""
    macs = 0
    for n in gm.graph.nodes:
        if not has_tensor(n):
            continue
        out_shape = n.meta["sm_tensors"][0][0]
        m = module_of(gm, n)
        if m is not None:
            macs += _module_macs(m, n, out_shape)
            continue
        name = target_name(n).split(".")[0]
        if name in {"conv1d", "conv2d", "conv3d", "convolution", "linear"} and len(n.args) > 1:
            w = n.args[1]
            if isinstance(w, fx.Node) and has_tensor(w):
                w_shape = w.meta["sm_tensors"][0][0]
                macs += math.prod(out_shape) * math.prod(w_shape[1:])
    return int(2 * macs)


def _module_macs(m: nn.Module, n: fx.Node, out_shape: tuple[int, ...]) -> int:
    if reports_macs(m):
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
