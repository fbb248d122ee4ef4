"""Flash and arena of an LSTM classifier as ``sparsemod.deploy.tflite`` builds it for TFLM.

The deploy path converts the *float* network with litert-torch, which unrolls ``nn.LSTM``
over the T steps, and quantizes that file with AI Edge Quantizer (``static_wi8_ai8``).
:func:`lstm_graph` rebuilds the int8 graph from the shapes. Per layer: ``FULLY_CONNECTED``
of the sequence by ``W_ih`` (the first layer's reshaped to ``[T,1,4H]``), a ``SLICE`` a
step; step 0 adds the recurrent bias as an int8 constant, then 3 gate ``SLICE``,
``LOGISTIC``, ``TANH``, ``LOGISTIC``, ``MUL``, ``TANH``, ``MUL``; each later step 15 ops
(``FULLY_CONNECTED`` by ``W_hh``, ``ADD``, 4 ``SLICE``, 3 ``LOGISTIC``, ``TANH``, 2
``MUL``, ``ADD``, ``TANH``, ``MUL``); h_0..h_T-2 are requantized (``QUANTIZE``) to the
``CONCATENATION`` of all h; then ``RESHAPE``, a ``SLICE`` of the last step and the head.
T=1 folds into a ``FULLY_CONNECTED`` a layer. The quantizer appends the ``QUANTIZE``
outputs and T-2 copies of each recurrent bias (each step's has its own scale). Tensor
names are stored (module locations; ``arith.constant`` for constants ops share).

**Flash** replays the quantizer's writer, the flatbuffers Python object API: objects depth
first in schema order, fields in declaration order, defaults left out, a vtable reused
when its field offsets match (whatever the object size), data 1-aligned, every buffer
inside (from 256 KiB of weights on, the quantizer writes them after the flatbuffer, where
TFLM does not read them; ``sparsemod.deploy`` writes such a model again, inside).
**Arena**: :mod:`~sparsemod.objectives.tflm_arena`'s replay. TFLM's ``CONCATENATION``
takes at most 10 inputs: longer sequences do not run, and :func:`lower_lstm` refuses them.
**Data-dependent bytes**, not modelled: no ``QUANTIZE`` when h_t's calibrated range equals
the concatenation's (-1 op and tensor: about -250 B flash, -120 B arena), no bias copy
when two steps' input scales are equal (-16H-120 B flash), constants equal by value merged."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from sparsemod.errors import MeasureError
from sparsemod.objectives import tflm_arena as arena
from sparsemod.objectives.tflm import OpCost, TflmCosts
from sparsemod.objectives.tflm_flatbuffer import _Builder
from sparsemod.objectives.tflm_graph import Graph, Op, Tensor, _fullname

# BuiltinOperator code, deprecated code (the quantizer leaves QUANTIZE's at 0), version.
_CODES = {"FULLY_CONNECTED": (9, 9, 5), "RESHAPE": (22, 22, 1), "SLICE": (65, 65, 1),
          "ADD": (0, 0, 1), "LOGISTIC": (14, 14, 1), "TANH": (28, 28, 1), "MUL": (18, 18, 1),
          "CONCATENATION": (2, 2, 1), "QUANTIZE": (114, 0, 1), "SUB": (41, 41, 1)}
_OPTIONS = ("FULLY_CONNECTED", "ADD", "CONCATENATION", "MUL", "SUB")  # have an options table
_METADATA = (("min_runtime_version", 16), ("keep_stablehlo_constant", 4))
_MAX_CONCAT = 10  # kMaxInputNum of TFLM's CONCATENATION
_BUILD_RNN = ("torch.nn.modules.container.Sequential", "sparsemod.builders.rnn.LastStep",
              "torch.nn.modules.rnn.LSTM", "torch.nn.modules.linear.Linear")
_CELL0 = ("LOGISTIC", "TANH", "LOGISTIC")
_CELL = ("LOGISTIC", "LOGISTIC", "TANH", "LOGISTIC")


@dataclass
class LstmTensor(Tensor):
    """A tensor of the file, its ``has_rank`` flag (``rank``) and buffer (0: none)."""

    rank: bool = True
    buffer: int = 0


class _Build:
    """The graph under construction: tensors in file order, ops in run order."""

    def __init__(self, loc: dict[str, str]) -> None:
        self.loc, self.graph, self.seen = loc, Graph(), {}

    def tensor(self, base: str, shape: tuple[int, ...], dtype: str = "int8",
               data: int = 0, scales: int = 1, rank: bool = True) -> int:
        name = self.loc.get(base, base)
        n = self.seen[name] = self.seen.get(name, -1) + 1
        t = LstmTensor(name + (str(n) if n else ""), shape, dtype, data, scales, rank=rank)
        self.graph.tensors.append(t)
        return len(self.graph.tensors) - 1

    def const(self, base: str, shape: tuple[int, ...], dtype: str, channels: int = 0) -> int:
        size = math.prod(shape) * (4 if dtype == "int32" else 1)
        return self.tensor(base, shape, dtype, size, channels)

    def op(self, kind: str, inputs: tuple[int, ...], shape: tuple[int, ...], layer: str,
           base: str = "L", **options: int) -> int:
        out = -1 if kind == "QUANTIZE" else self.tensor(base, shape)
        self.graph.ops.append(Op(kind, inputs, (out,), options, layer))
        return out

    def cell(self, pre: int, starts: tuple[int, ...], size: int, c: int, H: int,
             layer: str) -> tuple[int, int]:
        """The gates of one step from its ``[1,1,4H]`` pre-activation: (h, c)."""
        s = [self.op("SLICE", (pre, a, size), (1, 1, H), layer) for a in starts]
        kinds = _CELL0 if c < 0 else _CELL
        a = [self.op(kind, (i,), (1, 1, H), layer) for kind, i in zip(kinds, s)]
        if c < 0:
            c = self.op("MUL", (a[0], a[1]), (1, 1, H), layer)
        else:
            forget = self.op("MUL", (a[1], c), (1, 1, H), layer)
            c = self.op("ADD", (forget, self.op("MUL", (a[0], a[2]), (1, 1, H), layer)),
                        (1, 1, H), layer)
        th = self.op("TANH", (c,), (1, 1, H), layer)
        return self.op("MUL", (a[-1], th), (1, 1, H), layer), c


def _locations(classes: tuple[str, ...] = _BUILD_RNN, enc_name: str = "encoder",
               head_name: str = "out") -> dict[str, str]:
    """The converter's names by kind (``L`` the LSTM's location, ``E`` the encoder's, ``O``
    the head's, ``A`` a constant several ops share) and the layers' paths."""
    top, enc, lstm, head = classes
    enc = f"{top}/{enc}_{enc_name}"
    return {"L": f"{enc}/{lstm}_rnn;", "E": f"{enc};", "O": f"{top}/{head}_{head_name};",
            "A": "arith.constant", "in": "serving_default_args_0", "head": head_name,
            "out": "serving_default_output_0_output", "rnn": f"{enc_name}.rnn"}


def _modules(model: nn.Module, example: torch.Tensor,
             cell: type[nn.RNNBase] = nn.LSTM) -> tuple[dict, nn.RNNBase, nn.Linear]:
    """The ``cell`` layer (``nn.LSTM`` or ``nn.GRU``) and the head of a ``build_rnn``
    network, and the converter's names."""
    kind, me = cell.__name__, f"tflm_{cell.__name__.lower()}"
    if not isinstance(model, nn.Sequential):
        raise MeasureError(f"{me}: {type(model).__name__} is not modelled (expected "
                           f"nn.Sequential of LastStep(nn.{kind}), Dropout, Linear)")
    lstm = head = None
    for name, mod in model.named_children():
        inner = getattr(mod, "rnn", None)
        if lstm is None and isinstance(inner, nn.RNNBase) and type(mod).__name__ == "LastStep":
            if not isinstance(inner, cell):
                raise MeasureError(f"{me}: layer {name}.rnn ({type(inner).__name__}) "
                                   f"is not modelled (only nn.{kind})")
            lstm, enc_name = inner, name
        elif lstm is not None and head is None and isinstance(mod, nn.Linear):
            head, head_name = mod, name
        elif lstm is None or head is not None or not isinstance(mod, (nn.Dropout, nn.Identity)):
            raise MeasureError(f"{me}: layer {name} ({type(mod).__name__}) is not "
                               f"modelled (expected LastStep(nn.{kind}), Dropout, Linear)")
    if lstm is None or head is None:
        raise MeasureError(f"{me}: expected LastStep(nn.{kind}) followed by an nn.Linear")
    where = f"layer {enc_name}.rnn ({kind})"
    steps = example.shape[1] if example.dim() == 3 else 0
    for bad, why in ((not lstm.batch_first, "with batch_first=False"),
                     (lstm.bidirectional, "bidirectional"),
                     (getattr(lstm, "proj_size", 0), "with proj_size"),
                     (not lstm.bias, "with bias=False"), (head.bias is None, "before a "
                      "head without bias"), (steps > _MAX_CONCAT, f"over {steps} "
                      f"steps (TFLM's CONCATENATION takes at most {_MAX_CONCAT} inputs)"),
                     (cell is nn.LSTM and steps == 1 and lstm.input_size == 1,
                      "over one step of one feature")):
        if bad:
            raise MeasureError(f"{me}: {where} {why} is not modelled")
    if example.dim() != 3 or example.shape[2] != lstm.input_size:
        raise MeasureError(f"{me}: {where} reads (N, T, {lstm.input_size}), not "
                           f"{tuple(example.shape)}")
    classes = (model, model.get_submodule(enc_name), lstm, head)
    return _locations(tuple(_fullname(type(m)) for m in classes), enc_name, head_name), lstm, head


def _one_step(b: _Build, L: int, F: int, H: int, C: int) -> int:
    """T=1: per layer a FULLY_CONNECTED of x (or h) with both biases, then the cell."""
    b.const("O", (C,), "int32", C)
    bias = {k: b.const("L", (4 * H,), "int32", 4 * H) for k in range(L, 0, -1)}
    head_w = b.const("O", (C, H), "int8", C)
    w = {k: b.const("L", (4 * H, F if k == 1 else H), "int8", 4 * H) for k in range(L, 0, -1)}
    n = "L" if L == 1 else "A"
    gate_o, gate_g, size, zero = (b.const(a, (3,), "int32") for a in (n, n, "A", n))
    h = 0
    for k in range(1, L + 1):
        layer = f"{b.loc['rnn']} (layer {k - 1})"
        pre = b.op("FULLY_CONNECTED", (h, w[k], bias[k]), (1, 1, 4 * H), layer, keep=1)
        h, _ = b.cell(pre, (zero, gate_g, gate_o), size, -1, H, layer)
    return b.op("FULLY_CONNECTED", (h, head_w, 1), (1, C), b.loc["head"], base="out")


def lstm_graph(layers: int, steps: int, features: int, hidden: int, classes: int,
               loc: dict[str, str] | None = None) -> Graph:
    """The int8 graph of ``LastStep(LSTM) -> Linear`` in the quantized file (see the module
    docstring): tensors in file order with their buffers, ops in run order."""
    L, T, F, H, C, G = layers, steps, features, hidden, classes, 4 * hidden
    b = _Build(loc or _locations())
    x = b.tensor("in", (1, T, F))
    if T == 1:
        b.graph.inputs, b.graph.outputs = [x], [_one_step(b, L, F, H, C)]
        return _buffers(b.graph)
    shared = "A" if T > 2 else "L"  # the recurrent weights of one FC keep the LSTM's name
    b.const("O", (C,), "int32", C)
    rec_bias, in_bias, w_hh, w_ih = {}, {}, {}, {}
    for k in range(L, 0, -1):
        rec_bias[k] = b.const(shared, (G,), "int32", G)
        in_bias[k] = b.const("L", (G,), "int32", G) if k > 1 else -1
    head_w = b.const("O", (C, H), "int8", C)
    for k in range(L, 0, -1):
        w_hh[k], w_ih[k] = (b.const(name, (G, n), "int8", G) for name, n in
                            ((shared, H), ("L", F if k == 1 else H)))
    last = b.const("E", (3,), "int32")
    gate_f = b.const("L" if (L, T) == (1, 2) else "A", (3,), "int32")
    gate_o, gate_g, gate_size = (b.const("A", (3,), "int32") for _ in range(3))
    begin = {t: b.const("L" if L == 1 else "A", (3,), "int32") for t in range(T - 1, 0, -1)}
    step_size, zero, out_shape, in_shape = (b.const("A", (3,), "int32") for _ in range(4))
    begin[0] = zero
    step0 = {k: b.const("L", (1, G), "int8", 1) for k in range(L, 0, -1)}
    in_bias[1] = b.const("L", (G,), "int32", G)

    seq, quantized, copies, concats = x, [], [], []
    for k in range(1, L + 1):
        layer = f"{b.loc['rnn']} (layer {k - 1})"
        shape = (1, T, G) if k == 1 else (T, 1, G)
        seq = b.op("FULLY_CONNECTED", (seq, w_ih[k], in_bias[k]), shape, layer, keep=1)
        if k == 1:
            seq = b.op("RESHAPE", (seq, in_shape), (T, 1, G), layer)
        gates = [b.op("SLICE", (seq, begin[t], step_size), (1, 1, G), layer) for t in range(T)]
        pre = b.op("ADD", (gates[0], step0[k]), (1, 1, G), layer)
        h, c = b.cell(pre, (zero, gate_g, gate_o), gate_size, -1, H, layer)
        hs = [h]
        for t in range(1, T):
            if t < T - 1:
                copies.append((len(b.graph.ops), rec_bias[k]))
            fc = b.op("FULLY_CONNECTED", (hs[-1], w_hh[k], rec_bias[k]), (1, G), layer)
            pre = b.op("ADD", (fc, gates[t]), (1, 1, G), layer)
            h, c = b.cell(pre, (zero, gate_f, gate_g, gate_o), gate_size, c, H, layer)
            hs.append(h)
        for h in hs[:-1]:
            quantized.append((len(b.graph.ops), h))
            b.op("QUANTIZE", (h,), (1, 1, H), layer)
        seq = b.op("CONCATENATION", (hs[-1],), (T, 1, H), layer)
        concats.append((len(b.graph.ops) - 1, len(quantized) - (T - 1)))
    flat = b.op("RESHAPE", (seq, out_shape), (1, T, H), b.loc["rnn"])
    h_last = b.op("SLICE", (flat, last, gate_size), (1, 1, H), b.loc["rnn"], base="E")
    out = b.op("FULLY_CONNECTED", (h_last, head_w, 1), (1, C), b.loc["head"], base="out")
    return _quantized(b, x, out, quantized, concats, copies, T, H, G)


def _quantized(b: _Build, x: int, out: int, quantized: list, concats: list, copies: list,
               T: int, H: int, G: int) -> Graph:
    """What the quantizer adds: it appends the ``QUANTIZE`` outputs of ``quantized`` (op,
    h) to the ``concats`` (op, first), then the recurrent bias ``copies`` (op, bias)."""
    tensors, ops = b.graph.tensors, b.graph.ops
    qout = list(range(len(tensors), len(tensors) + len(quantized)))
    for (op_index, h), q in zip(quantized, qout):
        tensors.append(LstmTensor(f"{tensors[h].name}_quantized", (1, 1, H), "int8",
                                  scales=1, rank=False))
        ops[op_index].outputs = (q,)
    for op_index, first in concats:
        ops[op_index].inputs = tuple(qout[first:first + T - 1]) + ops[op_index].inputs
    for op_index, bias in sorted(copies, key=lambda c: c[1]):  # stable: by step
        i = len(tensors)
        tensors.append(LstmTensor(f"{tensors[bias].name}_duplicated_{i}", (G,), "int32",
                                  4 * G, G, rank=False))
        ops[op_index].inputs = ops[op_index].inputs[:2] + (i,)
    b.graph.inputs, b.graph.outputs = [x], [out]
    return _buffers(b.graph)


def _buffers(graph: Graph) -> Graph:
    """Buffer indices: the converter's constants, the two metadata buffers, the copies."""
    for number, t in enumerate((t for t in graph.tensors if t.data), 1):
        t.buffer = number if t.rank else number + len(_METADATA)
    return graph


class _PyBuilder(_Builder):
    """The Python ``flatbuffers.Builder``: vtables shared by field offsets alone."""

    def table(self, fields: list[tuple[int, int]], scope: str = "") -> None:
        slots = {}
        for slot, width in fields:
            self.prep(width)
            self.size += width
            slots[slot] = self.size
        self.prep(4)
        self.size += 4
        top = max(slots, default=-1)
        key = tuple(self.size - slots[s] if s in slots else 0 for s in range(top + 1))
        if key not in self.vtables:
            self.vtables.add(key)
            self.size += 2 * (top + 1) + 4


def file_bytes(graph: Graph) -> int:
    """The length of the file the quantizer writes for a :func:`lstm_graph`."""
    tensors = graph.tensors
    data = sorted((t.buffer, t.data) for t in tensors if t.data)
    own = [d for n, d in data if n <= len(data) - sum(not t.rank for t in tensors if t.data)]
    sizes = [0, *own, *(d for _, d in _METADATA), *(d for _, d in data[len(own):])]
    b = _PyBuilder()
    codes = list(dict.fromkeys(op.kind for op in graph.ops if op.kind != "QUANTIZE"))
    codes += ["QUANTIZE"] * any(op.kind == "QUANTIZE" for op in graph.ops)
    keeps = any(op.options.get("keep") for op in graph.ops)
    for kind in codes:  # deprecated code (i8), version, builtin code: when not default
        code, deprecated, version = _CODES[kind]
        version = version if keeps or kind != "FULLY_CONNECTED" else 1  # v5: keep_num_dims
        b.table([(0, 1)] * bool(deprecated) + [(2, 4)] * (version != 1) + [(3, 4)] * bool(code))
    b.vector(len(codes), 4)
    for t in tensors:  # shape, name, quantization (scales, int64 zero points), the table
        b.vector(len(t.shape), 4)
        b.string(len(t.name.encode()))
        if t.scales:
            b.vector(t.scales, 4)
            b.vector(t.scales, 8)
        b.table([(2, 4), (3, 4)] if t.scales else [])
        b.table([(0, 4), (1, 1)] + [(2, 4)] * bool(t.buffer) + [(3, 4), (4, 4)]
                + [(8, 1)] * t.rank)
    for n in (len(tensors), len(graph.inputs), len(graph.outputs)):
        b.vector(n, 4)
    for op in graph.ops:
        b.vector(len(op.inputs), 4)
        b.vector(len(op.outputs), 4)
        if op.kind in _OPTIONS:  # only FULLY_CONNECTED's keep_num_dims is not a default
            b.table([(2, 1)] if op.options.get("keep") else [])
        b.table([(0, 4)] * bool(codes.index(op.kind)) + [(1, 4), (2, 4)]
                + [(3, 1), (4, 4)] * (op.kind in _OPTIONS))
    b.vector(len(graph.ops), 4)
    b.string(len("main"))
    b.table([(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)])
    b.vector(1, 4)  # subgraphs
    b.string(len("MLIR Converted."))
    for size in sizes:  # every buffer inside (sparsemod.deploy writes large ones back in)
        if size:
            b.vector(size, 1)
        b.table([(0, 4)] * bool(size))
    b.vector(len(sizes), 4)
    for name, _ in _METADATA:
        b.string(len(name))
        b.table([(0, 4), (1, 4)])
    b.vector(len(_METADATA), 4)
    for name, fields in (("args_0", [(0, 4)] + [(1, 4)] * bool(graph.inputs[0])),
                         ("output_0", [(0, 4), (1, 4)]),
                         ("serving_default", [(0, 4), (1, 4), (2, 4)])):
        b.string(len(name))  # the signature: its input and output TensorMaps, its key
        b.table(fields)
        b.vector(1, 4)
    b.table([(0, 4), (1, 4), (2, 4), (3, 4), (4, 4), (6, 4), (7, 4)])
    return b.finish()


def lower_lstm(model: nn.Module, example: torch.Tensor) -> Graph:
    """The int8 graph ``sparsemod.deploy.tflite`` exports for ``build_rnn``'s LSTM network
    (``LastStep(nn.LSTM)``, dropout, ``nn.Linear``) on inputs shaped like ``example``.

    Raises:
        MeasureError: a network this does not cover (a GRU, bidirectional, ``proj_size``,
            ``batch_first=False``, over 10 steps, ...), naming the layer."""
    loc, lstm, head = _modules(model, example)
    return lstm_graph(lstm.num_layers, int(example.shape[1]), lstm.input_size,
                      lstm.hidden_size, head.out_features, loc)


def lstm_costs(graph: Graph) -> TflmCosts:
    """Flash and arena of a :func:`lower_lstm` graph (or a GRU's) as TFLM runs it."""
    (parts, smallest), t = arena.allocate(graph), graph.tensors
    planned, tail = arena.arena_head(graph), sum(parts.values())
    ops = tuple(OpCost(op.kind, op.layer, sum(t[i].data for i in op.inputs if i >= 0),
                       sum(arena.tensor_bytes(t[i].shape, t[i].dtype) for i in op.outputs))
                for op in graph.ops)
    return TflmCosts(file_bytes(graph), max(smallest, planned + tail), planned, tail,
                     parts, ops)
