"""The GRU cost model against hand counts and against the real deploy path.

The runtime comparison exports each ``build_rnn`` GRU with ``sparsemod.deploy.tflite``
(litert-torch converts the float network, AI Edge Quantizer quantizes it to int8) and
checks it in the tflite-micro interpreter: flash must equal the artifact's bytes, the
arena ``RuntimeReport.memory_bytes`` and its head / tail ``memory_split``, exactly, and
the op list the artifact's. Skipped, with the reason, where litert-torch,
ai-edge-quantizer or tflite-micro is not installed. Each network is exported once per
module; the checks run two at a time beside the exports.
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
from sparsemod.objectives.tflm_gru import gru_costs, gru_graph, lower_gru

# hidden, layers, steps, features, classes
_GRID = [
    (8, 1, 4, 3, 2), (33, 1, 4, 8, 10), (64, 1, 8, 8, 2), (128, 1, 4, 3, 10),
    (13, 2, 8, 8, 10), (33, 2, 4, 3, 2), (20, 1, 2, 5, 3),
    (16, 2, 1, 3, 2),  # one step: no unrolling, no W_hh
    (8, 1, 1, 1, 2),  # one step of one feature: the input is reshaped first
]


def _gru(hidden: int, layers: int, steps: int, features: int, classes: int) -> nn.Module:
    params = {**rnn_space().reference, "cell": "gru", "hidden": hidden, "num_layers": layers}
    return build_rnn(params, (steps, features), classes).eval()


def test_ops_and_weights_by_hand():
    """One layer, H=8 over 3 steps of 3 features, 2 classes (the file holds 88 tensors and
    61 ops: checked against a real export)."""
    graph = gru_graph(1, 3, 3, 8, 2)
    kinds = [op.kind for op in graph.ops]
    # input FC + RESHAPE + 3 step SLICEs + 3 RESHAPEs; step 0: 3 SLICEs + 10 cell ops;
    # steps 1, 2: 3 SLICEs, FC by W_hh, 3 SLICEs, 10 cell ops; 2 QUANTIZE + CONCATENATION;
    # RESHAPE, SLICE of the last step, the head's FC
    assert len(kinds) == 8 + 13 + 2 * 17 + 3 + 3 == 61
    cell = ["ADD", "LOGISTIC", "ADD", "LOGISTIC", "MUL", "ADD", "TANH", "SUB", "MUL", "ADD"]
    assert kinds[8:21] == ["SLICE"] * 3 + cell
    assert kinds[21:38] == ["SLICE"] * 3 + ["FULLY_CONNECTED"] + ["SLICE"] * 3 + cell
    assert Counter(kinds)["SUB"] == 3 and Counter(kinds)["QUANTIZE"] == 2
    sub0 = graph.ops[kinds.index("SUB")]
    assert graph.tensors[sub0.inputs[0]].shape == () and graph.tensors[sub0.inputs[0]].data == 1
    fcs = [op for op in graph.ops if op.kind == "FULLY_CONNECTED"]
    weights = [graph.tensors[op.inputs[1]] for op in fcs]
    assert [w.shape for w in weights] == [(24, 3)] + [(24, 8)] * 2 + [(2, 8)]
    assert [w.data for w in weights] == [72, 192, 192, 16]  # int8, shared W_hh
    biases = [graph.tensors[op.inputs[2]] for op in fcs]
    assert [b.data for b in biases] == [96] * 3 + [8]  # int32
    assert len({id(b) for b in biases}) == 4  # step 1 reads a copy of the recurrent bias
    step0 = [graph.tensors[op.inputs[1]] for op in graph.ops[8:21] if op.kind in ("ADD", "MUL")
             and graph.tensors[op.inputs[1]].data]
    assert [t.shape for t in step0] == [(1, 1, 8)] * 3  # b_hr, b_hz, b_hn as int8
    assert len(graph.tensors) == 88
    # weights, biases (one copy), step-0 biases, the scalar zero, 10 + 5 layout int32s
    assert sum(t.data for t in graph.tensors) == 72 + 192 + 16 + 3 * 96 + 8 + 24 + 1 + 10 * 12 \
        + 5 * 8


def test_one_step_has_no_recurrent_weights():
    graph = gru_graph(2, 1, 3, 16, 2)
    kinds = [op.kind for op in graph.ops]
    assert kinds.count("FULLY_CONNECTED") == 3 and "CONCATENATION" not in kinds
    assert kinds.count("SUB") == 2 and "RESHAPE" not in kinds
    assert [op.kind for op in gru_graph(1, 1, 1, 8, 2).ops][:2] == ["RESHAPE", "FULLY_CONNECTED"]


def test_costs_grow_with_the_sequence():
    short = gru_costs(lower_gru(_gru(16, 1, 4, 3, 2), torch.zeros(1, 4, 3)))
    long = gru_costs(lower_gru(_gru(16, 1, 8, 3, 2), torch.zeros(1, 8, 3)))
    assert long.flatbuffer_bytes > short.flatbuffer_bytes
    assert long.arena_bytes > short.arena_bytes
    assert short.arena_bytes >= short.arena_activations + short.arena_persistent
    # a step: 3 + 3 SLICEs, FC, 10 cell ops, its SLICE and RESHAPE, QUANTIZE
    assert len(long.ops) == len(short.ops) + 4 * 20


@pytest.mark.parametrize(
    ("net", "shape", "named"),
    [
        (build_rnn(rnn_space().reference, (4, 3), 2), (1, 4, 3), "LSTM"),
        (nn.Sequential(LastStep(nn.GRU(3, 8, batch_first=True, bidirectional=True)),
                       nn.Linear(16, 2)), (1, 4, 3), "bidirectional"),
        (nn.Sequential(LastStep(nn.GRU(3, 8)), nn.Linear(8, 2)), (1, 4, 3), "batch_first"),
        (nn.Sequential(LastStep(nn.GRU(3, 8, batch_first=True, bias=False)),
                       nn.Linear(8, 2)), (1, 4, 3), "bias=False"),
        (nn.Sequential(LastStep(nn.GRU(3, 8, batch_first=True)), nn.ReLU(),
                       nn.Linear(8, 2)), (1, 4, 3), "ReLU"),
        (nn.Sequential(nn.Conv1d(3, 8, 3), nn.Flatten()), (1, 3, 4), "Conv1d"),
        (_gru(8, 1, 11, 3, 2), (1, 11, 3), "encoder.rnn .GRU. over 11 steps"),
        (_gru(8, 1, 4, 3, 2), (1, 4, 5), "reads"),
    ],
)
def test_unsupported_networks_are_refused_naming_the_layer(net, shape, named):
    with pytest.raises(MeasureError, match=named):
        gru_costs(lower_gru(net, torch.zeros(*shape)))


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
            net = _gru(*key)
            example = torch.rand(1, steps, features)
            artifact = RUNTIME.export(net, example, [torch.rand(8, steps, features)])
            data = [(example, torch.zeros(1, dtype=torch.long))]
            out[key] = (gru_costs(lower_gru(net, example)), artifact,
                        pool.submit(RUNTIME.check, artifact, data))
    return {key: (costs, art, report.result()) for key, (costs, art, report) in out.items()}


@pytest.mark.parametrize("key", _GRID, ids=lambda k: "h{}_l{}_t{}_f{}_c{}".format(*k))
def test_agrees_with_tflm_exactly(measured, key):
    costs, artifact, report = measured[key]
    assert costs.flatbuffer_bytes == len(artifact.data)
    assert costs.arena_bytes == report.memory_bytes
    assert costs.arena_activations == report.memory_split["activations"]
    assert costs.arena_persistent == report.memory_split["persistent"]
    assert [op.kind for op in costs.ops] == artifact.meta["ops"]
