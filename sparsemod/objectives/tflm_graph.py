"""The TFLite graph litert-torch emits for a torch network, derived from its structure.

:func:`lower` walks the network's ``torch.fx`` graph (sparsemod's tracer, shapes from one
example) and emits what litert-torch 0.10's converter emits for each layer, int8
throughout (per-channel symmetric weights, int32 biases, per-tensor activations):

=================  ==============================================================
torch layer        TFLite ops (NHWC inside; the graph's input and output stay NCHW)
=================  ==============================================================
first conv         RESHAPE (one input channel) or TRANSPOSE to NHWC
Conv2d             CONV_2D; DEPTHWISE_CONV_2D when ``groups == in_channels``
                   (which includes every conv of one input channel)
Conv1d / pools     the 2-D op over a height-1 image
BatchNorm          folded into the conv before it
ReLU after conv,   fused into it (no op, no tensor)
linear or add
MaxPool / AvgPool  MAX_POOL_2D / AVERAGE_POOL_2D (+ QUANTIZE after an average pool,
                   unless the pool keeps its input's range: see ``tflm_ranges``)
Flatten            TRANSPOSE back to NCHW (left out when C == 1), RESHAPE; nothing
                   when H*W == 1 (the linear reads the 1x1 map)
Linear             FULLY_CONNECTED (keep_num_dims)
Tanh               TANH
residual ``+``     ADD
Dropout            nothing
=================  ==============================================================

Tensor names are the converter's debug locations: the module path as
``<class fullname>_<name>`` per level, joined by ``/`` and ended by ``;`` (fused ops join
two locations with ``;``; a conv's fused ReLU also joins the first ReLU of the same
shape, whose zeros constant it shares); repeated names get a counter. The flatbuffer
stores them, constants first (the layout constants, then the biases of 1x1 convs, of
linears and of the other convs, each group last layer first, then the linear weights).
LSTM and GRU layers are not lowered here: the recurrent builder's networks have their
own graphs (:mod:`.tflm_lstm`, :mod:`.tflm_gru`), and :func:`lower` raises
``MeasureError`` for a recurrent layer in any other network.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sparsemod.errors import MeasureError
from sparsemod.objectives.tflm_ranges import range_keeping_pools
from sparsemod.objectives.tracer import trace


@dataclass
class Tensor:
    """One tensor of the flatbuffer's subgraph.

    ``data`` is the bytes the flatbuffer stores for a constant (0 for a tensor computed at
    run time); ``scales`` the number of quantization scales (0: no quantization).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    data: int = 0
    scales: int = 0
    qdim: int = 0


@dataclass
class Op:
    """One operator: its builtin kind, tensor indices, options and the layer it runs."""

    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, int] = field(default_factory=dict)
    layer: str = ""


@dataclass
class Graph:
    """The subgraph: tensors in the converter's index order, ops in execution order.

    ``traced`` is the ``torch.fx`` trace it was lowered from (the other objectives read it
    too, so a network is traced once).
    """

    tensors: list[Tensor] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    traced: Any = field(default=None, repr=False, compare=False)


_WRAPPER = (
    "torch.export._trace._non_strict_export.<locals>._tuplify_outputs.<locals>."
    "_aot_export_non_strict.<locals>.Wrapper;"
)
_INPUT, _OUTPUT = "serving_default_args_0", "serving_default_output_0_output"
_CONVS = (nn.Conv1d, nn.Conv2d)
_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)
_SKIP = (nn.Dropout, nn.Identity, nn.BatchNorm1d, nn.BatchNorm2d)


def _fullname(cls: type) -> str:
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


class _Lowering:
    """The state of one lowering: the graph so far, names seen, the layout of values."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.graph = Graph()
        self.names: dict[str, int] = {}
        self.consts: list[Tensor] = []  # int32 constants, placed after the input
        self.weights: list[Tensor] = []  # fully connected weights, after the int32s
        self.body: list[tuple[Tensor, Op | None]] = []  # conv weights and op outputs

    def loc(self, target: str) -> str:
        """The converter's location string of the module at ``target``."""
        parts = [_fullname(type(self.model))]
        mod = self.model
        for name in target.split(".") if target else []:
            mod = getattr(mod, name)
            parts.append(f"{_fullname(type(mod))}_{name}")
        return "/".join(parts) + ";"

    def name(self, base: str) -> str:
        seen = self.names.get(base, 0)
        self.names[base] = seen + 1
        return base + (str(seen) if seen else "")


def _channels_last(shape: tuple[int, ...]) -> tuple[int, ...]:
    """An NCHW / NCL shape as the NHWC the converter computes in (1-D: height 1)."""
    if len(shape) == 3:
        return (shape[0], 1, shape[2], shape[1])
    return (shape[0], shape[2], shape[3], shape[1])


def _int32(name: str, values: int) -> Tensor:
    return Tensor(name, (values,), "int32", data=4 * values)


class _Walk(_Lowering):
    """Emits the ops layer by layer; ``value`` maps fx nodes to (tensor, layout)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.biases: dict[str, list[Tensor]] = {"1x1": [], "fc": [], "conv": []}
        self.value: dict[Any, tuple[Tensor, str]] = {}
        self.producer: dict[int, Op] = {}
        self.relu_shapes: dict[tuple[int, ...], tuple[Any, str]] = {}
        self.suffix: dict[int, str] = {}  # name endings joined at the end (a folded flatten)
        self.pool_loc: dict[int, str] = {}  # the average pool of a QUANTIZE's output
        self.folded: dict[int, str] = {}  # a 1x1 map's flatten, for the linear reading it
        self.input_const: Tensor | None = None
        self.input_place = "first"  # where the input's layout constant goes (see finish)
        self.avg_into_conv = False
        self.same_range: set[str] = set()

    def emit(self, kind: str, inputs: list[Tensor], out: Tensor, layer: str, **opts: int) -> Tensor:
        op = Op(kind, tuple(id(t) for t in inputs), (id(out),), dict(opts), layer)
        self.body.append((out, op))
        self.producer[id(out)] = op
        return out

    def act(self, shape: tuple[int, ...], name: str) -> Tensor:
        return Tensor(name, tuple(shape), "int8", scales=1)

    def nhwc(self, src: tuple[Tensor, str], loc: str) -> Tensor:
        t, layout = src
        if layout == "nhwc":
            return t
        kind = "RESHAPE" if t.shape[1] == 1 else "TRANSPOSE"
        one_d = len(t.shape) == 3
        wrapped = kind == "RESHAPE" and not one_d
        const = _int32(_WRAPPER if wrapped else loc if one_d else "arith.constant", 4)
        self.input_const = const
        if one_d:
            self.input_place = "last"
        out = self.act(_channels_last(t.shape), loc if one_d else _WRAPPER)
        return self.emit(kind, [t, const], out, "input")

    def conv(self, node, mod: nn.Module, src) -> None:
        x = self.nhwc(src, self.loc(node.target))
        self.one_d = isinstance(mod, nn.Conv1d)
        before = self.producer.get(id(x))
        n, h, w, cin = x.shape
        out_shape = _channels_last(self._shape(node))
        cout = out_shape[-1]
        k = mod.kernel_size if len(mod.kernel_size) == 2 else (1, mod.kernel_size[0])
        stride = mod.stride if len(mod.stride) == 2 else (1, mod.stride[0])
        depthwise = mod.groups == cin and mod.groups == mod.in_channels
        loc = self.loc(node.target)
        if depthwise:
            weight = Tensor(loc, (1, *k, cout), "int8", math.prod(k) * cout, cout, 3)
        else:
            shape = (cout, *k, cin // mod.groups)
            weight = Tensor(loc, shape, "int8", math.prod(shape), cout)
        bias = Tensor(loc, (cout,), "int32", 4 * cout, cout)
        self.biases["1x1" if math.prod(k) == 1 else "conv"].append(bias)
        self.body.append((weight, None))
        if before is not None and before.kind == "RESHAPE" and not self.one_d and cout == 1:
            self.input_const.name, self.input_place = "arith.constant", "after perm"
        if before is not None and before.kind == "QUANTIZE":
            self.avg_into_conv = True
        padding = 0 if any(p for p in _pair(mod.padding)) else 1  # SAME = 0, VALID = 1
        opts = {"padding": padding, "stride_w": stride[1], "stride_h": stride[0]}
        if depthwise:
            opts["multiplier"] = cout // cin
        out = self.act(out_shape, loc)
        kind = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
        op = self.emit(kind, [x, weight, bias], out, node.target, **opts)
        op = self.producer[id(op)]
        if self.one_d:
            op.options["one_d"] = 1
        self.value[node] = (out, "nhwc")

    def _shape(self, node) -> tuple[int, ...]:
        return tuple(node.meta["sm_tensors"][0][0])

    def relu(self, node, src) -> None:
        t, layout = src
        op = self.producer.get(id(t))
        if op is None or op.options.get("act") or op.kind not in _FUSES:
            after = op.kind if op else "the input"
            raise MeasureError(f"tflm: a ReLU after {after} is not modelled")
        op.options["act"] = 1
        loc = self.loc(node.target) if node.op == "call_module" else self.loc("")
        op.options["relu_loc"] = loc
        if op.kind == "FULLY_CONNECTED":
            t.name = t.name + ";" + loc
        else:  # the first ReLU of the same shape joins the name (its zeros constant)
            first = self.relu_shapes.setdefault(t.shape, (node, loc))
            t.name = loc + ";" + (first[1] + ";" if first[0] is not node else "") + t.name
            if op.kind != "ADD" and not op.options.pop("one_d", 0):
                op_bias = self.biases["1x1"] + self.biases["conv"]
                next(b for b in op_bias if id(b) == op.inputs[2]).name = t.name
        self.value[node] = src

    def pool(self, node, mod: nn.Module, src) -> None:
        x = self.nhwc(src, self.loc(node.target))
        k, s = _pair(mod.kernel_size), _pair(mod.stride or mod.kernel_size)
        if isinstance(mod, (nn.MaxPool1d, nn.AvgPool1d)):
            k, s = (1, k[0]), (1, s[0])
        loc = self.loc(node.target)
        out = self.act(_channels_last(self._shape(node)), loc)
        avg = isinstance(mod, (nn.AvgPool1d, nn.AvgPool2d))
        kind = "AVERAGE_POOL_2D" if avg else "MAX_POOL_2D"
        opts = {"padding": 1, "stride_w": s[1], "stride_h": s[0]}
        opts.update(filter_w=k[1], filter_h=k[0])
        self.emit(kind, [x], out, node.target, **opts)
        if avg and node.target not in self.same_range:
            # Requantized to the next op's range (named after the pool when a flatten
            # follows, else after the transposes); not when the pool keeps the range.
            out = self.emit("QUANTIZE", [out], self.act(out.shape, _WRAPPER), node.target)
            self.pool_loc[id(out)] = loc
        self.value[node] = (out, "nhwc")

    def flatten(self, node, src) -> None:
        t, layout = src
        loc = self.loc(node.target) if node.op == "call_module" else self.loc("")
        prev = self.producer.get(id(t))
        if prev is not None and prev.kind == "QUANTIZE":
            t.name = self.pool_loc[id(t)]
        if layout == "nhwc" and t.shape[1] * t.shape[2] == 1:  # folded into the linear
            self.value[node] = (t, "flat")
            self.folded[id(t)] = loc
            return
        if layout == "nhwc" and t.shape[-1] > 1:
            perm = _int32("arith.constant", 4)
            self.consts.append(perm)
            n, h, w, c = t.shape
            # 1-D nets, adds and average pools name it after the op
            keep = h == 1 or prev.kind in ("ADD", "QUANTIZE")
            name = t.name if keep else _WRAPPER
            t = self.emit("TRANSPOSE", [t, perm], self.act((n, c, h, w), name), node.target)
        shape = _int32(loc, 2)
        self.consts.append(shape)
        out = self.act(self._shape(node), loc)
        self.value[node] = (self.emit("RESHAPE", [t, shape], out, node.target), "flat")

    def linear(self, node, mod: nn.Linear, src) -> None:
        t, _ = src
        folded = self.folded.pop(id(t), None)
        loc = self.loc(node.target)
        weight = Tensor(_WRAPPER, (mod.out_features, mod.in_features), "int8",
                        mod.out_features * mod.in_features, mod.out_features)
        bias = Tensor(loc, (mod.out_features,), "int32", 4 * mod.out_features, mod.out_features)
        self.weights.append(weight)
        self.biases["fc"].append(bias)
        out = self.act(self._shape(node), loc)
        if folded:
            self.suffix[id(out)] = folded
        self.value[node] = (self.emit("FULLY_CONNECTED", [t, weight, bias], out, node.target),
                            "flat")

    def finish(self, out: Tensor) -> Graph:
        out.name = _OUTPUT
        consts = list(self.consts)
        if self.input_const is not None:
            # The input's layout constant: first, or after the flatten's transpose (when
            # the first conv has one channel, or an average pool feeds a conv), or last
            # (1-D nets).
            place = self.input_place
            if place == "first" and self.avg_into_conv:
                place = "after perm"
            perm = 1 if consts and consts[0].shape == (4,) else 0
            at = {"first": 0, "after perm": perm, "last": len(consts)}[place]
            consts.insert(at, self.input_const)
        biases = [b for group in ("1x1", "fc", "conv") for b in reversed(self.biases[group])]
        order = [self.input, *consts, *biases, *self.weights]
        order += [t for t, _ in self.body]
        index = {id(t): i for i, t in enumerate(order)}
        g = self.graph
        for t in order:
            if id(t) in self.suffix and t is not out:
                t.name += ";" + self.suffix[id(t)]
            t.name = self.name(t.name)
            g.tensors.append(t)
        for _, op in self.body:
            if op is not None:
                op.inputs = tuple(index[i] for i in op.inputs)
                op.outputs = tuple(index[i] for i in op.outputs)
                g.ops.append(op)
        g.inputs, g.outputs = [0], [index[id(out)]]
        return g


_FUSES = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD")


def _pair(v: Any) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def lower(model: nn.Module, example: torch.Tensor) -> Graph:
    """The TFLite graph litert-torch emits for ``model`` (see the module docstring).

    Args:
        model: the float network (eval mode; pruned weights count dense).
        example: one input with its batch dimension of 1.

    Returns:
        The graph: tensors in the converter's index order, ops in execution order.

    Raises:
        MeasureError: the network has a layer or function this model does not lower.
    """
    with range_keeping_pools(model) as same_range:
        gm = trace(model, example[:1])
    w = _Walk(model)
    w.same_range = same_range
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            w.input = w.act(w._shape(node), _INPUT)
            w.value[node] = (w.input, "nchw" if len(w.input.shape) in (3, 4) else "flat")
        elif node.op == "output":
            graph = w.finish(w.value[node.args[0]][0])
            graph.traced = gm
            return graph
        elif node.op == "call_module":
            mod = gm.get_submodule(node.target)
            src = w.value[node.args[0]]
            if isinstance(mod, _CONVS):
                w.conv(node, mod, src)
            elif isinstance(mod, _SKIP):
                w.value[node] = src
            elif isinstance(mod, nn.ReLU):
                w.relu(node, src)
            elif isinstance(mod, _POOLS):
                w.pool(node, mod, src)
            elif isinstance(mod, nn.Flatten):
                w.flatten(node, src)
            elif isinstance(mod, nn.Linear):
                w.linear(node, mod, src)
            elif isinstance(mod, nn.Tanh):
                t = w.emit("TANH", [src[0]], w.act(src[0].shape, w.loc(node.target)), node.target)
                w.value[node] = (t, src[1])
            else:
                raise MeasureError(f"tflm: layer {node.target} ({type(mod).__name__}) is not "
                                   "modelled (an LSTM / GRU only as the recurrent builder's "
                                   "LastStep, one-directional, followed by linear layers)")
        elif node.op == "call_function" and node.target in (operator.add, torch.add):
            a, b = (w.value[x] for x in node.args[:2])
            out = w.act(a[0].shape, w.loc(""))
            w.value[node] = (w.emit("ADD", [a[0], b[0]], out, node.name), a[1])
        elif node.op == "call_function" and node.target in (torch.relu, F.relu):
            w.relu(node, w.value[node.args[0]])
        elif node.op == "call_function" and node.target is torch.flatten:
            w.flatten(node, w.value[node.args[0]])
        else:
            raise MeasureError(f"tflm: {node.op} {node.target} is not modelled")
    raise MeasureError("tflm: the traced graph has no output")
