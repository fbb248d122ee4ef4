"""The bytes of an ExecuTorch ``.pte`` and its planned memory, computed from the float network.

``executorch_costs(model, example)`` lowers the network to the program ExecuTorch 1.5's
Cortex-M flow (:mod:`sparsemod.deploy.executorch`) emits
(:mod:`sparsemod.objectives.executorch_plan`: the ``values`` table of the execution plan,
the ``cortex_m::`` kernel calls, the int8 constants and the memory plan), then counts

* **pte_bytes**: the file as ``exir/_serialize/_program.py``'s ``serialize_pte_binary``
  writes it: the ``Program`` flatbuffer, packed by the generated Python object API
  (``ProgramT.Pack``) with ``flatbuffers.Builder`` (25.2: back to front, each scalar
  aligned to its size, default scalars left out, a vtable shared when its field offsets
  equal an earlier one's), with a 32-byte extended header ``eh00`` inserted after the file
  identifier, padded to 128, then one segment holding every constant, each padded to 16
  bytes (``exir.tensor.ALIGNMENT``) but the last;
* **planned_bytes**: the sum of ``non_const_buffer_sizes`` (buffer 1 holds the input,
  output, activations and CMSIS-NN scratch; buffer 0 is ExecuTorch's reserved empty one).

Pure torch and python: executorch is not imported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from sparsemod.objectives.executorch_plan import Program, lower

# The union tags of the schema's KernelTypes and InstructionArguments.
KERNEL_TYPES = {"Null": 1, "Int": 2, "Bool": 3, "Double": 4, "Tensor": 5, "IntList": 7}
KERNEL_CALL = 1
# _program.py: segment_alignment, and exir.tensor.ALIGNMENT for constant tensors.
SEGMENT_ALIGNMENT = 128
TENSOR_ALIGNMENT = 16
# _ExtendedHeader.EXPECTED_LENGTH (32) padded to the schema's largest force_align (16).
EXTENDED_HEADER = 32
# ExecutionPlan.container_meta_type: torch's pytree specs of (args, kwargs) = ((x,), {})
# and of the single output, json-encoded (treespec_dumps), as executorch stores them.
INPUT_SPEC = (
    '[1, {"type": "builtins.tuple", "context": "null", "children_spec": [{"type": '
    '"builtins.tuple", "context": "null", "children_spec": [{"type": null, "context": '
    'null, "children_spec": []}]}, {"type": "builtins.dict", "context": "[]", '
    '"children_spec": []}]}]'
)
OUTPUT_SPEC = '[1, {"type": null, "context": null, "children_spec": []}]'


class _Builder:
    """The size arithmetic of Python's ``flatbuffers.Builder`` (25.2); no bytes are written.

    ``size`` is the builder's ``Offset()`` (bytes written so far, from the back).
    """

    def __init__(self) -> None:
        self.size = 0
        self.minalign = 1
        self.vtables: set[tuple[int, ...]] = set()

    def prep(self, align: int, additional: int = 0) -> None:
        """``Prep``: pad so that after ``additional`` more bytes the size is a multiple of
        ``align``."""
        self.minalign = max(self.minalign, align)
        self.size += (-(self.size + additional)) % align

    def scalar(self, nbytes: int) -> None:
        self.prep(nbytes)
        self.size += nbytes

    def string(self, length: int) -> int:
        """``CreateString``: the length prefix, the bytes and a NUL, 4-aligned."""
        self.prep(4, length + 1)
        self.size += length + 1 + 4
        return self.size

    def vector(self, count: int, elem: int, align: int | None = None) -> int:
        """``StartVector(elem, count, align)``, the elements, ``EndVector``."""
        self.prep(4, count * elem)
        self.prep(align or elem, count * elem)
        self.size += count * elem + 4
        return self.size

    def table(self, nslots: int, fields: list[tuple[int, int | None]]) -> int:
        """A table of ``nslots`` slots; ``fields`` are ``(slot, scalar bytes)`` in the order
        the generated ``Pack`` adds them, ``None`` bytes for an offset (4-aligned).

        ``EndObject`` writes the soffset to the vtable, then the vtable (2 bytes for its
        length, 2 for the object's, 2 per slot up to the last one set) unless one with
        the same field offsets was written already (the key leaves the object size out).
        """
        offsets = [0] * nslots
        for slot, nbytes in fields:
            self.scalar(4 if nbytes is None else nbytes)
            offsets[slot] = self.size
        self.scalar(4)  # the soffset to the vtable
        obj = self.size
        key = [obj - o if o else 0 for o in offsets]
        while key and not key[-1]:
            key.pop()
        if tuple(key) not in self.vtables:  # WriteVtable: a new vtable, 2 bytes an entry
            self.vtables.add(tuple(key))
            self.size += 2 * (len(key) + 2)
        return obj


def _value(b: _Builder, kind: str, val) -> None:
    """One ``EValue`` and its payload table."""
    if kind == "Tensor":
        scalar_type, sizes, dim_order, buffer_idx, alloc = val
        b.vector(len(sizes), 4)
        b.vector(len(dim_order), 1)
        if alloc is not None:  # AllocationDetails: memory_id, offset low, offset high
            b.table(3, [(i, 4) for i, v in enumerate(alloc) if v])
        b.table(
            10,
            [(0, 1)] * bool(scalar_type)
            + [(2, None), (3, None)]
            + [(5, 4)] * bool(buffer_idx)
            + [(6, None)] * (alloc is not None),
        )
    elif kind == "Int":
        b.table(1, [(0, 8)] if val else [])
    elif kind == "Bool":
        b.table(1, [(0, 1)] if val else [])
    elif kind == "Double":
        b.table(1, [(0, 8)] if val else [])
    elif kind == "IntList":
        b.vector(len(val), 8)
        b.table(1, [(0, None)])
    else:  # Null
        b.table(0, [])
    b.table(2, [(0, 1), (1, None)])


def program_bytes(program: Program) -> int:
    """The length of the ``Program`` flatbuffer as ``ProgramT.Pack`` + ``Finish`` write it
    (the constants already moved to the segment: ``constant_buffer`` is empty)."""
    b = _Builder()
    # ExecutionPlan "forward": its children in field order, then the table.
    b.string(len("forward"))
    b.string(len(INPUT_SPEC))
    b.string(len(OUTPUT_SPEC))
    b.table(2, [(0, None), (1, None)])  # ContainerMetadata
    for kind, val in program.values:
        _value(b, kind, val)
    b.vector(len(program.values), 4)
    b.vector(len(program.inputs), 4)
    b.vector(len(program.outputs), 4)
    # One chain: empty inputs / outputs, its instructions, no stacktrace.
    b.vector(0, 4)
    b.vector(0, 4)
    for _op, args in program.instructions:
        b.vector(len(args), 4)
        b.table(2, [(0, 4)] * bool(_op) + [(1, None)])  # KernelCall: op_index, args
        b.table(2, [(0, 1), (1, None)])  # Instruction: union tag and KernelCall
    b.vector(len(program.instructions), 4)
    b.table(4, [(0, None), (1, None), (2, None)])
    b.vector(1, 4)  # chains
    for name, overload in program.operators:
        b.string(len(name))
        b.string(len(overload))
        b.table(2, [(0, None), (1, None)])
    b.vector(len(program.operators), 4)
    b.vector(0, 4)  # delegates
    b.vector(len(program.buffers), 8)  # non_const_buffer_sizes (int64)
    b.table(10, [(i, None) for i in range(9)])
    b.vector(1, 4)  # execution_plan
    b.vector(0, 4)  # constant_buffer (moved to the segment)
    b.vector(0, 4)  # backend_delegate_data
    # segments: one DataSegment (offset 0 is the default, left out; the size).
    seg = _segment_bytes(program.constants)
    b.table(2, [(1, 8)] if seg else [])
    b.vector(1, 4)
    # constant_segment: segment_index 0 (default), the offset of each constant.
    b.vector(len(program.constants), 8)
    b.table(2, [(1, None)])
    # No mutable_data_segments, no named_data (None: left out, not empty vectors).
    b.table(8, [(1, None), (2, None), (3, None), (4, None), (5, None)])
    # Finish with the file identifier "ET12": root offset + identifier, minalign-aligned.
    b.prep(b.minalign, 8)
    b.prep(4, 4)
    b.size += 4
    b.scalar(4)
    return b.size


def _segment_bytes(constants: list[int]) -> int:
    """The constant segment: each tensor padded to 16 bytes but the last."""
    if not constants:
        return 0
    return sum(-(-n // TENSOR_ALIGNMENT) * TENSOR_ALIGNMENT for n in constants[:-1]) + constants[-1]


@dataclass(frozen=True)
class ExecutorchCosts:
    """What ExecuTorch (Cortex-M) needs for one network.

    ``pte_bytes``: the ``.pte`` file's length; ``planned_bytes``: the sum of the program's
    non-constant planned buffers. ``parts`` splits each:

    * ``pte_bytes`` = ``constants`` (the segment: int8 weights, int32 biases, per-channel
      multipliers and shifts, tanh tables, each padded to 16 but the last) + ``program``
      (the flatbuffer with its 32-byte extended header, padded to 128: the values table,
      the instructions, operator names, the memory plan);
    * ``planned_bytes`` = ``activations`` (what the plan needs for the input, output and
      activations alone) + ``scratch`` (what the CMSIS-NN scratch buffers add to it);
      ``scratch_largest`` is the largest single scratch buffer.
    """

    pte_bytes: int
    planned_bytes: int
    parts: dict[str, int] = field(default_factory=dict)


def program_costs(program: Program) -> ExecutorchCosts:
    """The costs of an already lowered program (see :func:`executorch_costs`)."""
    header = EXTENDED_HEADER + program_bytes(program)
    padded = -(-header // SEGMENT_ALIGNMENT) * SEGMENT_ALIGNMENT
    segment = _segment_bytes(program.constants)
    planned = sum(program.buffers)
    parts = {
        "constants": segment,
        "program": padded,
        "activations": program.activations,
        "scratch": planned - program.activations,
        "scratch_largest": max(program.scratch.values(), default=0),
    }
    # Without constants there is no segment and no extended header.
    return ExecutorchCosts(
        padded + segment if segment else header - EXTENDED_HEADER, planned, parts
    )


def executorch_costs(model: nn.Module, example: torch.Tensor) -> ExecutorchCosts:
    """The ``.pte`` bytes and planned memory of ``model`` exported by
    :mod:`sparsemod.deploy.executorch` (ExecuTorch 1.5, Cortex-M4, CMSIS-NN).

    Args:
        model: the float network (eval mode; weights are stored dense).
        example: one input; its first sample (batch 1) is what the export sees.

    Returns:
        The file's bytes, the planned bytes and their split.

    Raises:
        MeasureError: the network cannot be traced, or has a layer the Cortex-M backend
            does not lower to int8 (Conv1d, LSTM, GRU).
    """
    return program_costs(lower(model, example))
