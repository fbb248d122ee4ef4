"""The TFLite graph litert-torch emits for a torch network, derived from its structure.

PLACEHOLDER: lowering follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    """The subgraph: tensors in the converter's index order, ops in execution order."""

    tensors: list[Tensor] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
