"""Flash and arena of a GRU classifier as ``sparsemod.deploy.tflite`` builds it for TFLM.

The deploy path is the LSTM's (:mod:`~sparsemod.objectives.tflm_lstm`): litert-torch
converts the *float* network, unrolling ``nn.GRU`` over the T steps, and AI Edge
Quantizer quantizes it (``static_wi8_ai8``). :func:`gru_graph` rebuilds the int8 graph.
Per layer: ``FULLY_CONNECTED`` of the sequence by ``W_ih`` (the first layer's reshaped to
``[T,1,3H]``), a ``SLICE`` a step, then a ``RESHAPE`` of each to ``[1,3H]``; per step 3
``SLICE`` of the step's input projection (r, z, n); step 0 adds the recurrent biases as
int8 constants (``h_0 = 0``): ``ADD``, ``LOGISTIC``, ``ADD``, ``LOGISTIC``, ``MUL``,
``ADD``, ``TANH``, ``SUB`` (from a scalar int8 zero), ``MUL``, ``ADD`` (``h = n + z(h-n)``);
each later step first ``FULLY_CONNECTED`` by ``W_hh`` and 3 ``SLICE`` of it, then the same
10 ops (``SUB`` from h). Then, as the LSTM: h_0..h_T-2 requantized (``QUANTIZE``) to a
``CONCATENATION``, ``RESHAPE``, a ``SLICE`` of the last step and the head; the quantizer
appends the ``QUANTIZE`` outputs and T-2 copies of each recurrent bias. T=1: per layer a
``FULLY_CONNECTED`` by ``W_ih`` (no ``W_hh``: h_0 is 0) and the step-0 cell (one feature:
the input is first reshaped to ``[1,1]``).

**Flash**: the LSTM's replay of the quantizer's writer (``SUB`` has an options table; the
``FULLY_CONNECTED`` op code is version 1 where no FC keeps its dims, T=1 of several
features, else 5). **Arena**: :mod:`~sparsemod.objectives.tflm_arena`'s replay, with
``SUB``'s ``OpDataSub`` (52 B) and ``TfLiteSubParams`` (8 B), as ``ADD``'s take (a file
with every ``SUB`` swapped for an ``ADD`` has the same tail); ``SUB`` prepares like ``ADD``
(its inputs and output as temporaries). ``CONCATENATION`` takes at most 10 inputs: longer
sequences do not run, and :func:`lower_gru` refuses them.
**Data-dependent bytes**, not modelled: as the LSTM's (a ``QUANTIZE`` left out when h_t's
calibrated range equals the concatenation's, a bias copy left out when two steps' input
scales are equal, constants equal by value merged)."""

from __future__ import annotations

import torch
from torch import nn

from sparsemod.objectives.tflm import TflmCosts
from sparsemod.objectives.tflm_graph import Graph
from sparsemod.objectives.tflm_lstm import (
    _buffers,
    _Build,
    _locations,
    _modules,
    _quantized,
    lstm_costs,
)

_GRU_RNN = ("torch.nn.modules.container.Sequential", "sparsemod.builders.rnn.LastStep",
            "torch.nn.modules.rnn.GRU", "torch.nn.modules.linear.Linear")


def _gates(b: _Build, x: tuple[int, int, int], h: tuple[int, int, int], prev: int, H: int,
           layer: str, step0: bool) -> int:
    """One step's cell: ``x`` the input projection's (r, z, n) slices, ``h`` the recurrent
    projection's (step 0: the recurrent biases, int8 constants) and ``prev`` h_t-1 (step 0:
    the scalar zero). Returns h_t = n + z (h_t-1 - n)."""
    shape, (xr, xz, xn), (hr, hz, hn) = (1, 1, H), x, h
    pairs = ((xr, hr), (xz, hz)) if step0 else ((hr, xr), (hz, xz))
    r, z = (b.op("LOGISTIC", (b.op("ADD", p, shape, layer),), shape, layer) for p in pairs)
    reset = b.op("MUL", (r, hn) if step0 else (hn, r), shape, layer)
    n = b.op("TANH", (b.op("ADD", (xn, reset), shape, layer),), shape, layer)
    diff = b.op("SUB", (prev, n), shape, layer)
    return b.op("ADD", (b.op("MUL", (diff, z), shape, layer), n), shape, layer)


def gru_graph(layers: int, steps: int, features: int, hidden: int, classes: int,
              loc: dict[str, str] | None = None) -> Graph:
    """The int8 graph of ``LastStep(GRU) -> Linear`` in the quantized file (see the module
    docstring): tensors in file order with their buffers, ops in run order."""
    L, T, F, H, C, G = layers, steps, features, hidden, classes, 3 * hidden
    b = _Build(loc or _locations(_GRU_RNN))
    x = b.tensor("in", (1, T, F))
    flat_x = T == 1 and F == 1  # one value: reshaped to [1,1] first
    shared = "A" if T > 2 else "L"  # W_hh and its bias: the GRU's name when one FC reads them
    b.const("O", (C,), "int32", C)
    rec_bias, in_bias, w_hh, w_ih, step0 = {}, {}, {}, {}, {}
    for k in range(L, 0, -1):
        if T > 1:
            rec_bias[k] = b.const(shared, (G,), "int32", G)
        if k > 1 or flat_x:
            in_bias[k] = b.const("L", (G,), "int32", G)
    head_w = b.const("O", (C, H), "int8", C)
    for k in range(L, 0, -1):
        if T > 1:
            w_hh[k] = b.const(shared, (G, H), "int8", G)
        step0[k] = tuple(b.const("L", (1, 1, H), "int8", 1) for _ in range(3))[::-1]
        w_ih[k] = b.const("L", (G, F if k == 1 else H), "int8", G)
    if T > 1:
        last = b.const("E", (3,), "int32")
        gate3 = tuple(b.const("A", (3,), "int32") for _ in range(2))[::-1]  # z, n begins
        size3 = b.const("A", (3,), "int32")
    gate2 = tuple(b.const("A" if T > 1 or L > 1 else "L", (2,), "int32")
                  for _ in range(3))[::-1]  # r, z, n begins
    if flat_x:
        x_shape = b.const("A", (2,), "int32")
    if T > 1:
        begin = {t: b.const("L" if L == 1 else "A", (3,), "int32") for t in range(T - 1, 0, -1)}
        begin[0] = zero3 = b.const("A", (3,), "int32")
        out_shape, step_shape = (b.const("A", (n,), "int32") for n in (3, 2))
    size2 = b.const("A", (2,), "int32")
    if T > 1:
        in_shape, step_size = (b.const("A", (3,), "int32") for _ in range(2))
    zero = b.const("A", (), "int8", 1)
    if not flat_x:
        in_bias[1] = b.const("L", (G,), "int32", G)

    if T == 1:
        h = b.op("RESHAPE", (x, x_shape), (1, 1), b.loc["rnn"]) if flat_x else x
        for k in range(1, L + 1):
            layer = f"{b.loc['rnn']} (layer {k - 1})"
            keep = {"keep": 1} if flat_x and k == 1 else {}
            pre = b.op("FULLY_CONNECTED", (h, w_ih[k], in_bias[k]), (1, G), layer, **keep)
            xs = tuple(b.op("SLICE", (pre, g, size2), (1, H), layer) for g in gate2)
            h = _gates(b, xs, step0[k], zero, H, layer, True)
        out = b.op("FULLY_CONNECTED", (h, head_w, 1), (1, C), b.loc["head"], base="out")
        b.graph.inputs, b.graph.outputs = [x], [out]
        return _buffers(b.graph)

    seq, quantized, copies, concats = x, [], [], []
    for k in range(1, L + 1):
        layer = f"{b.loc['rnn']} (layer {k - 1})"
        shape = (1, T, G) if k == 1 else (T, 1, G)
        seq = b.op("FULLY_CONNECTED", (seq, w_ih[k], in_bias[k]), shape, layer, keep=1)
        if k == 1:
            seq = b.op("RESHAPE", (seq, in_shape), (T, 1, G), layer)
        sliced = [b.op("SLICE", (seq, begin[t], step_size), (1, 1, G), layer) for t in range(T)]
        rows = [b.op("RESHAPE", (s, step_shape), (1, G), layer) for s in sliced]
        hs: list[int] = []
        for t in range(T):
            xs = tuple(b.op("SLICE", (rows[t], g, size2), (1, H), layer) for g in gate2)
            if t == 0:
                hs.append(_gates(b, xs, step0[k], zero, H, layer, True))
                continue
            if t < T - 1:
                copies.append((len(b.graph.ops), rec_bias[k]))
            fc = b.op("FULLY_CONNECTED", (hs[-1], w_hh[k], rec_bias[k]), (1, 1, G), layer,
                      keep=1)
            hh = tuple(b.op("SLICE", (fc, g, size3), (1, 1, H), layer)
                       for g in (zero3, *gate3))
            hs.append(_gates(b, xs, hh, hs[-1], H, layer, False))
        for h in hs[:-1]:
            quantized.append((len(b.graph.ops), h))
            b.op("QUANTIZE", (h,), (1, 1, H), layer)
        seq = b.op("CONCATENATION", (hs[-1],), (T, 1, H), layer)
        concats.append((len(b.graph.ops) - 1, len(quantized) - (T - 1)))
    flat = b.op("RESHAPE", (seq, out_shape), (1, T, H), b.loc["rnn"])
    h_last = b.op("SLICE", (flat, last, size3), (1, 1, H), b.loc["rnn"], base="E")
    out = b.op("FULLY_CONNECTED", (h_last, head_w, 1), (1, C), b.loc["head"], base="out")
    return _quantized(b, x, out, quantized, concats, copies, T, H, G)


def lower_gru(model: nn.Module, example: torch.Tensor) -> Graph:
    """The int8 graph ``sparsemod.deploy.tflite`` exports for ``build_rnn``'s GRU network
    (``LastStep(nn.GRU)``, dropout, ``nn.Linear``) on inputs shaped like ``example``.

    Raises:
        MeasureError: a network this does not cover (an LSTM, bidirectional,
            ``batch_first=False``, over 10 steps, ...), naming the layer."""
    loc, gru, head = _modules(model, example, nn.GRU)
    return gru_graph(gru.num_layers, int(example.shape[1]), gru.input_size, gru.hidden_size,
                     head.out_features, loc)


def gru_costs(graph: Graph) -> TflmCosts:
    """Flash and arena of a :func:`lower_gru` graph as TFLM runs it (a
    :func:`~sparsemod.objectives.tflm_lstm.lower_lstm` graph too: exact on 14 LSTMs)."""
    return lstm_costs(graph)
