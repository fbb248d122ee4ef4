"""Flash and RAM as TensorFlow Lite Micro counts them, computed from the float network.

``tflm_costs(model, example)`` lowers the network to the TFLite graph litert-torch's
converter emits (:mod:`sparsemod.objectives.tflm_graph`: int8, per-channel symmetric
weights, int32 biases, the converter's tensor names), then counts

* **flash**: the ``.tflite`` file's length, object by object as the exporter's
  ``FlatBufferBuilder`` writes it (:mod:`sparsemod.objectives.tflm_flatbuffer`); weights
  are stored dense, so unstructured pruning saves nothing here;
* **arena**: the smallest arena in which TFLM allocates and runs the model, what a board
  must reserve (:mod:`sparsemod.objectives.tflm_arena`). What stays allocated is the
  head (the activations as its ``GreedyMemoryPlanner`` lays them out) and the persistent
  tail (tensor and node structs, builtin parameters, kernel op data with per-channel
  multipliers and shifts, the interpreter's input and output), kept as the split; while
  it prepares the kernels and plans, TFLM also takes temporaries between the two (temp
  tensor structs with their quantization, the planner's per-tensor allocation info and
  per-buffer arrays), which on most networks need more than head + tail.

Pure torch and python, no converter: a few milliseconds a network. Checked against
``sparsemod.deploy.tflite`` (litert-torch 0.10 + tflite-micro's Python interpreter,
64-bit host build, flash = the artifact's bytes, arena = ``RuntimeReport.memory_bytes``) by
``tests/objectives/test_tflm.py`` and ``bench/runtime_truth.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from sparsemod.objectives.tflm_arena import allocate, arena_head, tensor_bytes
from sparsemod.objectives.tflm_flatbuffer import flatbuffer_bytes
from sparsemod.objectives.tflm_graph import Graph, lower


@dataclass(frozen=True)
class OpCost:
    """One TFLite op: its kind, the torch layer it runs, the constant bytes it stores and
    the activation bytes it writes."""

    kind: str
    layer: str
    stored_bytes: int
    output_bytes: int


@dataclass(frozen=True)
class TflmCosts:
    """What TFLM needs for one network.

    ``arena_bytes`` is the smallest arena TFLM runs the model in: at least
    ``arena_activations`` (the planner's head) + ``arena_persistent`` (the tail), more
    where its temporaries while allocating need more; ``persistent_parts`` splits the
    tail; ``ops`` lists the TFLite ops.
    """

    flatbuffer_bytes: int
    arena_bytes: int
    arena_activations: int
    arena_persistent: int
    persistent_parts: dict[str, int] = field(default_factory=dict)
    ops: tuple[OpCost, ...] = ()


def graph_costs(
    graph: Graph,
    flash: Callable[[Graph], int] = flatbuffer_bytes,
    prepare: Callable[..., None] | None = None,
) -> TflmCosts:
    """The costs of an already lowered TFLite graph.

    Args:
        graph: a graph from :func:`~sparsemod.objectives.tflm_graph.lower`.
        flash: what counts the file's bytes (another writer's layout, e.g. the LUT
            compressor's: :mod:`sparsemod.objectives.tflm_lut`).
        prepare: replays the kernels' Prepare, for op kinds beyond the built-in ones
            (:func:`~sparsemod.objectives.tflm_arena.allocate`).

    Returns:
        Its :class:`TflmCosts`.
    """
    head = arena_head(graph)
    parts, smallest = allocate(graph) if prepare is None else allocate(graph, prepare)
    tail = sum(parts.values())
    ops = tuple(
        OpCost(
            op.kind,
            op.layer,
            sum(graph.tensors[i].data for i in op.inputs if i >= 0),
            sum(tensor_bytes(graph.tensors[i].shape, graph.tensors[i].dtype) for i in op.outputs),
        )
        for op in graph.ops
    )
    return TflmCosts(flash(graph), max(smallest, head + tail), head, tail, parts, ops)


def tflm_costs(model: nn.Module, example: torch.Tensor) -> TflmCosts:
    """Flash and arena of ``model`` converted by litert-torch and run in TFLM.

    Args:
        model: the float network (pruned or not: TFLM stores weights dense).
        example: one input; its first sample (batch 1) is what the converter sees.

    Returns:
        The flatbuffer's bytes, the arena split, and the per-op breakdown.

    Raises:
        MeasureError: the network cannot be traced, or has a layer this model does not
            lower (an LSTM / GRU: the recurrent builder's networks are counted by
            :mod:`.tflm_lstm` and :mod:`.tflm_gru`).
    """
    return graph_costs(lower(model, example))
