"""The program ExecuTorch 1.5's Cortex-M flow emits for a float network, without executorch.

:func:`lower` walks the network's ``torch.fx`` graph (sparsemod's tracer, shapes from one
example) and emits, layer by layer, what ``to_executorch`` writes into the ``forward``
execution plan after the Cortex-M passes (read off exported programs):

=================  ==================================================================
torch layer        ExecuTorch operators (NHWC inside, int8 activations)
=================  ==================================================================
Conv2d             ``cortex_m::quantized_conv2d``; ``quantized_depthwise_conv2d`` when
                   ``groups == in_channels`` (so also every conv of one input channel)
BatchNorm, ReLU    folded / fused into the conv or linear before them (no op)
MaxPool2d          ``cortex_m::quantized_max_pool2d``
AvgPool2d          ``cortex_m::pad`` (zero padding, kept) + ``quantized_avg_pool2d``
Flatten            ``dim_order_ops::_clone_dim_order`` back to NCHW (4-D input), then a
                   view, which is no instruction and shares its input's memory
Linear             ``cortex_m::quantized_linear`` (weights per tensor)
Tanh               ``cortex_m::quantized_activation`` (a 256-byte int8 table)
Dropout            ``_clone_dim_order`` (eval dropout exports as a clone)
=================  ==================================================================

Every op is an out-variant kernel call: the emitter writes one EValue per scalar argument
(an ``Int`` per element of a list, then the ``IntList``; ``Bool`` for flags; ``Null`` for
``None``), the output tensor and a CMSIS-NN scratch tensor (``uint8``) before them, in
the order of the op's schema. Constants come first (per conv: shifts and multipliers
int32 per output channel, the int8 weight, the int32 bias; per linear: weight, bias), then
the input. Scalars that hold quantization parameters (zero points, multipliers, shifts)
are data dependent; they are taken as nonzero, except the ones the int8 scheme fixes
(an activation after ReLU has zero point -128, the weights' zero point is 0).

Memory is planned as ``exir.memory_planning.greedy`` does (alignment 16): each tensor
lives from the node that allocates it to the last node that reads it (the input from node
0, the output to the graph's end); tensors are taken largest first and put at offset 0 of
the first shared object none of whose tensors they overlap in time, else above the
overlapping ones in the first object where they fit, else in a new object; the objects
are laid end to end. Conv1d and recurrent layers are refused: the Cortex-M backend of
ExecuTorch 1.5 leaves them in float.

Not modelled (data dependent): a quantization scalar that comes out 0 (the zero point
after a tanh that saturates both ways) is 8 bytes less; byte-identical constants are
stored once (the emitter dedups by sha256); among tensors of one size greedy follows a
Python set's order, taken here as the later tensor first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from sparsemod.errors import MeasureError
from sparsemod.objectives.tracer import trace

ALIGNMENT = 16  # exir.tensor.ALIGNMENT: planned tensors and constants are padded to it
INT8, INT32, UINT8 = 1, 3, 0  # ScalarType codes of the schema (Char, Int, Byte)
_NZ = 1  # a data-dependent quantization scalar, taken as nonzero


@dataclass
class Program:
    """The parts of a ``forward`` execution plan that set the ``.pte``'s bytes.

    ``values``: ``(kind, payload)`` per EValue; a Tensor's payload is ``(scalar_type,
    sizes, dim_order, data_buffer_idx, allocation (memory_id, offset_low, offset_high) or
    None)``. ``instructions``: ``(op_index, args)``. ``constants``: the byte length of each
    constant buffer, the reserved empty buffer 0 first. ``buffers``: non_const_buffer_sizes.
    ``scratch``: CMSIS-NN scratch bytes per op; ``activations``: the planned bytes the
    same program would need without its scratch buffers.
    """

    values: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    instructions: list = field(default_factory=list)
    operators: list = field(default_factory=list)
    constants: list = field(default_factory=list)
    buffers: list = field(default_factory=list)
    scratch: dict = field(default_factory=dict)
    activations: int = 0
    traced: Any = field(default=None, repr=False, compare=False)  # the fx trace it came from


def _aligned(n: int) -> int:
    return -(-n // ALIGNMENT) * ALIGNMENT


@dataclass
class _Spec:
    """One planned tensor: its bytes, lifetime (graph node indices), planned offset."""

    nbytes: int
    start: int
    end: int
    offset: int = 0
    scratch: bool = False


def _act(shape: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """Sizes (logical NCHW) and dim order of an activation: channels-last when 4-D."""
    return list(shape), [0, 2, 3, 1] if len(shape) == 4 else list(range(len(shape)))


def _conv_scratch(mod: nn.Conv2d, in_shape, depthwise: bool) -> int:
    """CMSIS-NN's scratch bytes for the op on a DSP core (Cortex-M4, the default).

    ``arm_convolve_wrapper_s8_get_buffer_size``: none for a 1x1 conv without padding,
    else ``2 * rhs_cols`` int16, ``rhs_cols = kh * kw * c_in`` rounded up to 4.
    ``arm_depthwise_conv_wrapper_s8_get_buffer_size``: none unless the channel multiplier
    is 1, then none for a 3x3 filter padded by at most 1, else ``c * kh * kw`` int16.
    """
    kh, kw = mod.kernel_size
    ph, pw = mod.padding if isinstance(mod.padding, tuple) else (0, 0)
    c_in = in_shape[1]
    if depthwise:
        if mod.out_channels != c_in:
            return 0
        if (kh, kw) == (3, 3) and ph <= 1 and pw <= 1:
            return 0
        return c_in * kh * kw * 2
    if (kh, kw) == (1, 1) and (ph, pw) == (0, 0) and tuple(mod.dilation) == (1, 1):
        return 0
    return 2 * 2 * (-(-(kh * kw * c_in) // 4) * 4)


class _Walk:
    """Emits the program layer by layer; ``src`` is ``(value ref, spec, shape)``."""

    def __init__(self) -> None:
        self.consts: list[tuple] = []  # constant Tensor values, in placeholder order
        self.luts: list[tuple] = []  # activation tables: their placeholders come first
        self.body: list[tuple] = []  # the other values, placeholders' input first
        self.instructions: list[tuple[str, list]] = []
        self.ops: list[str] = []
        self.specs: list[_Spec] = []
        self.node = 0  # index of the next graph node after the placeholders
        self.scratch: dict[str, int] = {}

    def const(self, dtype: int, sizes: list[int], nbytes: int) -> tuple:
        ref = ("c", len(self.consts))
        self.consts.append((dtype, sizes, nbytes))
        return ref

    def _value(self, kind: str, payload) -> tuple:
        self.body.append([kind, payload])
        return ("v", len(self.body) - 1)

    def scalars(self, *items) -> list:
        """EValues for scalar args: int, bool, None, or a list of ints."""
        refs = []
        for it in items:
            if isinstance(it, (list, tuple)):
                refs.append(self._value("IntList", [self._value("Int", x) for x in it]))
            else:
                kind = "Null" if it is None else "Bool" if isinstance(it, bool) else "Int"
                refs.append(self._value(kind, it))
        return refs

    def tensor(self, dtype: int, sizes: list[int], order: list[int], spec: _Spec) -> tuple:
        return self._value("Tensor", (dtype, list(sizes), order, spec))

    def alloc(self, dtype: int, sizes, order, nbytes: int, scratch: bool = False) -> tuple:
        """A ``memory.alloc`` node and the tensor it plans."""
        spec = _Spec(nbytes, self.node, self.node, scratch=scratch)
        self.specs.append(spec)
        self.node += 1
        return self.tensor(dtype, sizes, order, spec), spec

    def call(self, op: str, reads: list[_Spec], args_before: list, out: tuple) -> None:
        """The op's node: it reads ``reads`` and writes ``out`` (the last two args)."""
        for s in reads:
            s.end = max(s.end, self.node)
        self.body[out[1]][1][3].end = self.node
        if op not in self.ops:
            self.ops.append(op)
        self.instructions.append((op, args_before + [out, out]))
        self.node += 1

    def conv(self, name: str, mod: nn.Conv2d, src, shape) -> tuple:
        c_in, c_out, (kh, kw) = mod.in_channels, mod.out_channels, mod.kernel_size
        dw = mod.groups == c_in
        if not dw and mod.groups != 1:
            raise MeasureError(f"executorch: grouped conv {name} is not modelled")
        shift = self.const(INT32, [c_out], 4 * c_out)
        mult = self.const(INT32, [c_out], 4 * c_out)
        w_shape = [1, kh, kw, c_out] if dw else [c_out, kh, kw, c_in]
        weight = self.const(INT8, w_shape, c_out * kh * kw * (1 if dw else c_in))
        bias = self.const(INT32, [c_out], 4 * c_out)
        nbytes = _conv_scratch(mod, src[2], dw)
        self.scratch[name] = nbytes
        scratch, s_spec = self.alloc(UINT8, [nbytes], [0], nbytes, True)
        out, _ = self.alloc(INT8, *_act(shape), _nbytes(shape))
        geo = self.scalars(list(mod.stride), list(mod.padding), list(mod.dilation))
        extra = self.scalars(c_out // c_in) if dw else []
        offs = self.scalars(_NZ, _NZ)  # input offset, output offset
        clamp = self.scalars(_NZ, _NZ)  # activation min, max
        args = [src[0], weight, bias, *geo, *extra, *offs, mult, shift, *clamp, scratch]
        op = "quantized_depthwise_conv2d" if dw else "quantized_conv2d"
        self.call(f"cortex_m::{op}", [src[1], s_spec], args, out)
        return out

    def pool(self, name: str, mod: nn.Module, src, shape) -> tuple:
        k, s, p = (_pair(getattr(mod, a)) for a in ("kernel_size", "stride", "padding"))
        if isinstance(mod, nn.MaxPool2d):
            out, _ = self.alloc(INT8, *_act(shape), _nbytes(shape))
            args = self.scalars(
                k, s, p, _pair(mod.dilation), bool(mod.ceil_mode), _NZ, _NZ, _NZ, _NZ
            )
            self.call("cortex_m::quantized_max_pool2d", [src[1]], [src[0], *args], out)
            return out
        # Average pooling: a zero padding op first, then the pool with its scratch
        # (arm_avgpool_s8_get_buffer_size: one int32 per channel on a DSP core).
        padded, p_spec = self.alloc(INT8, *_act(src[2]), _nbytes(src[2]))
        args = self.scalars([0, 0, 0, 0], [0, 0, 0, 0], _NZ)
        self.call("cortex_m::pad", [src[1]], [src[0], *args], padded)
        nbytes = 4 * src[2][1]
        self.scratch[name] = nbytes
        scratch, s_spec = self.alloc(UINT8, [nbytes], [0], nbytes, True)
        out, _ = self.alloc(INT8, *_act(shape), _nbytes(shape))
        args = self.scalars(k, s, p, bool(mod.ceil_mode), _NZ, _NZ, _NZ)
        self.call("cortex_m::quantized_avg_pool2d", [p_spec, s_spec], [padded, *args, scratch], out)
        return out

    def clone(self, src, shape) -> tuple:
        out, _ = self.alloc(INT8, list(shape), list(range(len(shape))), _nbytes(shape))
        args = self.scalars(False, list(range(len(shape))))
        self.call("dim_order_ops::_clone_dim_order", [src[1]], [src[0], *args], out)
        return out

    def view(self, src, shape) -> tuple:
        """A ``memory.view`` node: a tensor value sharing its input's planned memory."""
        src[1].end = max(src[1].end, self.node)
        self.node += 1
        return self.tensor(INT8, list(shape), list(range(len(shape))), src[1])

    def tanh(self, src, shape) -> tuple:
        """``cortex_m::quantized_activation``: a 256-entry int8 table looked up per
        element; its placeholder is put before all the others, so the tables are stored
        last layer first."""
        lut = ("l", len(self.luts))
        self.luts.append((INT8, [256], 256))
        out, _ = self.alloc(INT8, list(shape), list(range(len(shape))), _nbytes(shape))
        self.call("cortex_m::quantized_activation", [src[1]], [src[0], lut], out)
        return out

    def linear(self, mod: nn.Linear, src, shape) -> tuple:
        weight = self.const(
            INT8, [mod.out_features, mod.in_features], mod.out_features * mod.in_features
        )
        bias = self.const(INT32, [mod.out_features], 4 * mod.out_features)
        out, _ = self.alloc(INT8, list(shape), list(range(len(shape))), _nbytes(shape))
        # None (no kernel sums), input offset, weight offset 0, output offset,
        # [multiplier], [shift], activation max, min.
        args = self.scalars(None, _NZ, 0, _NZ, [_NZ], [_NZ], _NZ, _NZ)
        self.call("cortex_m::quantized_linear", [src[1]], [src[0], weight, bias, *args], out)
        return out


def _nbytes(shape) -> int:
    return math.prod(int(d) for d in shape)


def _overlap(a: _Spec, b: _Spec) -> bool:
    return not (a.end < b.start or a.start > b.end)


def _pair(v) -> list[int]:
    return [int(x) for x in v] if isinstance(v, (tuple, list)) else [int(v), int(v)]


def _plan(specs: list[_Spec]) -> int:
    """``exir.memory_planning.greedy`` over the planned tensors; sets each offset and
    returns the buffer's size (see the module docstring)."""
    objects: list[tuple[int, list[tuple[int, _Spec]]]] = []  # (size, [(offset, spec)])
    # Largest first; among equal sizes the later tensor first (greedy insorts the specs by
    # size and reverses the list).
    order = sorted(enumerate(specs), key=lambda p: (-_aligned(p[1].nbytes), -p[0]))
    for _, spec in order:
        size = _aligned(spec.nbytes)
        free = (o for o in objects if not any(_overlap(spec, s) for _, s in o[1]))
        obj, at = next(free, None), 0
        for o in objects if obj is None else []:
            at = max((off + _aligned(s.nbytes) for off, s in o[1] if _overlap(spec, s)), default=0)
            if 0 < at and at + size <= o[0]:
                obj = o
                break
        if obj is None:
            obj, at = (size, []), 0
            objects.append(obj)
        obj[1].append((at, spec))
    base = 0
    for size, allocs in objects:
        for off, spec in allocs:
            spec.offset = base + off
        base += size
    return base


def lower(model: nn.Module, example: torch.Tensor) -> Program:
    """The ``forward`` program ExecuTorch's Cortex-M flow emits for ``model``.

    Args:
        model: the float network (eval mode).
        example: one input with its batch dimension of 1.

    Returns:
        The program (see :class:`Program`).

    Raises:
        MeasureError: the network has a layer the Cortex-M backend does not lower to int8
            (Conv1d, LSTM, GRU) or this model does not know.
    """
    gm = trace(model, example[:1])
    w = _Walk()
    value: dict = {}
    out_ref = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            shape = tuple(node.meta["sm_tensors"][0][0])
            spec = _Spec(_nbytes(shape), 0, 0)
            w.specs.append(spec)
            w.node = 1
            value[node] = (w.tensor(INT8, *_act(shape), spec), spec, shape)
            w.input = value[node][0]
        elif node.op == "output":
            out_ref = value[node.args[0]]
        elif node.op == "call_module":
            mod = gm.get_submodule(node.target)
            src = value[node.args[0]]
            shape = tuple(node.meta["sm_tensors"][0][0])
            if isinstance(mod, (nn.BatchNorm2d, nn.ReLU, nn.Identity)):
                value[node] = src
                continue
            if isinstance(mod, nn.Conv2d):
                ref = w.conv(node.target, mod, src, shape)
            elif isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
                ref = w.pool(node.target, mod, src, shape)
            elif isinstance(mod, nn.Flatten):
                # NHWC back to NCHW, unless the two are one layout (C == 1 or H*W == 1).
                if len(src[2]) == 4 and src[2][1] > 1 and src[2][2] * src[2][3] > 1:
                    ref = w.clone(src, src[2])
                    src = (ref, w.body[ref[1]][1][3], src[2])
                ref = w.view(src, shape)
            elif isinstance(mod, nn.Dropout):
                ref = w.clone(src, shape)
            elif isinstance(mod, nn.Linear):
                ref = w.linear(mod, src, shape)
            elif isinstance(mod, nn.Tanh):
                ref = w.tanh(src, shape)
            else:
                raise MeasureError(
                    f"executorch: layer {node.target} ({type(mod).__name__}) has no int8 "
                    "Cortex-M kernel in ExecuTorch 1.5 (conv2d, depthwise, pools, linear, "
                    "tanh only; Conv1d, LSTM and GRU stay in float)"
                )
            value[node] = (ref, w.body[ref[1]][1][3], shape)
        else:
            raise MeasureError(f"executorch: {node.op} {node.target} is not modelled")
    if out_ref is None:
        raise MeasureError("executorch: the traced graph has no output")
    out_ref[1].end = w.node  # the graph's output node
    program = _finish(w, out_ref[0])
    program.traced = gm
    return program


def _finish(w: _Walk, out: tuple) -> Program:
    no_scratch = [_Spec(0 if s.scratch else s.nbytes, s.start, s.end) for s in w.specs]
    activations = _plan(no_scratch)
    total = _plan(w.specs)
    consts = w.luts[::-1] + w.consts  # each table's placeholder is put before the others
    first = {"c": len(w.luts), "v": len(consts)}

    def index(ref: tuple) -> int:
        return len(w.luts) - 1 - ref[1] if ref[0] == "l" else first[ref[0]] + ref[1]

    values = [
        ("Tensor", (t, s, list(range(len(s))), i + 1, None)) for i, (t, s, _) in enumerate(consts)
    ]
    for kind, payload in w.body:
        if kind == "Tensor":
            t, sizes, order, spec = payload
            payload = (t, sizes, order, 0, (1, spec.offset, 0))
        elif kind == "IntList":
            payload = [index(r) for r in payload]
        values.append((kind, payload))
    return Program(
        values=values,
        inputs=[index(w.input)],
        outputs=[index(out)],
        instructions=[(w.ops.index(op), [index(a) for a in args]) for op, args in w.instructions],
        operators=[(op, "out") for op in w.ops],
        constants=[0] + [b for _, _, b in consts],
        buffers=[0, total],
        scratch=dict(w.scratch),
        activations=activations,
    )
