"""L1 structured pruning: exact channel counts, rebuilt layers, costs that really fall."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from sparsemod import objectives
from sparsemod.builders import build_cnn, build_mlp, build_rnn, cnn_space, mlp_space, rnn_space
from sparsemod.compress import get_pruner
from sparsemod.compress.structured import L1Structured, shrink_to_state
from sparsemod.errors import CompressionError
from sparsemod.evaluate import EvalSettings, evaluate, load_model, predict_costs
from sparsemod.problems import get_problem
from sparsemod.train import accuracy, seeded

X = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def _chain() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10)
    ).eval()


def test_small_chain_by_hand():
    m = _chain()
    # dense (see tests/objectives/test_objectives.py): 2760 B, 1280 B, 5888 FLOPs
    step = L1Structured().prune(m, 0.5)
    assert m[0].out_channels == 2 and m[4].in_features == 32 and m[4].out_features == 10
    assert (step.weights_total, step.weights_kept) == (36 + 640, 18 + 320)
    assert step.detail == {"channels": {"0": [2, 4]}}
    # conv: 18 weights + 2 biases; linear 10 * 32 + 10 biases; 4 B each
    assert objectives.model_size_bytes(m) == (20 + 330) * 4 == 1400
    # input 256 B + conv out 2*8*8 floats 512 B; then 512 + pooled 128 B; then 128 + 40 B
    assert objectives.working_memory_bytes(m, X) == 768
    # conv 2*64 outputs * 9 MACs, linear 10 * 32 MACs
    assert objectives.flops(m, X) == 2 * (2 * 64 * 9 + 320) == 2944


def test_removing_dead_channels_keeps_the_function_and_slices_channel_major():
    m = _chain()
    with torch.no_grad():  # channels 0 and 2 are dead: removing them changes nothing
        m[0].weight[[0, 2]] = 0.0
        m[0].bias[[0, 2]] = 0.0
    x = torch.randn(5, 1, 8, 8)
    before = m(x)
    L1Structured().prune(m, 0.5)
    assert torch.allclose(m(x), before, atol=1e-6)


def test_depthwise_and_batch_norm_follow_their_input():
    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1, groups=6),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 8, 1),
        nn.Flatten(),
        nn.Linear(8 * 64, 10),
    ).eval()
    dead = [1, 4, 5]
    with torch.no_grad():
        m[0].weight[dead] = 0.0
        m[0].bias[dead] = 0.0
        for bn in (m[1], m[4]):  # batch norm maps a dead channel to 0 too
            bn.bias[dead] = 0.0
            bn.running_mean[dead] = 0.0
        m[3].bias[dead] = 0.0
        m[6].weight[[0, 3, 6, 7]] = 0.0  # and four dead outputs of the pointwise conv
        m[6].bias[[0, 3, 6, 7]] = 0.0
    x = torch.randn(3, 1, 8, 8)
    before = m(x)
    step = L1Structured().prune(m, 0.5)
    assert step.detail["channels"] == {"0": [3, 6], "6": [4, 8]}
    assert (m[1].num_features, m[3].groups, m[3].out_channels, m[4].num_features) == (3, 3, 3, 3)
    assert (m[6].in_channels, m[6].out_channels, m[8].in_features) == (3, 4, 4 * 64)
    assert torch.allclose(m(x), before, atol=1e-5)


@pytest.mark.parametrize(
    ("kind", "blocks", "num_fc"),
    list(itertools.product(("standard", "downsampled", "depthwise"), (1, 2, 3), (0, 2))),
)
def test_every_cnn_the_builder_makes_shrinks_in_all_three_costs(kind, blocks, num_fc):
    p = dict(cnn_space().reference, num_blocks=blocks, num_fc=num_fc, b1_layers=2, b3_pool="none")
    p.update({f"b{b}_type": kind for b in (1, 2, 3)})
    with seeded(0):
        m = build_cnn(p, (1, 8, 8), 10).eval()
    dense = objectives.measure_all(m, X, 1e8)
    filters = {n: mod.out_channels for n, mod in m.named_modules() if isinstance(mod, nn.Conv2d)}
    step = L1Structured().prune(m, 0.5)
    for f in step.detail["channels"].values():
        assert f == [max(1, round(0.5 * f[1])), f[1]]
    # every conv that is not depthwise lost half its filters; depthwise followed its input
    for n, mod in m.named_modules():
        if isinstance(mod, nn.Conv2d):
            assert mod.out_channels == max(1, round(0.5 * filters[n])) or mod.groups > 1
    assert m.out.out_features == 10
    small = objectives.measure_all(m, X, 1e8)
    for key in ("model_size_bytes", "working_memory_bytes", "flops"):
        assert small[key] < dense[key], key
    assert m(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_mlp_neurons_and_never_below_one_channel():
    with seeded(0):
        m = build_mlp(dict(mlp_space().reference, num_layers=3), (1, 8, 8), 10)
    step = L1Structured().prune(m, 0.01)
    assert step.detail["channels"] == {"fc1": [1, 128], "fc2": [1, 64], "fc3": [1, 32]}
    assert (m.fc2.in_features, m.out.in_features, m.out.out_features) == (1, 1, 10)


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(256, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.conv1(x))
        return self.fc((a + self.conv2(a)).flatten(1))


def test_graphs_it_cannot_follow_are_refused_naming_the_layer():
    with pytest.raises(CompressionError, match=r"channels of 'conv1'.*addition"):
        L1Structured().prune(_Residual(), 0.5)
    with seeded(0):
        rnn = build_rnn(rnn_space().reference, (8, 8), 10)
    with pytest.raises(CompressionError, match=r"LSTM 'encoder.rnn' cannot be shrunk"):
        L1Structured().prune(rnn, 0.5)


def test_a_saved_structured_state_loads_into_a_fresh_build():
    with seeded(0):
        m = build_cnn(cnn_space().reference, (1, 8, 8), 10)
    get_pruner("l1_structured").prune(m, 0.3)
    with seeded(1):
        fresh = build_cnn(cnn_space().reference, (1, 8, 8), 10)
    shrink_to_state(fresh, m.state_dict())
    fresh.load_state_dict(m.state_dict())
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(fresh.eval()(x), m.eval()(x))


@pytest.mark.slow
def test_half_the_channels_keeps_digits_accuracy_within_3_points_and_costs_are_predicted():
    problem = get_problem("digits_cnn")
    data = problem.load(0)
    params = dict(problem.space.reference, keep_ratio=0.5)
    base = dict(epochs=5, quant_scheme="none", runtime="ideal", score_test=True, device="cpu")
    dense = evaluate(problem, params, EvalSettings(pruning=False, **base), data)
    settings = EvalSettings(prune_method="l1_structured", finetune_epochs=5, **base)
    pruned = evaluate(problem, params, settings, data)
    assert dense.ok and pruned.ok, pruned.failure_reason
    assert dense.accuracy_test >= 0.95
    assert pruned.accuracy_test >= dense.accuracy_test - 0.03
    (prune,) = [h for h in pruned.history if h["stage"] == "prune"]
    assert prune["channels"] == {"b1_l1_conv": [8, 16], "b2_l1_conv": [16, 32], "fc1": [32, 64]}
    for key in ("model_size_bytes", "working_memory_bytes", "flops"):
        assert getattr(pruned, key) < getattr(dense, key)
    # the costs predicted before training are exactly the measured ones
    predicted = predict_costs(problem, params, settings, data.input_shape, data.num_classes)
    for key in ("model_size_bytes", "working_memory_bytes", "flops"):
        assert predicted[key] == getattr(pruned, key)
    reloaded = load_model(pruned.model, problem)
    assert accuracy(reloaded, data.val) == pytest.approx(pruned.accuracy_val)
