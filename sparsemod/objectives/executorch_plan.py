"""The program ExecuTorch 1.5's Cortex-M flow emits for a float network, without executorch.

(placeholder: filled in below)
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Program:
    """The parts of a ``forward`` execution plan that set the ``.pte``'s bytes.

    ``values``: ``(kind, payload)`` per EValue; a Tensor's payload is ``(scalar_type,
    sizes, dim_order, data_buffer_idx, allocation (memory_id, offset_low, offset_high) or
    None)``. ``instructions``: ``(op_index, args)``. ``constants``: the byte length of each
    constant buffer, the reserved empty buffer 0 first. ``buffers``: non_const_buffer_sizes.
    """

    values: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    instructions: list = field(default_factory=list)
    operators: list = field(default_factory=list)
    constants: list = field(default_factory=list)
    buffers: list = field(default_factory=list)


def lower(model, example):
    raise NotImplementedError
