"""Flash and arena of a TFLM model whose weights are LUT-compressed by TFLM's compressor.

``tflite_micro``'s ``compression.compress`` (LUT method, per channel) rewrites each chosen
int8 weight whose channels hold at most ``2**bits`` distinct values:

* the weight tensor keeps its index, name and quantization but becomes a uint8 vector of
  the packed ``bits``-wide indices (``ceil(elements * bits / 8)`` B);
* a new uint8 *ancillary* tensor (no quantization table, no ``has_rank``) holds the
  16-byte decode header and the value tables: ``tables`` (the channels) ``x stride``
  (the most distinct values of one channel) int8 bytes;
* a custom ``TFLM_DECODE`` op goes right before the consumer (one per consumer; it reads
  encoded and ancillary tensors and writes a *decoded* copy of the original tensor,
  named ``+ "_decoded"``, with no buffer: it lives in the arena); the consumer reads it.
  New tensors are appended consumer by consumer, last consumer first: ancillary, decoded;

then writes the model with ``model_editor`` (byte-identical buffers merged, so every
tensor without data shares the first one's empty buffer, unreferenced buffers dropped,
the metadata's buffers appended last) and re-serializes it with the C++ object API
(``tflite_flatbuffer_align_wrapper``: unpack, ``Model::Pack``).

**Flash.** :func:`packed_bytes` replays that ``Model::Pack`` with the size arithmetic of
:class:`~sparsemod.objectives.tflm_flatbuffer._Builder`: one builder, vtables shared
across the whole file, default scalars and empty vectors left out (an op code's version
1, a tensor's buffer 0), each table's fields widest first, objects in schema order with
children first: the op codes (first-use order of the new op list: ``TFLM_DECODE`` is
code 0 when the first op reads a compressed weight), the subgraph (per tensor: shape,
name, quantization with its scales and int64 zero points, the table; the index vectors;
per op: inputs, outputs, builtin options, the table; the name ``main``), the
description, the buffers (each data vector aligned so that it *ends* on 16 B: the
schema's ``force_align: 16`` on ``Buffer.data``), the metadata, the signature, the model.

**Arena.** The decoded tensors are planned like activations, alive from their DECODE op
to its consumer (:func:`~sparsemod.objectives.tflm_arena.allocate` with :func:`_prepare`).
Each DECODE op adds (64-bit host build, measured against the Python interpreter's
``print_allocations``: +2 ``TfLiteEvalTensor`` (48 B), +1 ``NodeAndRegistration`` (64 B)
and +96 B ``Persistent buffer data`` per DECODE of one weight):

* a ``NodeAndRegistration`` (64 B); no builtin parameters and no ``Init`` data;
* a ``TfLiteEvalTensor`` (24 B) for each of the ancillary and decoded tensors;
* in ``Prepare``: the ``DecodeState*`` array (8 B per output, 16-aligned: 16 B), then per
  output the temporary structs of the encoded (with its quantization: the weight's
  zero points), ancillary and decoded tensors, and a ``DecodeStateLut`` (72 B: vtable
  pointer, context, profiler, indices and value-table pointers, three ``size_t`` and
  three bytes; 16-aligned: 80 B). These are the ``decode`` part of the tail.

Not modelled, as they depend on the values and not on the shapes: the compressor merges
byte-identical buffers and identical value tables, so two compressed weights whose packed
indices (or headers and tables) coincide byte for byte would share one buffer (or one
ancillary tensor).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from sparsemod.objectives.tflm import TflmCosts, graph_costs
from sparsemod.objectives.tflm_arena import ALIGN
from sparsemod.objectives.tflm_arena import _prepare as _kernel_prepare
from sparsemod.objectives.tflm_flatbuffer import (
    _DESCRIPTION,
    _METADATA,
    _SIGNATURE,
    OPCODES,
    TENSOR_TYPE,
    _Builder,
    _sorted_fields,
    options_fields,
)
from sparsemod.objectives.tflm_graph import Graph, Op, Tensor

DECODE = "TFLM_DECODE"
_TYPES = {**TENSOR_TYPE, "uint8": 3}
_DCM = 16  # the decode header of an ancillary tensor
_MAX_STRIDE = 128  # the header's value-table stride is one byte, at most 128
LUT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")  # the ops whose weights LUT takes
# 64-bit host build (measured, see the module docstring)
_DECODE_STATE_POINTER = 8
_DECODE_STATE_LUT = 72


@dataclass(frozen=True)
class Lut:
    """One weight compressed to ``bits``-wide indices into per-channel value tables.

    ``tensor`` is an int8 weight's index in ``graph.tensors`` (the weights input of a
    CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED), ``bits`` the index width (1..7),
    ``stride`` the value-table length (the most distinct int8 values of one channel,
    at most ``2**bits``), ``tables`` the number of tables (the channels along ``axis``)
    and ``axis`` the channel axis of the TFLite shape (0 for conv and fully connected
    ``[O, ...]``, 3 for depthwise ``[1, H, W, C]``).
    """

    tensor: int
    bits: int
    stride: int
    tables: int
    axis: int

    @property
    def ancillary_bytes(self) -> int:
        """The ancillary tensor: the decode header and the value tables."""
        return _DCM + self.tables * self.stride


@dataclass
class _Tensor(Tensor):
    """A tensor of the compressed file: ``role`` is ``kept`` (the converter's),
    ``encoded``, ``ancillary`` or ``decoded``."""

    role: str = "kept"


def encoded_bytes(shape: tuple[int, ...], bits: int) -> int:
    """The packed indices of a tensor of ``shape``: ``bits`` each, padded to a byte."""
    return -(-math.prod(shape) * bits // 8)


def weight_lut(graph: Graph, tensor: int, bits: int, stride: int) -> Lut:
    """The :class:`Lut` of weight ``tensor`` (its tables and axis from its consumer)."""
    depthwise = any(op.kind == "DEPTHWISE_CONV_2D" and op.inputs[1] == tensor
                    for op in graph.ops)
    axis = len(graph.tensors[tensor].shape) - 1 if depthwise else 0
    return Lut(tensor, bits, stride, graph.tensors[tensor].shape[axis], axis)


def _check(graph: Graph, lut: Lut) -> None:
    t = graph.tensors[lut.tensor] if 0 <= lut.tensor < len(graph.tensors) else None
    if t is None or not any(op.kind in LUT_OPS and op.inputs[1] == lut.tensor
                            for op in graph.ops) or t.dtype != "int8" or not t.data:
        raise ValueError(f"{lut}: tensor {lut.tensor} is not the int8 weights of a conv, "
                         "depthwise conv or fully connected op")
    if not 1 <= lut.bits <= 7:
        raise ValueError(f"{lut}: the index width must be 1..7 bits")
    if not 1 <= lut.stride <= min(2**lut.bits, _MAX_STRIDE):
        raise ValueError(f"{lut}: a {lut.bits}-bit index addresses 1..{2**lut.bits} values")
    if lut.axis != t.qdim or lut.tables != t.shape[lut.axis]:
        raise ValueError(f"{lut}: the tables must be the {t.shape[t.qdim]} channels along "
                         f"axis {t.qdim} of {t.shape}, the quantized dimension")


def compressed_graph(graph: Graph, luts: Sequence[Lut]) -> Graph:
    """The graph ``compress()`` writes: encoded weights, ancillary and decoded tensors
    appended (last consumer first), a DECODE op before each consumer.

    Raises:
        ValueError: a :class:`Lut` that does not fit its tensor, or two for one tensor.
    """
    by_tensor = {lut.tensor: lut for lut in luts}
    if len(by_tensor) != len(luts):
        raise ValueError("one Lut per tensor")
    for lut in luts:
        _check(graph, lut)
    tensors = [_Tensor(**asdict(t)) for t in graph.tensors]
    reads = {k: [i for i in dict.fromkeys(op.inputs) if i in by_tensor]
             for k, op in enumerate(graph.ops)}
    ancillary: dict[int, int] = {}
    decode: dict[int, Op] = {}
    for k in sorted((k for k in reads if reads[k]), reverse=True):
        inputs, outputs = [], []
        for i in reads[k]:
            t = graph.tensors[i]
            if i not in ancillary:
                size = by_tensor[i].ancillary_bytes
                tensors.append(_Tensor(f"{t.name}_ancillary", (size,), "uint8", size,
                                       role="ancillary"))
                ancillary[i] = len(tensors) - 1
            tensors.append(_Tensor(f"{t.name}_decoded", t.shape, t.dtype, 0, t.scales,
                                   t.qdim, role="decoded"))
            inputs += [i, ancillary[i]]
            outputs.append(len(tensors) - 1)
        decode[k] = Op(DECODE, tuple(inputs), tuple(outputs), {}, graph.ops[k].layer)
    for i, lut in by_tensor.items():
        size = encoded_bytes(graph.tensors[i].shape, lut.bits)
        tensors[i] = replace(tensors[i], shape=(size,), dtype="uint8", data=size,
                             role="encoded")
    ops: list[Op] = []
    for k, op in enumerate(graph.ops):
        if k in decode:
            ops.append(decode[k])
            new = dict(zip(decode[k].inputs[::2], decode[k].outputs))  # encoded -> decoded
            op = replace(op, inputs=tuple(new.get(i, i) for i in op.inputs))
        ops.append(op)
    return Graph(tensors, ops, list(graph.inputs), list(graph.outputs), graph.traced)


def _buffers(graph: Graph) -> tuple[list[int], list[int]]:
    """Each tensor's buffer index, and each buffer's data bytes, as ``model_editor``
    numbers them: 0 empty; the first dataless tensor's buffer (shared by all dataless
    tensors but the decoded ones, which have buffer 0) and the kept constants' in
    tensor order; then the encoded, then the ancillary tensors'; then the metadata's."""
    roles = [getattr(t, "role", "kept") for t in graph.tensors]
    empty = min(i for i, t in enumerate(graph.tensors)
                if not t.data and roles[i] != "decoded")
    order = [i for i, r in enumerate(roles) if r == "kept" and (graph.tensors[i].data
                                                                or i == empty)]
    order += [i for i, r in enumerate(roles) if r == "encoded"]
    order += [i for i, r in enumerate(roles) if r == "ancillary"]
    number = {i: k + 1 for k, i in enumerate(order)}
    index = [0 if r == "decoded" else number[i if t.data else empty]
             for i, (t, r) in enumerate(zip(graph.tensors, roles))]
    sizes = [0] + [graph.tensors[i].data for i in order] + [d for _, d in _METADATA]
    return index, sizes


def _tensor(b: _Builder, t: Tensor, buffer: int) -> None:
    """``CreateTensor``: shape, name, quantization (scales, zero points, table), table."""
    ancillary = getattr(t, "role", "kept") == "ancillary"
    if t.shape:  # an empty vector is left out
        b.vector(len(t.shape), 4)
    b.string(len(t.name.encode()))
    if not ancillary:  # the converter's tables, copied; the ancillary tensor has none
        if t.scales:
            b.vector(t.scales, 4)
            b.vector(t.scales, 8)
        b.table(_sorted_fields([(2, 4), (3, 4)] + [(6, 4)] * bool(t.qdim)) if t.scales
                else [])
    fields = [(0, 4)] * bool(t.shape) + [(3, 4)] + [(2, 4)] * bool(buffer)
    fields += [(1, 1)] * bool(_TYPES[t.dtype])
    fields += [] if ancillary else [(4, 4), (8, 1)]  # quantization, has_rank
    b.table(_sorted_fields(fields))


def packed_bytes(graph: Graph) -> int:
    """The length of the file ``compress()`` writes for a :func:`compressed_graph`."""
    b = _Builder()
    codes = list(dict.fromkeys(op.kind for op in graph.ops))
    for kind in codes:  # OperatorCode: deprecated code (i8), custom code, version, code
        if kind == DECODE:  # builtin code CUSTOM (32), its name, version 1
            b.string(len(DECODE))
            b.table(_sorted_fields([(1, 4), (3, 4)]))
        else:
            code, version = OPCODES[kind]
            b.table(_sorted_fields([(0, 1), (3, 4)] * bool(code)
                                   + [(2, 4)] * (version != 1)))
    b.vector(len(codes), 4)
    buffers, sizes = _buffers(graph)
    for t, buffer in zip(graph.tensors, buffers):
        _tensor(b, t, buffer)
    b.vector(len(graph.tensors), 4)
    b.vector(len(graph.inputs), 4)
    b.vector(len(graph.outputs), 4)
    for op in graph.ops:
        b.vector(len(op.inputs), 4)
        b.vector(len(op.outputs), 4)
        fields = [(1, 4), (2, 4)] + [(0, 4)] * bool(codes.index(op.kind))
        opts = None if op.kind == DECODE else options_fields(op.kind, op.options)
        if opts is not None:
            b.table(opts)
            fields += [(4, 4), (3, 1)]
        b.table(_sorted_fields(fields))
    b.vector(len(graph.ops), 4)
    b.string(len("main"))
    b.table(_sorted_fields([(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]))
    b.vector(1, 4)  # subgraphs
    b.string(len(_DESCRIPTION))
    for size in sizes:
        if size:
            b.prep(16, size)  # force_align: 16
            b.vector(size, 1)
        b.table([(0, 4)] if size else [])
    b.vector(len(sizes), 4)
    for name, _data in _METADATA:
        b.string(len(name))
        b.table(_sorted_fields([(0, 4), (1, 4)]))
    b.vector(len(_METADATA), 4)
    key, arg, out = _SIGNATURE
    for name, t in ((arg, graph.inputs[0]), (out, graph.outputs[0])):
        b.string(len(name))
        b.table(_sorted_fields([(0, 4)] + [(1, 4)] * bool(t)))  # TensorMap
        b.vector(1, 4)
    b.string(len(key))
    b.table(_sorted_fields([(0, 4), (1, 4), (2, 4)]))
    b.vector(1, 4)  # signature defs
    b.table(_sorted_fields([(i, 4) for i in (0, 1, 2, 3, 4, 6, 7)]))
    return b.finish()


def _prepare(a, graph: Graph, op: Op) -> None:
    """One kernel's Prepare, DECODE's included (see the module docstring)."""
    if op.kind != DECODE:
        _kernel_prepare(a, graph, op)
        return
    a.persistent("decode", _DECODE_STATE_POINTER * len(op.outputs), ALIGN)
    for k, out in enumerate(op.outputs):
        a.temp_tensor(graph.tensors[op.inputs[2 * k]])
        a.temp_tensor(graph.tensors[op.inputs[2 * k + 1]])
        a.temp_tensor(graph.tensors[out])
        a.persistent("decode", _DECODE_STATE_LUT, ALIGN)


def lut_costs(graph: Graph, luts: Sequence[Lut]) -> TflmCosts:
    """Flash and arena of ``graph`` with these weights LUT-compressed.

    Args:
        graph: a graph from :func:`~sparsemod.objectives.tflm_graph.lower`.
        luts: the weights to compress, at most one per tensor.

    Returns:
        The compressed file's length (as ``compress()`` writes it) and the smallest
        arena TFLM runs it in, with the split (the tail's DECODE state as ``decode``)
        and the ops, DECODE ops included (their stored bytes: encoded and ancillary).
        Without ``luts``, :func:`~sparsemod.objectives.tflm.graph_costs` of ``graph``.

    Raises:
        ValueError: a :class:`Lut` that does not fit its tensor.
    """
    if not luts:
        return graph_costs(graph)
    return graph_costs(compressed_graph(graph, luts), flash=packed_bytes, prepare=_prepare)


def lut_saving(graph: Graph, luts: Sequence[Lut]) -> tuple[int, int]:
    """Flash saved and arena added by compressing ``luts`` (either may be negative:
    small weights grow, their value tables and DECODE ops outweighing the indices)."""
    before, after = graph_costs(graph), lut_costs(graph, luts)
    return (before.flatbuffer_bytes - after.flatbuffer_bytes,
            after.arena_bytes - before.arena_bytes)
