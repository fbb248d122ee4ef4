"""The LSTM cost model against hand counts and against the real deploy path.

The runtime comparison exports each ``build_rnn`` LSTM with ``sparsemod.deploy.tflite``
(litert-torch converts the float network, AI Edge Quantizer quantizes it to int8) and
checks it in the tflite-micro interpreter: flash must equal the artifact's bytes, the
arena ``RuntimeReport.memory_bytes`` and its head / tail ``memory_split``, exactly.
Skipped, with the reason, where litert-torch, ai-edge-quantizer or tflite-micro is not
installed. Each network is exported once per module; the checks run two at a time beside
the exports.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from torch import nn

from sparsemod.builders.rnn import LastStep, build_rnn, rnn_space
from sparsemod.errors import MeasureError
from sparsemod.objectives.tflm_lstm import lower_lstm, lstm_costs, lstm_graph

# hidden, layers, steps, features, classes
_GRID = [
    (8, 1, 4, 3, 2), (33, 1, 4, 8, 10), (64, 1, 8, 8, 2), (128, 1, 4, 3, 10),
    (20, 1, 2, 5, 3), (8, 2, 4, 3, 2), (13, 2, 8, 8, 10), (33, 2, 4, 3, 2),
    (16, 2, 1, 3, 2),  # one step: no unrolling
    (128, 2, 10, 64, 10),  # over 256 KiB of weights, which the quantizer wrote outside
]


def _lstm(hidden: int, layers: int, steps: int, features: int, classes: int) -> nn.Module:
    params = {**rnn_space().reference, "hidden": hidden, "num_layers": layers}
    return build_rnn(params, (steps, features), classes).eval()


def test_ops_and_weights_by_hand():
    """One layer, H=8 over 4 steps of 3 features, 2 classes (the file holds 90 tensors and
    68 ops: checked against a real export)."""
    graph = lstm_graph(1, 4, 3, 8, 2)
    kinds = [op.kind for op in graph.ops]
    # input FC + RESHAPE + 4 step SLICEs; step 0: 10 ops; steps 1..3: 15 ops each;
    # 3 QUANTIZE + CONCATENATION; RESHAPE, SLICE of the last step, the head's FC
    assert len(kinds) == 6 + 10 + 3 * 15 + 4 + 3 == 68
    assert kinds[6:16] == ["ADD", "SLICE", "SLICE", "SLICE", "LOGISTIC", "TANH", "LOGISTIC",
                           "MUL", "TANH", "MUL"]
    assert kinds[16:31] == ["FULLY_CONNECTED", "ADD"] + ["SLICE"] * 4 + [
        "LOGISTIC", "LOGISTIC", "TANH", "LOGISTIC", "MUL", "MUL", "ADD", "TANH", "MUL"]
    assert Counter(kinds)["FULLY_CONNECTED"] == 5 and Counter(kinds)["QUANTIZE"] == 3
    weights = [graph.tensors[op.inputs[1]] for op in graph.ops if op.kind == "FULLY_CONNECTED"]
    assert [w.shape for w in weights] == [(32, 3)] + [(32, 8)] * 3 + [(2, 8)]
    assert [w.data for w in weights] == [96, 256, 256, 256, 16]  # int8, shared W_hh
    biases = [graph.tensors[op.inputs[2]] for op in graph.ops if op.kind == "FULLY_CONNECTED"]
    assert [b.data for b in biases] == [128] * 4 + [8]  # int32
    assert len({id(b) for b in biases}) == 5  # steps 1 and 2 read copies of the bias
    assert len(graph.tensors) == 90
    assert sum(t.data for t in graph.tensors) == 96 + 256 + 16 + 4 * 128 + 8 + 32 + 12 * 12


def test_costs_grow_with_the_sequence():
    short = lstm_costs(lower_lstm(_lstm(16, 1, 4, 3, 2), torch.zeros(1, 4, 3)))
    long = lstm_costs(lower_lstm(_lstm(16, 1, 8, 3, 2), torch.zeros(1, 8, 3)))
    assert long.flatbuffer_bytes > short.flatbuffer_bytes
    assert long.arena_bytes > short.arena_bytes
    assert short.arena_bytes >= short.arena_activations + short.arena_persistent
    assert len(long.ops) == len(short.ops) + 4 * 17  # a step: 15 ops, its SLICE, QUANTIZE


@pytest.mark.parametrize(
    ("net", "shape", "named"),
    [
        (build_rnn({**rnn_space().reference, "cell": "gru"}, (4, 3), 2), (1, 4, 3), "GRU"),
        (nn.Sequential(LastStep(nn.LSTM(3, 8, batch_first=True, bidirectional=True)),
                       nn.Linear(16, 2)), (1, 4, 3), "bidirectional"),
        (nn.Sequential(LastStep(nn.LSTM(3, 8)), nn.Linear(8, 2)), (1, 4, 3), "batch_first"),
        (nn.Sequential(LastStep(nn.LSTM(3, 8, batch_first=True, proj_size=4)),
                       nn.Linear(4, 2)), (1, 4, 3), "proj_size"),
        (nn.Sequential(LastStep(nn.LSTM(3, 8, batch_first=True)), nn.ReLU(),
                       nn.Linear(8, 2)), (1, 4, 3), "ReLU"),
        (nn.Sequential(nn.Conv1d(3, 8, 3), nn.Flatten()), (1, 3, 4), "Conv1d"),
        (_lstm(8, 1, 11, 3, 2), (1, 11, 3), "CONCATENATION"),
        (_lstm(8, 1, 1, 1, 2), (1, 1, 1), "one step of one feature"),
    ],
)
def test_unsupported_networks_are_refused_naming_the_layer(net, shape, named):
    with pytest.raises(MeasureError, match=named):
        lstm_costs(lower_lstm(net, torch.zeros(*shape)))


def _runtime_missing() -> str | None:
    for module in ("litert_torch", "ai_edge_quantizer", "tflite_micro"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    return None


@pytest.fixture(scope="module")
def measured() -> dict[tuple[int, ...], tuple[object, object, object]]:
    """Each grid network's predicted costs, its artifact and its runtime report."""
    reason = _runtime_missing()
    if reason:
        pytest.skip(f"the runtime comparison needs sparsemod[tflite]: {reason}")
    from sparsemod.deploy.tflite import RUNTIME

    out = {}
    with ThreadPoolExecutor(2) as pool:  # a check runs in child processes: beside the exports
        for key in _GRID:
            hidden, layers, steps, features, classes = key
            torch.manual_seed(0)
            net = _lstm(*key)
            example = torch.rand(1, steps, features)
            artifact = RUNTIME.export(net, example, [torch.rand(8, steps, features)])
            data = [(example, torch.zeros(1, dtype=torch.long))]
            out[key] = (lstm_costs(lower_lstm(net, example)), artifact, pool.submit(RUNTIME.check,
                                                                        artifact, data))
    return {key: (costs, art, report.result()) for key, (costs, art, report) in out.items()}


@pytest.mark.parametrize("key", _GRID, ids=lambda k: "h{}_l{}_t{}_f{}_c{}".format(*k))
def test_agrees_with_tflm_exactly(measured, key):
    costs, artifact, report = measured[key]
    assert costs.flatbuffer_bytes == len(artifact.data)
    assert costs.arena_bytes == report.memory_bytes
    assert costs.arena_activations == report.memory_split["activations"]
    assert costs.arena_persistent == report.memory_split["persistent"]
    assert [op.kind for op in costs.ops] == artifact.meta["ops"]
    # every buffer inside the flatbuffer, where TFLM reads its weights
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(artifact.data, 0)
    assert all(model.Buffers(i).Offset() == 0 for i in range(model.BuffersLength()))
