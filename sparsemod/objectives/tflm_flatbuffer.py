"""The bytes of a ``.tflite`` flatbuffer, counted as litert-torch's exporter writes them.

The converter (TensorFlow's MLIR ``flatbuffer_export``) builds the file with a C++
``FlatBufferBuilder``: back to front, each object aligned to its own size, table layouts
(vtables) shared when byte-identical, default field values left out. :class:`_Builder`
repeats that arithmetic without writing bytes, and :func:`flatbuffer_bytes` creates the
objects in the exporter's order (read off the layout of converted files):

1. one empty ``Buffer`` table, shared by every tensor without data;
2. per tensor, in index order: its data vector and ``Buffer`` table (constants only),
   its quantization (scales as float32, zero points as **int64**, the quantized
   dimension when not 0), its shape, its name, the ``Tensor`` table;
3. per operator: its ``OperatorCode`` the first time the op kind is seen, the input and
   output index vectors, the builtin options table, the ``Operator`` table;
4. the subgraph, the description, two metadata entries (``min_runtime_version``,
   ``keep_stablehlo_constant``), the ``serving_default`` signature and the model table.

Every name is stored: tensor names are the converter's debug locations (the torch module
path of the layer, see :mod:`sparsemod.objectives.tflm_graph`).
"""

from __future__ import annotations

from sparsemod.objectives.tflm_graph import Graph

# TensorType codes of the schema (FLOAT32 = 0 is the default, so it is left out).
TENSOR_TYPE = {"float32": 0, "int32": 2, "int64": 4, "bool": 6, "int16": 7, "int8": 9}
# BuiltinOperator code and the version the converter stamps on each op kind.
OPCODES = {
    "ADD": (0, 2),
    "AVERAGE_POOL_2D": (1, 2),
    "CONCATENATION": (2, 1),
    "CONV_2D": (3, 3),
    "DEPTHWISE_CONV_2D": (4, 3),
    "FULLY_CONNECTED": (9, 5),
    "LOGISTIC": (14, 2),
    "MAX_POOL_2D": (17, 2),
    "MUL": (18, 2),
    "RESHAPE": (22, 1),
    "TANH": (28, 2),
    "TRANSPOSE": (39, 2),
    "MEAN": (40, 2),
    "SLICE": (65, 2),
    "QUANTIZE": (114, 1),
}
_SIGNATURE = ("serving_default", "args_0", "output_0")
_METADATA = (("min_runtime_version", 16), ("keep_stablehlo_constant", 4))
_DESCRIPTION = "MLIR Converted."


class _Builder:
    """The size arithmetic of ``flatbuffers::FlatBufferBuilder`` (no bytes are written)."""

    def __init__(self) -> None:
        self.size = 0
        self.minalign = 1
        self.vtables: set[tuple[int, ...]] = set()

    def prep(self, align: int, additional: int = 0) -> None:
        """Pad so that after ``additional`` more bytes the size is a multiple of ``align``."""
        self.minalign = max(self.minalign, align)
        self.size += (-(self.size + additional)) % align

    def string(self, length: int) -> None:
        """A string of ``length`` bytes: its length prefix, the bytes and a NUL."""
        self.prep(4, length + 1)
        self.size += length + 1 + 4

    def vector(self, count: int, elem: int) -> None:
        """A vector of ``count`` scalars (or offsets) of ``elem`` bytes each."""
        self.prep(4, count * elem)
        self.prep(max(elem, 1), count * elem)
        self.size += count * elem + 4

    def table(self, fields: list[tuple[int, int]], scope: str = "") -> None:
        """A table whose present fields are ``(slot, bytes)``, in the order they are added.

        The vtable is written unless a byte-identical one of the same ``scope`` exists
        already (the signature's tables share none with the rest of the file).
        """
        start = self.size
        slots: dict[int, int] = {}
        for slot, width in fields:
            self.prep(width)
            self.size += width
            slots[slot] = self.size
        self.prep(4)
        self.size += 4
        obj = self.size
        top = max(slots, default=-1)
        vtable = (scope, 4 + 2 * (top + 1), obj - start) + tuple(
            obj - slots[s] if s in slots else 0 for s in range(top + 1)
        )
        if vtable not in self.vtables:
            self.vtables.add(vtable)
            self.size += 2 * (len(vtable) - 1)

    def finish(self) -> int:
        """The file's length after the root offset and the ``TFL3`` identifier."""
        self.prep(self.minalign, 8)
        self.size += 8
        return self.size


def _sorted_fields(fields: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Fields in flatc's add order: widest first, later declared first among equals."""
    return sorted(fields, key=lambda f: (-f[1], -f[0]))


def options_fields(kind: str, opts: dict[str, int]) -> list[tuple[int, int]] | None:
    """The present fields ``(slot, bytes)`` of an op's builtin options table, or None
    when the converter writes no options for the op kind."""
    act = opts.get("act", 0)
    if kind == "FULLY_CONNECTED":  # fused_activation, weights_format, keep_num_dims, ...
        fields = [(0, 1, act), (2, 1, 1)]
    elif kind == "CONV_2D":  # padding, stride_w, stride_h, act, dilation_w, dilation_h
        fields = [(0, 1, opts["padding"]), (1, 4, opts["stride_w"]), (2, 4, opts["stride_h"]),
                  (3, 1, act)]  # dilations are the default 1
    elif kind == "DEPTHWISE_CONV_2D":
        fields = [(0, 1, opts["padding"]), (1, 4, opts["stride_w"]), (2, 4, opts["stride_h"]),
                  (3, 4, opts["multiplier"]), (4, 1, act)]
    elif kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        fields = [(0, 1, opts["padding"]), (1, 4, opts["stride_w"]), (2, 4, opts["stride_h"]),
                  (3, 4, opts["filter_w"]), (4, 4, opts["filter_h"]), (5, 1, act)]
    elif kind == "ADD":  # fused_activation (pot_scale_int16 is the default true)
        fields = [(0, 1, act)]
    elif kind == "MUL":
        fields = [(0, 1, act)]
    elif kind == "CONCATENATION":
        fields = [(0, 4, opts["axis"]), (1, 1, act)]
    elif kind == "MEAN":  # keep_dims
        fields = [(0, 1, opts.get("keep_dims", 0))]
    else:
        return None
    return _sorted_fields([(slot, width) for slot, width, value in fields if value])


def _tensor(b: _Builder, t) -> None:
    if t.data:
        b.vector(t.data, 1)
        b.table([(0, 4)])
    if t.scales:
        b.vector(t.scales, 4)
        b.vector(t.scales, 8)
        b.table(_sorted_fields([(2, 4), (3, 4)] + ([(6, 4)] if t.qdim else [])))
    else:
        b.table([])
    b.vector(len(t.shape), 4)
    b.string(len(t.name.encode()))
    fields = [(0, 4), (2, 4), (3, 4), (4, 4), (8, 1)]
    if TENSOR_TYPE[t.dtype]:
        fields.append((1, 1))
    b.table(_sorted_fields(fields))


def _operator(b: _Builder, op, codes: list[str]) -> None:
    if op.kind not in codes:
        codes.append(op.kind)
        code, _version = OPCODES[op.kind]
        fields = [(0, 1)] if code else []
        fields += [(2, 4)]  # the version, written even when it is the default 1
        fields += [(3, 4)] if code else []
        b.table(_sorted_fields(fields))
    b.vector(len(op.inputs), 4)
    b.vector(len(op.outputs), 4)
    fields = [(1, 4), (2, 4)] + ([(0, 4)] if codes.index(op.kind) else [])
    opts = options_fields(op.kind, op.options)
    if opts is not None:
        b.table(opts)
        fields += [(4, 4), (3, 1)]
    b.table(_sorted_fields(fields))


def flatbuffer_bytes(graph: Graph) -> int:
    """The length of the ``.tflite`` file the converter writes for ``graph``.

    Args:
        graph: the TFLite graph (tensors in the converter's index order).

    Returns:
        The file's length in bytes.
    """
    b = _Builder()
    b.table([])  # the shared empty buffer
    codes: list[str] = []
    producer = {t: k for k, op in enumerate(graph.ops) for t in op.outputs}
    for i, t in enumerate(graph.tensors):
        _tensor(b, t)  # a tensor is written when its value is defined: then its op
        k = producer.get(i)
        if k is not None and i == max(graph.ops[k].outputs):
            _operator(b, graph.ops[k], codes)
    b.vector(len(graph.tensors), 4)
    b.vector(len(graph.inputs), 4)
    b.vector(len(graph.outputs), 4)
    b.vector(len(graph.ops), 4)
    b.string(len("main"))
    b.table(_sorted_fields([(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]))
    b.string(len(_DESCRIPTION))
    for name, data in _METADATA:
        b.vector(data, 1)
        b.table([(0, 4)])
        b.string(len(name))
        b.table(_sorted_fields([(0, 4), (1, 4)]))
    b.vector(len(_METADATA), 4)
    key, arg, out = _SIGNATURE
    b.string(len(arg))
    b.table([(0, 4)] + ([(1, 4)] if graph.inputs[0] else []))
    b.string(len(out))
    # The signature's tables add their fields in declaration order.
    b.table([(0, 4)] + ([(1, 4)] if graph.outputs[0] else []))
    b.vector(1, 4)
    b.vector(1, 4)
    b.string(len(key))
    b.table([(0, 4), (1, 4), (2, 4)])
    b.vector(1, 4)  # signature defs
    b.vector(len(codes), 4)
    b.vector(1, 4)  # subgraphs
    b.vector(len(graph.tensors) + 1 + len(_METADATA), 4)  # buffers
    b.table(_sorted_fields([(i, 4) for i in (0, 1, 2, 3, 4, 6, 7)]))
    return b.finish()
