"""Op-level latency on a board (``latency_model = ops``): cycles per MAC for each op type.

Each op of the TFLite graph :func:`~sparsemod.objectives.tflm_graph.lower` emits costs

    cycles = macs(op) * cycles_per_mac[core][class] + cycles_per_op[core][class]

and the latency is the sum over the ops divided by the board's clock. ``macs`` is the
op's multiply-accumulates from the graph's shapes (for pooling the window reads, for
element-wise ops the elements written: see :func:`op_macs`); the class is the op's kind
grouped as in :data:`OP_CLASSES`.

These are model figures, not measurements of the network: they come from published
per-network benchmarks of TFLM / CMSIS-NN / ESP-NN kernels on real boards (cited at
:data:`CYCLES`), divided by the networks' MAC counts, and, for the cores no benchmark
covers, derived from a measured core by what the instruction set changes (said where).
They rank candidates on one board and the same candidate across boards; an absolute
figure can be off by tens of percent (memory wait states, cache misses, the kernel
variant TFLM picks for a shape). Calibrate against a board when the absolute number
matters.
"""

from __future__ import annotations

import math

from sparsemod.core.boards import Board
from sparsemod.errors import ConfigError
from sparsemod.objectives.tflm_graph import Graph, Op

OP_CLASSES = ("conv", "depthwise", "fully_connected", "pooling", "add", "lstm", "other")
_CLASS_OF = {
    "CONV_2D": "conv",
    "DEPTHWISE_CONV_2D": "depthwise",
    "FULLY_CONNECTED": "fully_connected",
    "MAX_POOL_2D": "pooling",
    "AVERAGE_POOL_2D": "pooling",
    "ADD": "add",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "lstm",
}  # everything else (RESHAPE, TRANSPOSE, QUANTIZE, TANH, ...) is "other", per element

# (cycles per MAC, fixed cycles per op) for each core and op class.
#
# Sources (MAC counts: ResNet-8 12.5 M, DS-CNN 2.66 M, CMSIS-NN's CIFAR-10 net 12.3 M,
# MobileNetV1-0.25 96x96x1 7.2 M = 6.4 M conv + 0.8 M depthwise, all counted by hand):
# [1] Lai, Suda, Chandra, "CMSIS-NN: Efficient Neural Network Kernels for Arm Cortex-M
#     CPUs", arXiv:1801.06601, 2018: CIFAR-10 CNN on a NUCLEO-F746ZG (M7, 216 MHz) in
#     99.1 ms (10.1 images/s) = 21.4 M cycles, 1.74 cycles/MAC over the whole network.
# [2] Banbury et al., "MLPerf Tiny Benchmark", NeurIPS 2021 Datasets and Benchmarks; its
#     results (github.com/mlcommons/tiny_results_v0.5, v1.1):
#     - v0.5 reference (TFLM 2.3.1, its system description lists no CMSIS-NN),
#       NUCLEO-L4R5ZI (M4, 120 MHz): image classification 1.42 inf/s = 6.8 cycles/MAC
#       (what the M4 does without SIMD kernels);
#     - v1.1 Krai, microTVM + CMSIS-NN: NUCLEO-L4R5ZI (M4) image classification 2.567 inf/s
#       = 3.7 cycles/MAC, keyword spotting 10.02 inf/s = 4.5 cycles/MAC; nRF5340-DK (M33,
#       128 MHz) image classification 3.146 inf/s = 3.3 cycles/MAC;
#     - v1.1 Krai, X-CUBE-AI 7.3: NUCLEO-H7A3ZI (M7, 280 MHz) image classification
#       18.57 inf/s = 1.2 cycles/MAC, keyword spotting 59.67 inf/s = 1.8 cycles/MAC.
# [3] Espressif ESP-NN README (github.com/espressif/esp-nn), kernel ticks on an ESP32-S3
#     at 240 MHz: 1x1 conv 10x10x64->64 1.13 cycles/MAC, 3x3 conv of 3 input channels
#     5.8, depthwise 3x3 5.2, max / average pool 3x3 2.7 / 5.7 per window read (taking
#     stride 1), int8 add 44 per element, fully connected 265->3 4,439 ticks for 795
#     MACs; and the esp-tflite-micro README: person detection (MobileNetV1-0.25) in
#     54 ms at 240 MHz = 13.0 M cycles, which the lx7 conv and depthwise rows below
#     reproduce within 1 % (on our hand count of its MACs, its first conv a CONV_2D as
#     in that TF-converted model; litert-torch makes a 1-channel conv DEPTHWISE_CONV_2D).
# [4] David et al., "TensorFlow Lite Micro: Embedded Machine Learning on TinyML Systems",
#     MLSys 2021: the interpreter's own cost per op is small next to the kernels. The
#     fixed cycles per op (Invoke loop, kernel setup) are an order of magnitude, taken
#     from the fully connected row of [3] (4,439 - 795 * 3 = ~2,000) for every core.
# The Cortex-M pooling, add and other figures are estimates from the kernels' work per
# element (int8 adds rescale both inputs and the output with 64-bit multiplies), not
# measurements: those ops are a few percent of a CNN's cycles.
CYCLES: dict[str, dict[str, tuple[float, float]]] = {
    # M7: conv from [1] (1.74 for the whole CIFAR-10 net, pools included) and [2]'s
    # X-CUBE-AI 1.2; depthwise 2x conv: what [2]'s keyword spotting on the H7 leaves for
    # its depthwise layers once its pointwise convs are priced at 1.6. Fully connected,
    # batch 1, reuses no weight (each is loaded for one MAC): between conv and depthwise.
    "cortex-m7": {
        "conv": (1.6, 2000),
        "depthwise": (3.2, 2000),
        "fully_connected": (2.0, 1500),
        "pooling": (1.0, 500),
        "add": (15.0, 500),  # three int32 rescales an element; SIMD on 4 at a time
        "lstm": (3.0, 4000),  # gate matmuls at 1.5x fully connected, plus the gates
        "other": (4.0, 300),
    },
    # M4: conv from [2]'s CMSIS-NN runs on the L4R5ZI (3.7 and 4.5 cycles/MAC whole
    # network, flash wait states included), 2.2x the M7; the M4 has SMLAD but no dual
    # issue and a 32-bit bus, so the other classes at 1.5-2.2x the M7.
    "cortex-m4": {
        "conv": (3.5, 2000),
        "depthwise": (7.0, 2000),
        "fully_connected": (3.5, 1500),
        "pooling": (1.5, 500),
        "add": (25.0, 500),
        "lstm": (5.0, 4000),
        "other": (6.0, 300),
    },
    # M33 (with the DSP extension): [2] measures 0.9x the M4's cycles with the same
    # microTVM + CMSIS-NN stack (3.3 against 3.7 cycles/MAC), so the M4 row x 0.9.
    "cortex-m33": {
        "conv": (3.15, 2000),
        "depthwise": (6.3, 2000),
        "fully_connected": (3.15, 1500),
        "pooling": (1.35, 500),
        "add": (22.5, 500),
        "lstm": (4.5, 4000),
        "other": (5.4, 300),
    },
    # M0+: derived, no benchmark. No DSP extension (no SMLAD, no SIMD), so CMSIS-NN runs
    # its plain C path: two byte loads (2 cycles each), a MULS (1 cycle on the RP2040), an
    # add and loop overhead, about 8 cycles a MAC: a bit above the M4 without SIMD (6.8 in
    # [2]'s reference run) for Thumb-1's fewer registers and no post-increment loads, and
    # 2-2.5x the M4 with CMSIS-NN. Without SIMD depthwise is close to conv. Requantizing
    # needs a 32x32->64 multiply the M0+ lacks (four MULS), hence add and other.
    "cortex-m0+": {
        "conv": (8.0, 3000),
        "depthwise": (10.0, 3000),
        "fully_connected": (8.0, 2000),
        "pooling": (4.0, 800),
        "add": (60.0, 800),
        "lstm": (12.0, 6000),
        "other": (12.0, 500),
    },
    # M55: derived, no benchmark, the least certain row. Helium (MVE) does 16 int8 MACs in
    # one VMLADAV over two cycles on the dual-beat M55 (8 a cycle at peak); after loads
    # and requantization we take a quarter of the M4's cycles per MAC (the M4 row / 4).
    "cortex-m55": {
        "conv": (0.875, 2000),
        "depthwise": (1.75, 2000),
        "fully_connected": (0.875, 1500),
        "pooling": (0.375, 500),
        "add": (6.25, 500),
        "lstm": (1.25, 4000),
        "other": (1.5, 300),
    },
    # LX7 (ESP32-S3, ESP-NN's PIE SIMD kernels): from [3]. Conv 1.4 between the 1x1 (1.13)
    # and small-channel (5.8) kernels, fitted with depthwise 5.0 to person detection's
    # 13.0 M cycles; [3]'s conv, depthwise and add ticks are with data in PSRAM, person
    # detection's in SRAM. Pooling: the mean of max and average.
    "xtensa-lx7": {
        "conv": (1.4, 2000),
        "depthwise": (5.0, 2000),
        "fully_connected": (3.0, 2000),
        "pooling": (4.0, 500),
        "add": (44.0, 500),
        "lstm": (4.5, 4000),
        "other": (6.0, 300),
    },
}


def op_class(kind: str) -> str:
    """The class of :data:`CYCLES` that prices a TFLite op kind (``"other"`` by default)."""
    return _CLASS_OF.get(kind, "other")


def op_macs(graph: Graph, op: Op) -> int:
    """The work :data:`CYCLES` prices per unit for one op, from the graph's shapes.

    conv: output elements x kernel h x w x input channels per group; depthwise: output
    elements x kernel h x w; fully connected: output elements (rows x out features) x in
    features; pooling: output elements x window (the reads); LSTM: output elements x 4
    gates x (input + hidden); everything else: the elements written.

    Args:
        graph: the lowered graph.
        op: one of its ops.

    Returns:
        The count, an int.
    """
    out = math.prod(graph.tensors[op.outputs[0]].shape)
    kind = op.kind
    if kind == "CONV_2D":  # weights (out channels, kh, kw, in channels / groups)
        return out * math.prod(graph.tensors[op.inputs[1]].shape[1:])
    if kind == "DEPTHWISE_CONV_2D":  # weights (1, kh, kw, out channels)
        return out * math.prod(graph.tensors[op.inputs[1]].shape[1:3])
    if kind == "FULLY_CONNECTED":  # weights (out features, in features)
        return out * graph.tensors[op.inputs[1]].shape[-1]
    if kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        return out * op.options["filter_h"] * op.options["filter_w"]
    if kind == "UNIDIRECTIONAL_SEQUENCE_LSTM":  # input (..., in), output (..., hidden)
        hidden = graph.tensors[op.outputs[0]].shape[-1]
        return out * 4 * (graph.tensors[op.inputs[0]].shape[-1] + hidden)
    return out


def _figures(board: Board) -> dict[str, tuple[float, float]]:
    figures = CYCLES.get(board.core)
    if figures is None:
        raise ConfigError(
            f"board {board.name}: core {board.core!r} has no latency figures "
            f"(known: {', '.join(CYCLES)})",
            key="core",
        )
    return figures


def latency_breakdown(graph: Graph, board: Board) -> list[tuple[str, str, int, float]]:
    """Each op's share of :func:`ops_latency`, in execution order.

    Args:
        graph: a graph from :func:`~sparsemod.objectives.tflm_graph.lower`.
        board: the board it runs on.

    Returns:
        ``(kind, layer, macs, seconds)`` for each op.

    Raises:
        ConfigError: the board's core has no row in :data:`CYCLES`.
    """
    figures = _figures(board)
    rows = []
    for op in graph.ops:
        macs = op_macs(graph, op)
        per_mac, per_op = figures[_CLASS_OF.get(op.kind, "other")]
        rows.append((op.kind, op.layer, macs, (macs * per_mac + per_op) / board.clock_hz))
    return rows


def ops_latency(graph: Graph, board: Board) -> float:
    """Seconds one inference of ``graph`` takes on ``board`` (see the module docstring).

    Args:
        graph: a graph from :func:`~sparsemod.objectives.tflm_graph.lower`.
        board: the board it runs on.

    Returns:
        The sum over the ops of (macs x cycles per MAC + cycles per op) / clock.

    Raises:
        ConfigError: the board's core has no row in :data:`CYCLES`.
    """
    return sum(row[3] for row in latency_breakdown(graph, board))
