"""The analytic TFLM cost model against hand counts and against the real runtime.

The runtime comparison exports each sample network with ``sparsemod.deploy.tflite``
(litert-torch, int8) and checks it there (the tflite-micro interpreter): flash is the
artifact's bytes, arena is ``RuntimeReport.memory_bytes`` (the smallest arena TFLM runs
it in) with ``memory_split`` as head / tail. Skipped, with the reason, where litert-torch
or tflite-micro is not installed. The sample is exported once per module, then checked
two at a time (each check is child processes).
"""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor

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


def _mlp(**over) -> nn.Module:
    return build_mlp({**mlp_space().reference, **over}, (8, 8), 10)


def _sample() -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    """Each built-in space at two settings, a Conv1d, a depthwise-separable and a residual
    network."""
    conv1d = nn.Sequential(
        nn.Conv1d(1, 16, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(16, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Flatten(),
        nn.Linear(320, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )
    depthwise = nn.Sequential(  # three input channels: the input is transposed, not reshaped
        nn.Conv2d(3, 3, 3, padding=1, groups=3),
        nn.ReLU(),
        nn.Conv2d(3, 12, 1),
        nn.ReLU(),
        nn.Conv2d(12, 12, 3, padding=1, groups=12),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(12 * 4 * 4, 10),
    )
    # three blocks: 1x1 reduce convs, an average pool into a conv (QUANTIZE), depthwise
    # convs, a 1x1 map whose flatten folds into the linear
    cnn3 = _cnn(
        num_blocks=3,
        b1_type="downsampled",
        b1_pool="avg",
        b2_layers=2,
        b3_type="depthwise",
        b3_filters=24,
        b3_pool="max",
        num_fc=2,
    )
    return {
        "cnn reference": (_cnn(), (1, 1, 8, 8)),
        "cnn 3 blocks": (cnn3, (1, 1, 8, 8)),
        "mlp reference": (_mlp(), (1, 8, 8)),
        "mlp tanh 3 layers": (_mlp(num_layers=3, activation="tanh"), (1, 8, 8)),
        "conv1d": (conv1d, (1, 1, 40)),
        "depthwise": (depthwise, (1, 3, 8, 8)),
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
    assert costs.arena_activations + costs.arena_persistent == 1040  # TFLM's printed total
    assert costs.arena_bytes == 1344  # the smallest arena it runs in
    assert costs.persistent_parts["nodes"] == 64
    assert costs.persistent_parts["tensors"] == 4 * 24


def test_conv1d_runs_as_2d_ops_with_channels_last_activations():
    """Conv1d is a 2-D conv over a height-1 image; no activation is held three times."""
    net, shape = _sample()["conv1d"]
    graph = lower(net.eval(), torch.randn(*shape))
    kinds = [op.kind for op in graph.ops]
    assert kinds == [
        "RESHAPE",
        "DEPTHWISE_CONV_2D",
        "MAX_POOL_2D",
        "CONV_2D",
        "MAX_POOL_2D",
        "TRANSPOSE",
        "RESHAPE",
        "FULLY_CONNECTED",
        "FULLY_CONNECTED",
    ]
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


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_rnns_are_refused_with_the_reason(cell):
    """The layer-by-layer lowering takes no recurrent layer: the recurrent builder's networks
    have their own unrolled graphs (tflm_lstm, tflm_gru), any other is refused."""
    from sparsemod.builders import build_rnn, rnn_space

    net = build_rnn({**rnn_space().reference, "cell": cell}, (8, 8), 10)
    with pytest.raises(MeasureError, match=f"(?i){cell}.*not modelled.*recurrent builder"):
        tflm_costs(net, torch.randn(1, 8, 8))


def test_the_arena_holds_the_allocators_temporaries():
    """MLP 64-128-64-10: TFLM keeps head 192 + tail 3264 = 3456 B, but the fully connected
    kernel's Prepare takes four temp tensors (two with 128 zero points each) while the
    tail already holds its per-channel arrays: the smallest arena is 4016 B (measured)."""
    costs = tflm_costs(_mlp(), torch.randn(1, 8, 8))
    assert (costs.arena_activations, costs.arena_persistent) == (192, 3264)
    assert costs.arena_bytes == 4016


def test_a_1x1_map_is_read_by_the_linear_without_a_flatten():
    net = _cnn(num_blocks=3, b3_pool="max").eval()
    kinds = [op.kind for op in lower(net, torch.randn(1, 1, 8, 8)).ops]
    assert "TRANSPOSE" not in kinds and kinds.count("RESHAPE") == 1  # the input's only


def test_an_average_pool_that_keeps_the_range_needs_no_quantize():
    """Behind a conv whose ReLU is always off the map is constant: the converter puts no
    QUANTIZE after the pool."""
    net = _cnn(b1_pool="avg").eval()
    kinds = [op.kind for op in lower(net, torch.randn(1, 1, 8, 8)).ops]
    assert kinds.count("QUANTIZE") == 1
    with torch.no_grad():
        net.b1_l1_conv.weight.zero_()
        net.b1_l1_conv.bias.fill_(-1.0)
    kinds = [op.kind for op in lower(net, torch.randn(1, 1, 8, 8)).ops]
    assert "QUANTIZE" not in kinds


def _runtime_missing() -> str | None:
    for module in ("litert_torch", "tflite_micro"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    return None


@pytest.fixture(scope="module")
def measured() -> dict[str, tuple[object, object, object]]:
    """Each sample network's predicted costs, its artifact and its runtime report."""
    reason = _runtime_missing()
    if reason:
        pytest.skip(f"the runtime comparison needs sparsemod[tflite]: {reason}")
    from sparsemod.deploy.tflite import RUNTIME

    out = {}
    with ThreadPoolExecutor(2) as pool:  # a check runs in child processes: beside the exports
        for name, (net, shape) in _sample().items():
            torch.manual_seed(0)
            net = net.eval()
            example = torch.randn(*shape)
            artifact = RUNTIME.export(net, example, [torch.randn(4, *shape[1:])])
            data = [(example, torch.zeros(1, dtype=torch.long))]
            report = pool.submit(RUNTIME.check, artifact, data)
            out[name] = (tflm_costs(net, example), artifact, report)
    return {name: (costs, art, report.result()) for name, (costs, art, report) in out.items()}


@pytest.mark.parametrize("name", list(_sample()))
def test_agrees_with_tflm(measured, name):
    """Flash, arena and its head / tail split within max(1 %, 64 B) of the runtime."""
    costs, artifact, report = measured[name]
    pairs = {
        "flash": (costs.flatbuffer_bytes, len(artifact.data)),
        "arena": (costs.arena_bytes, report.memory_bytes),
        "head": (costs.arena_activations, report.memory_split["activations"]),
        "tail": (costs.arena_persistent, report.memory_split["persistent"]),
    }
    off = {k: v for k, v in pairs.items() if not _agree(*v)}
    assert not off, f"predicted / runtime: {off}"
