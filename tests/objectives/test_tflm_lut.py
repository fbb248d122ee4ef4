"""The LUT-compression cost model against a hand count and the real compressor + TFLM.

The runtime comparison clusters each conv / linear weight of a sample network per output
channel to at most 4 (or 128) values, exports it with ``sparsemod.deploy.tflite``
(litert-torch, int8), finds the weights and their distinct int8 values per channel in the
flatbuffer, compresses them with tflite-micro's compressor (LUT, per channel) and checks
the result in the tflite-micro interpreter: flash is the compressed file's length, arena
``RuntimeReport.memory_bytes`` with ``memory_split`` as head / tail. Skipped, with the
reason, where litert-torch or tflite-micro is not installed. Each network is exported once
for the module and compressed at 2, 4 and 7 bits (indices wider than the values need are
allowed); the checks run two at a time beside the exports.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from torch import nn

from sparsemod.builders import build_cnn, build_mlp, cnn_space, mlp_space
from sparsemod.objectives.tflm import graph_costs
from sparsemod.objectives.tflm_graph import lower
from sparsemod.objectives.tflm_lut import (
    DECODE,
    Lut,
    compressed_graph,
    lut_costs,
    lut_saving,
    weight_lut,
)


def _agree(predicted: int, measured: int) -> bool:
    return abs(predicted - measured) <= max(0.01 * measured, 64)


class _Residual(nn.Module):
    """Two convs and a residual add, then a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(4, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.c1(x))
        return self.fc(torch.flatten(torch.relu(self.c2(y)) + y, 1))


def _networks() -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    """The digits CNN (conv 1->8, pool, conv 8->16, pool, linear 64->10), the MLP
    64-128-64-10, a Conv1d, a depthwise-separable and a residual network."""
    digits = build_cnn({**cnn_space().reference, "b1_filters": 8, "b2_filters": 16,
                        "num_fc": 0}, (1, 8, 8), 10)
    conv1d = nn.Sequential(
        nn.Conv1d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
        nn.Flatten(), nn.Linear(320, 32), nn.ReLU(), nn.Linear(32, 10),
    )
    depthwise = nn.Sequential(
        nn.Conv2d(3, 3, 3, padding=1, groups=3), nn.ReLU(),
        nn.Conv2d(3, 12, 1), nn.ReLU(),
        nn.Conv2d(12, 12, 3, padding=1, groups=12), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12 * 4 * 4, 10),
    )
    return {
        "digits cnn": (digits, (1, 1, 8, 8)),
        "mlp": (build_mlp(mlp_space().reference, (8, 8), 10), (1, 8, 8)),
        "conv1d": (conv1d, (1, 1, 40)),
        "depthwise": (depthwise, (1, 3, 8, 8)),
        "residual add": (_Residual(), (1, 4, 8, 8)),
    }


def _cluster(net: nn.Module, bits: int) -> nn.Module:
    """Each conv / linear weight replaced, per output channel, by the nearest of 2**bits
    quantiles of that channel (batch norms are fresh: folding them scales a channel)."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                w = m.weight.reshape(m.weight.shape[0], -1)
                levels = torch.quantile(w, torch.linspace(0, 1, 2**bits), dim=1).T
                nearest = (w[:, :, None] - levels[:, None, :]).abs().argmin(-1)
                m.weight.copy_(torch.gather(levels, 1, nearest).reshape(m.weight.shape))
    return net


# (network, 2**levels values per channel, index bits, which weights by position in the op
# order; None: all). Each network is exported once, its weights on 4 values per channel,
# and compressed at 2, 4 and 7 bits; the MLP once more on up to 128 values (its value
# tables up to 128 long, at 7 bits).
_CASES = [(name, 2, bits, None) for name in _networks() for bits in (2, 4, 7)] + [
    ("mlp", 7, 7, None),
    ("mlp", 7, 7, (1,)),
    ("digits cnn", 2, 4, (0, 2)),  # the first conv (a depthwise: one input channel), the FC
    ("residual add", 2, 2, (1,)),
]


def _case_id(case) -> str:
    name, levels, bits, some = case
    return (f"{name} {bits} bits" + (f" {2**levels} levels" if levels != 2 else "")
            + (f" weights {some}" if some else ""))


def test_linear_4_to_2_at_2_bits_by_hand():
    """A Linear 4 -> 2 whose weights take 4 values per channel, compressed at 2 bits."""
    net = nn.Sequential(nn.Linear(4, 2)).eval()
    graph = lower(net, torch.randn(1, 4))
    weight = 2  # the converter's order: input, bias, weights, output
    assert graph.tensors[weight].shape == (2, 4)
    lut = Lut(weight, bits=2, stride=4, tables=2, axis=0)
    assert weight_lut(graph, weight, 2, 4) == lut
    packed = compressed_graph(graph, [lut])
    assert [op.kind for op in packed.ops] == [DECODE, "FULLY_CONNECTED"]
    # 8 indices of 2 bits: 2 B; ancillary: 16 B header + 2 tables x 4 values
    assert [(t.shape, t.dtype, t.data) for t in packed.tensors[2:]] == [
        ((2,), "uint8", 2), ((1, 2), "int8", 0), ((24,), "uint8", 24), ((2, 4), "int8", 0),
    ]
    assert packed.ops[0].inputs == (2, 4) and packed.ops[1].inputs == (0, 5, 1)
    costs = lut_costs(graph, [lut])
    # What compress() wrote and TFLM planned for this network (measured once). The 1808 B
    # file (1256 B uncompressed), back to front as Model::Pack writes it: op codes 80
    # (TFLM_DECODE: name 16 + table 24; FULLY_CONNECTED 28; vector 12), 6 tensors 1024
    # (names 520 of it: the ancillary's 132, the decoded weights' 128), the index
    # vectors and 2 ops 156, subgraph 60, description 20, 7 buffers 192 (two
    # empty; bias 8, indices 2, ancillary 24, metadata 16 and 4, each data ending on
    # 16 B), metadata 96, signature 120, model table 52, root offset and "TFL3" 8.
    assert costs.flatbuffer_bytes == 1808
    # head: input 4 B, decoded weights 8 B, output 2 B, 16 B each, all alive at the FC
    assert costs.arena_activations == 48
    # tail: the uncompressed 1008 + 2 TfLiteEvalTensors (48) + the DECODE node (64) +
    # its DecodeState pointer (8 -> 16) and DecodeStateLut (72 -> 80)
    assert costs.arena_persistent == 1216
    assert costs.persistent_parts["decode"] == 96
    assert costs.persistent_parts["tensors"] == 6 * 24
    assert costs.persistent_parts["nodes"] == 2 * 64
    assert costs.arena_bytes == 1552  # the smallest arena TFLM runs it in (1344 before)
    assert lut_saving(graph, [lut]) == (1256 - 1808, 1552 - 1344)


def test_no_luts_is_the_uncompressed_model():
    net, shape = _networks()["digits cnn"]
    graph = lower(net.eval(), torch.randn(*shape))
    assert lut_costs(graph, []) == graph_costs(graph)


def test_a_lut_that_does_not_fit_is_refused():
    graph = lower(nn.Sequential(nn.Linear(4, 2)).eval(), torch.randn(1, 4))
    for bad in (
        Lut(1, 2, 4, 2, 0),  # the int32 bias
        Lut(2, 8, 4, 2, 0),  # 8-bit indices
        Lut(2, 2, 5, 2, 0),  # 5 values in 2 bits
        Lut(2, 2, 4, 4, 1),  # 4 tables along the 4 inputs, not the quantized channels
        Lut(2, 2, 4, 3, 0),  # 3 tables for 2 channels
    ):
        with pytest.raises(ValueError):
            lut_costs(graph, [bad])


def _runtime_missing() -> str | None:
    for module in ("litert_torch", "tflite_micro"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    return None


def _read(data: bytes) -> tuple[list[tuple[str, tuple[int, ...]]], list[tuple[int, ...]]]:
    """The flatbuffer's tensors (name, shape) and each conv / depthwise / fully connected
    weight, in op order: its tensor index, channel axis, channels and most distinct
    values in a channel."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    subgraph = model_editor.read(data).subgraphs[0]
    tensors = [(t.name, tuple(int(d) for d in t.shape)) for t in subgraph.tensors]
    out = []
    for op in subgraph.operators:
        if op.opcode in (3, 4, 9):  # CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED
            weight = op.inputs[1]
            axis = weight.array.ndim - 1 if op.opcode == 4 else 0
            per_channel = np.moveaxis(weight.array, axis, 0)
            distinct = max(len(np.unique(channel)) for channel in per_channel)
            out.append((weight.index, axis, per_channel.shape[0], distinct))
    return tensors, out


def _compress(data: bytes, luts: list[Lut]) -> bytes:
    from tflite_micro.tensorflow.lite.micro.compression import SpecBuilder, compress, spec

    builder = SpecBuilder()
    for lut in luts:
        builder.add_tensor(subgraph=0, tensor=lut.tensor).with_lut(
            index_bitwidth=lut.bits, mode=spec.PerChannel(lut.axis))
    with warnings.catch_warnings():  # small weights grow: compress() warns
        warnings.simplefilter("ignore")
        return bytes(compress(data, builder.build()))


@pytest.fixture(scope="module")
def measured() -> dict[str, tuple[object, int, object]]:
    """Per case: whether the lowered graph is the converter's (tensors by name and shape,
    in order), the predicted costs, the compressed file's length and its runtime report."""
    reason = _runtime_missing()
    if reason:
        pytest.skip(f"the runtime comparison needs sparsemod[tflite]: {reason}")
    from sparsemod.deploy.tflite import RUNTIME

    exported: dict[tuple[str, int], tuple] = {}
    out = {}
    with ThreadPoolExecutor(2) as pool:  # a check runs in child processes: beside the exports
        for case in _CASES:
            name, levels, bits, some = case
            if (name, levels) not in exported:
                torch.manual_seed(0)
                net, shape = _networks()[name]
                net = _cluster(net.eval(), levels)
                example = torch.randn(*shape)
                artifact = RUNTIME.export(net, example, [torch.randn(4, *shape[1:])])
                exported[name, levels] = (lower(net, example), example, artifact)
            graph, example, artifact = exported[name, levels]
            tensors, weights = _read(artifact.data)
            luts = [Lut(t, bits, distinct, channels, axis)
                    for k, (t, axis, channels, distinct) in enumerate(weights)
                    if some is None or k in some]
            same = tensors == [(t.name, t.shape) for t in graph.tensors] and all(
                weight_lut(graph, lut.tensor, bits, lut.stride) == lut for lut in luts)
            data = _compress(artifact.data, luts)
            check = [(example, torch.zeros(1, dtype=torch.long))]
            report = pool.submit(RUNTIME.check, dataclasses.replace(artifact, data=data), check)
            costs = lut_costs(graph, luts) if same else None
            out[_case_id(case)] = (same, costs, len(data), report)
    return {k: (*rest, report.result()) for k, (*rest, report) in out.items()}


@pytest.mark.parametrize("case", [_case_id(c) for c in _CASES])
def test_agrees_with_the_compressor_and_tflm(measured, case):
    """Flash, arena and its head / tail split within max(1 %, 64 B) of the runtime."""
    same, costs, flash, report = measured[case]
    assert same, "lower() is not the converter's graph: its tensors differ"
    pairs = {
        "flash": (costs.flatbuffer_bytes, flash),
        "arena": (costs.arena_bytes, report.memory_bytes),
        "head": (costs.arena_activations, report.memory_split["activations"]),
        "tail": (costs.arena_persistent, report.memory_split["persistent"]),
    }
    off = {k: v for k, v in pairs.items() if not _agree(*v)}
    assert not off, f"predicted / measured: {off}"
