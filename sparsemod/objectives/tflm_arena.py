"""TFLM's arena for one graph: the planned activations (head) and the persistent tail.

**Head.** ``MicroAllocator::CommitStaticMemoryPlan`` gives every tensor that is neither a
constant nor a variable a lifetime (the graph's input from step 0, an op's outputs from
its step to the last step that reads them, the graph's outputs to the end) and a size
rounded up to 16 B, and ``GreedyMemoryPlanner`` places them: largest first (ties: the
later tensor first), each at the lowest offset that does not overlap a placed tensor
alive at the same time. :func:`greedy_plan` is that algorithm.

**Tail.** Allocated downwards from the arena's end, each block aligned down to its own
alignment, in this order (64-bit host build of ``tflite_micro``, as its Python
interpreter runs; a 32-bit board needs less for the pointers in these structs):

* a constant block: the allocator, planner and interpreter objects (488 B, measured);
* a ``TfLiteEvalTensor`` per tensor (24 B) and a ``NodeAndRegistration`` per op (64 B);
* per op its builtin parameters (``TfLiteConvParams`` and the like, 4-aligned);
* per op the kernel's ``OpData`` (16-aligned), then what its ``Prepare`` allocates: the
  per-channel output multipliers and shifts of conv / depthwise / fully connected
  (``4 * channels`` B each);
* the interpreter's input and output: a pointer array, a 64 B ``TfLiteTensor`` each and,
  when quantized, its ``TfLiteAffineQuantization`` (24 B) and int32 zero points.

**Smallest arena.** ``AllocateTensors`` also needs memory it gives back, between head and
tail (``SingleArenaBufferAllocator``: temporaries above the head must fit below the
tail), so :func:`allocate` replays it:

* the head holds 12 scratch-buffer requests (16 B each) while the kernels prepare;
* each kernel's Prepare takes temporary ``TfLiteTensor`` structs (64 B) for the tensors
  it reads, with their quantization (24 B + 4 B per channel of zero points): conv and
  depthwise take output, input and filter, allocate their per-channel arrays from the
  tail, then take input, filter, bias and output again; fully connected takes its four
  and writes its arrays while they are live (the tail may then cover the output's
  temporaries where nothing is read afterwards, never its pointers: a corrupted one
  fails the temp checksum);
* ``CommitStaticMemoryPlan`` takes an ``AllocationInfo`` (32 B) per tensor as a
  temporary and gives the rest to the planner, which needs 40 B per planned buffer;
* then the head becomes the plan and the input and output structs join the tail.

The smallest arena is the largest of these needs, to 16 B: what ``sparsemod.deploy``'s
``RuntimeReport.memory_bytes`` finds by trying.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from sparsemod.objectives.tflm_graph import Graph

ALIGN = 16
_BASE_TAIL = 480
_BASE_MISALIGN = 8
_DTYPE_BYTES = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4, "int64": 8, "bool": 1}
# Bytes of the builtin parameter struct TFLM's parser allocates per op kind (for the
# converter's files: a file that writes more options, e.g. AI Edge Quantizer's QUANTIZE
# options, passes its own to :func:`allocate`).
BUILTIN = {
    "RESHAPE": 36, "MUL": 4, "ADD": 8, "CONCATENATION": 8, "FULLY_CONNECTED": 32,
    "CONV_2D": 28, "DEPTHWISE_CONV_2D": 28, "MAX_POOL_2D": 40, "AVERAGE_POOL_2D": 40,
    "MEAN": 4, "SUB": 8,
}
# The parameters TFLM's parser aligns to 8 (the others: 4): measured by shifting an LSTM's
# parameters with 0-3 extra MULs (tests/objectives/test_tflm_lstm.py, test_tflm_gru.py).
_BUILTIN_ALIGN = {"FULLY_CONNECTED": 8}
# Bytes of the kernel's OpData (AllocatePersistentBuffer in Init).
_OPDATA = {
    "FULLY_CONNECTED": 72, "CONV_2D": 80, "DEPTHWISE_CONV_2D": 80, "MAX_POOL_2D": 32,
    "AVERAGE_POOL_2D": 32, "QUANTIZE": 32, "ADD": 60, "TANH": 16, "LOGISTIC": 16,
    "MUL": 40, "CONCATENATION": 80, "MEAN": 64, "SUB": 52,  # OpDataSub
}
_PER_CHANNEL = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
# Struct sizes of the 64-bit host build.
_TFLITE_TENSOR = 64
_AFFINE_QUANTIZATION = 24
_ALLOCATION_INFO = 32
_SCRATCH_REQUEST = 16
_MAX_SCRATCH_PER_OP = 12
_PLANNER_PER_BUFFER = 40  # GreedyMemoryPlanner::per_buffer_size()


def tensor_bytes(shape: tuple[int, ...], dtype: str) -> int:
    """The bytes of a dense tensor."""
    return math.prod(shape) * _DTYPE_BYTES[dtype]


def _align(n: int, a: int = ALIGN) -> int:
    return -(-n // a) * a


def greedy_plan(buffers: list[tuple[int, int, int]]) -> int:
    """The arena bytes ``GreedyMemoryPlanner`` needs for ``(size, first, last)`` buffers.

    Args:
        buffers: each buffer's aligned size and the first and last steps it is alive.

    Returns:
        The end of the highest placed buffer.
    """
    order = sorted(reversed(range(len(buffers))), key=lambda i: -buffers[i][0])
    placed: list[tuple[int, int]] = []  # (offset, buffer) by offset
    for i in order:
        size, first, last = buffers[i]
        offset = 0
        for at, j in placed:
            size_j, first_j, last_j = buffers[j]
            if first_j > last or first > last_j:
                continue
            if at - offset >= size:
                break
            offset = max(offset, at + size_j)
        placed.append((offset, i))
        placed.sort(key=lambda p: p[0])
    return max((at + buffers[j][0] for at, j in placed), default=0)


def lifetimes(graph: Graph) -> dict[int, tuple[int, int]]:
    """Each planned tensor's (first, last) step, as TFLM's AllocationInfoBuilder marks it."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for t in graph.inputs:
        first[t] = last[t] = 0
    for step, op in enumerate(graph.ops, 1):
        for t in op.outputs:
            first.setdefault(t, step)
            last[t] = step
        for t in op.inputs:
            if t >= 0:
                last[t] = step
    for t in graph.outputs:
        last[t] = len(graph.ops)
    return {t: (first[t], last[t]) for t in first if not graph.tensors[t].data}


def arena_head(graph: Graph) -> int:
    """The planned activation bytes (TFLM's "head")."""
    live = lifetimes(graph)
    buffers = [
        (_align(tensor_bytes(graph.tensors[t].shape, graph.tensors[t].dtype)), f, la)
        for t, (f, la) in sorted(live.items())
    ]
    return greedy_plan(buffers)


def _per_channel(graph: Graph, op) -> int:
    """The channels of the per-channel multiplier and shift arrays the op's Prepare
    allocates (conv and depthwise always, fully connected when its weights are per-channel)."""
    if op.kind not in _PER_CHANNEL or graph.tensors[op.inputs[0]].dtype != "int8":
        return 0
    weight = graph.tensors[op.inputs[1]]
    if op.kind == "FULLY_CONNECTED":
        return weight.scales if weight.scales > 1 else 0
    return graph.tensors[op.outputs[0]].shape[-1]


class _Allocator:
    """``SingleArenaBufferAllocator`` in an arena whose size is a multiple of 16.

    ``used`` is the tail's bytes from the arena's end (persistent, aligned downwards),
    ``top`` the end of the head side (the head, then temporary allocations above it);
    ``need`` the smallest arena that every allocation so far fits in.
    """

    def __init__(self) -> None:
        self.used = _BASE_TAIL + _BASE_MISALIGN
        self.parts = {"runtime": self.used}
        self.head = self.top = 0
        self.need = 0

    def persistent(self, part: str, size: int, align: int) -> None:
        """A tail allocation; it must stay above the head."""
        before = self.used
        self.used = _align(self.used + size, align)
        self.parts[part] = self.parts.get(part, 0) + self.used - before
        self.need = max(self.need, self.used + self.head)

    def temp(self, size: int, align: int) -> None:
        """A temporary allocation above the head; it must fit below the tail."""
        self.top = _align(self.top, align) + size
        self.need = max(self.need, self.used + self.top)

    def temp_tensor(self, tensor) -> tuple[int, int | None]:
        """``AllocateTempTfLiteTensor``: the struct, and its quantization when it has any.

        Returns:
            Where the struct and the quantization struct start.
        """
        self.temp(_TFLITE_TENSOR, 8)
        at, quantization = self.top - _TFLITE_TENSOR, None
        if tensor.scales:
            self.temp(_AFFINE_QUANTIZATION, 8)
            quantization = self.top - _AFFINE_QUANTIZATION
            self.temp(4 + 4 * tensor.scales, 4)
        return at, quantization

    def arrays_over_temporaries(self, channels: int, last: tuple[int, int | None]) -> None:
        """The fully connected kernel's per-channel arrays, allocated and written while
        its temporaries are live (the allocator only keeps the tail above the head).

        The arena must be large enough that the bytes written (``4 * channels`` at the
        start of each array) miss what is read afterwards: the temporaries below the last
        one, its quantization type and pointer and its params (``TfLiteTensor`` bytes
        0-24 and 48-56) and its zero-point pointer (bytes 8-16 of its quantization).
        """
        first = _align(self.used + 4 * channels, ALIGN)
        second = _align(first + 4 * channels, ALIGN)
        tensor, quantization = last
        keep = [(tensor + 48, tensor + 56)]
        if quantization is not None:
            keep.append((quantization + 8, quantization + 16))
        arena = _align(second + tensor + 24)
        while any(lo < hi_w and lo_w < hi for lo, hi in keep
                  for lo_w, hi_w in ((arena - u, arena - u + 4 * channels)
                                     for u in (first, second))):
            arena += ALIGN
        self.need = max(self.need, arena)
        self.persistent("op_data", 4 * channels, ALIGN)
        self.persistent("op_data", 4 * channels, ALIGN)

    def reset(self, head: int) -> None:
        """``ResizeBuffer``: the head becomes ``head`` bytes, temporaries are gone."""
        self.head = self.top = head


# What each kernel's Prepare asks for as temporary tensors: "i<k>" input k, "o" output,
# "|" where a conv allocates its per-channel arrays (the reference kernels of tflite-micro).
_PREPARE = {
    "CONV_2D": "o i0 i1 | i0 i1 i2 o", "DEPTHWISE_CONV_2D": "o i0 i1 | i0 i1 i2 o",
    "FULLY_CONNECTED": "i0 i1 i2 o |", "TANH": "i0 i0 o", "LOGISTIC": "i0 i0 o",
    "TRANSPOSE": "i0 i1 o",
}


def _prepare(a: _Allocator, graph: Graph, op) -> None:
    """One op's Prepare: its temporary tensors and per-channel arrays."""
    steps = _PREPARE.get(op.kind, " ".join(f"i{k}" for k in range(len(op.inputs))) + " o")
    channels = _per_channel(graph, op)
    last = (a.top, None)
    for step in steps.split():
        if step == "|" and channels and op.kind == "FULLY_CONNECTED":
            a.arrays_over_temporaries(channels, last)
        elif step == "|" and channels:
            a.persistent("op_data", 4 * channels, ALIGN)
            a.persistent("op_data", 4 * channels, ALIGN)
        elif step != "|":
            index = op.outputs[0] if step == "o" else op.inputs[int(step[1:])]
            if index >= 0:
                last = a.temp_tensor(graph.tensors[index])


def allocate(
    graph: Graph,
    prepare: Callable[[_Allocator, Graph, Any], None] = _prepare,
    builtin: Mapping[str, int] = BUILTIN,
) -> tuple[dict[str, int], int]:
    """``MicroInterpreter::AllocateTensors`` step by step; ``prepare(allocator, graph, op)``
    replays one kernel's Prepare (:func:`_prepare`, or a caller's that handles more kinds);
    ``builtin`` is the parser's parameter bytes per op kind in this file.

    Returns:
        The persistent tail by part (see :func:`arena_tail`) and the smallest arena
        (a multiple of 16) in which every allocation of the run fits.
    """
    a = _Allocator()
    a.reset(_SCRATCH_REQUEST * _MAX_SCRATCH_PER_OP)  # InitScratchBufferData
    a.persistent("tensors", 24 * len(graph.tensors), 8)
    a.persistent("nodes", 64 * len(graph.ops), 8)
    for op in graph.ops:
        if op.kind in builtin:
            a.persistent("op_data", builtin[op.kind], _BUILTIN_ALIGN.get(op.kind, 4))
    for op in graph.ops:
        if op.kind in _OPDATA:
            a.persistent("op_data", _OPDATA[op.kind], ALIGN)
    for op in graph.ops:
        prepare(a, graph, op)
        a.reset(a.head)  # FinishPrepareNodeAllocations
    # CommitStaticMemoryPlan: subgraph offsets and one AllocationInfo per tensor as
    # temporaries, then the planner gets the rest: 40 B per buffer it plans.
    a.temp(8, 8)
    a.temp(_ALLOCATION_INFO * len(graph.tensors), 8)
    planned = len(lifetimes(graph))
    a.need = max(a.need, _align(a.used) + _align(a.top) + _PLANNER_PER_BUFFER * planned)
    a.reset(arena_head(graph))
    a.need = max(a.need, a.used + a.head)
    for group in (graph.inputs, graph.outputs):
        a.persistent("io", 8 * len(group), ALIGN)
        for t in group:
            a.persistent("io", _TFLITE_TENSOR, 8)
            if graph.tensors[t].scales:
                a.persistent("io", _AFFINE_QUANTIZATION, 8)
                a.persistent("io", 4 + 4 * graph.tensors[t].scales, 4)
    return a.parts, _align(a.need)


def arena_tail(graph: Graph) -> dict[str, int]:
    """The persistent bytes (TFLM's "tail"), by what they hold.

    Returns:
        ``tensors``, ``nodes``, ``op_data`` (builtin parameters, kernel OpData and
        per-channel arrays), ``io`` and ``runtime`` (the constant block); their sum is
        the tail.
    """
    return allocate(graph)[0]


def smallest_arena(graph: Graph) -> int:
    """The smallest arena (a multiple of 16) in which TFLM allocates and runs the graph:
    the head and tail it keeps, or more where its temporary allocations while it prepares
    the kernels and plans the memory need more."""
    return allocate(graph)[1]
