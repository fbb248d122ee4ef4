"""The analytic TFLM cost model against hand counts and against the real runtime.

The runtime comparison converts each network with litert-torch and runs it in the
tflite-micro interpreter (``sparsemod.deploy.tflite``); it is skipped, with the reason,
where those are not installed. Conversions are cached per module (about 5-10 s each).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from sparsemod.builders import build_cnn, build_mlp, cnn_space, mlp_space
from sparsemod.errors import MeasureError
from sparsemod.objectives.tflm import tflm_costs
from sparsemod.objectives.tflm_arena import greedy_plan
from sparsemod.objectives.tflm_graph import lower


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


def _cnn(**over) -> nn.Module:
    return build_cnn({**cnn_space().reference, **over}, (1, 8, 8), 10)


def _sample() -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    conv1d = nn.Sequential(
        nn.Conv1d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(),
        nn.Linear(320, 32), nn.ReLU(), nn.Linear(32, 10),
    )
    return {
        "cnn reference": (_cnn(), (1, 1, 8, 8)),
        "cnn depthwise+avg": (_cnn(b1_type="depthwise", b2_type="downsampled", b2_pool="avg",
                                   num_fc=2), (1, 1, 8, 8)),
        "mlp reference": (build_mlp(mlp_space().reference, (8, 8), 10), (1, 8, 8)),
        "mlp tanh 3 layers": (build_mlp({**mlp_space().reference, "num_layers": 3,
                                         "activation": "tanh"}, (8, 8), 10), (1, 8, 8)),
        "conv1d": (conv1d, (1, 1, 40)),
        "residual add": (_Residual(), (1, 4, 8, 8)),
    }


def test_linear_4_to_2_by_hand():
    """A single Linear 4 -> 2: 8 weight bytes, 8 bias bytes, 2 scales per constant."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 2)).eval()
    graph = lower(net, torch.randn(1, 4))
    kinds = [op.kind for op in graph.ops]
    assert kinds == ["FULLY_CONNECTED"]
    by_dtype = {t.dtype: t for t in graph.tensors if t.data}
    assert (by_dtype["int8"].data, by_dtype["int8"].scales) == (8, 2)
    assert (by_dtype["int32"].data, by_dtype["int32"].scales) == (8, 2)
    costs = tflm_costs(net, torch.randn(1, 4))
    # What litert-torch 0.10 wrote and TFLM planned for this network (measured once).
    assert costs.flatbuffer_bytes == 1256
    assert costs.arena_activations == 32  # input 4 B and output 2 B, 16 B each
    assert costs.arena_bytes == 1040
    assert costs.persistent_parts["nodes"] == 64
    assert costs.persistent_parts["tensors"] == 4 * 24


def test_conv1d_runs_as_2d_ops_with_channels_last_activations():
    """Conv1d is a 2-D conv over a height-1 image; no activation is held three times."""
    net, shape = _sample()["conv1d"]
    graph = lower(net.eval(), torch.randn(*shape))
    kinds = [op.kind for op in graph.ops]
    assert kinds == ["RESHAPE", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "CONV_2D", "MAX_POOL_2D",
                     "TRANSPOSE", "RESHAPE", "FULLY_CONNECTED", "FULLY_CONNECTED"]
    assert tflm_costs(net, torch.randn(*shape)).arena_activations == 960


def test_greedy_planner_reuses_dead_buffers():
    # a (0-1) and c (2-3) never overlap; b (1-2) overlaps both.
    assert greedy_plan([(32, 0, 1), (16, 1, 2), (32, 2, 3)]) == 48
    assert greedy_plan([(32, 0, 3), (16, 1, 2), (32, 2, 3)]) == 80


def test_pruning_saves_no_flash():
    net = _cnn()
    before = tflm_costs(net, torch.randn(1, 1, 8, 8)).flatbuffer_bytes
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(torch.rand_like(p) > 0.9)
    assert tflm_costs(net, torch.randn(1, 1, 8, 8)).flatbuffer_bytes == before


def test_lstm_is_refused_with_the_reason():
    net = build_rnn_lstm()
    with pytest.raises(MeasureError, match="LSTM"):
        tflm_costs(net, torch.randn(1, 8, 8))


def build_rnn_lstm() -> nn.Module:
    from sparsemod.builders import build_rnn, rnn_space

    return build_rnn(rnn_space().reference, (8, 8), 10)


def _runtime_missing() -> str | None:
    for module in ("litert_torch", "tflite_micro"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    if importlib.util.find_spec("sparsemod.deploy.tflite") is None:
        return "sparsemod.deploy.tflite is not there yet"
    return None


@pytest.fixture(scope="module")
def measured() -> dict[str, tuple[object, int, int]]:
    """Each sample network's predicted costs and TFLM's flash and arena."""
    reason = _runtime_missing()
    if reason:
        pytest.skip(reason)
    from sparsemod.deploy.base import DeployError
    from sparsemod.deploy.tflite import RUNTIME

    out = {}
    for name, (net, shape) in _sample().items():
        torch.manual_seed(0)
        net = net.eval()
        example = torch.randn(*shape)
        artifact = RUNTIME.export(net, example, [torch.randn(4, *shape[1:])])
        try:
            report = RUNTIME.check(artifact, [(example, torch.zeros(1, dtype=torch.long))])
        except DeployError as exc:  # the deploy module is being written beside this one
            if "without a report" not in str(exc):
                raise
            pytest.skip(f"sparsemod.deploy.tflite cannot run TFLM here yet: {exc}")
        out[name] = (tflm_costs(net, example), artifact.size_bytes, report.memory_bytes)
    return out


@pytest.mark.parametrize("name", list(_sample()))
def test_agrees_with_tflm(measured, name):
    costs, flash, arena = measured[name]
    assert _agree(costs.flatbuffer_bytes, flash), (costs.flatbuffer_bytes, flash)
    assert _agree(costs.arena_bytes, arena), (costs.arena_bytes, arena)
