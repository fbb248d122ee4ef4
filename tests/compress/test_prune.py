"""Global magnitude pruning: exact counts, zeros that stay zero, permanence."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsemod.builders import build_rnn, rnn_space
from sparsemod.compress import GlobalMagnitude, get_pruner, make_permanent, prunable_weights
from sparsemod.compress import sparsity as sparsity_of
from sparsemod.data import load_digits
from sparsemod.errors import CompressionError, ConfigError
from sparsemod.train import TrainSettings, seeded, train


def _mlp() -> nn.Module:
    with seeded(0):
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def test_keeps_exactly_the_share_asked_over_the_whole_network():
    m = _mlp()
    step = GlobalMagnitude().prune(m, 0.25)
    total = 64 * 32 + 32 * 10
    assert step.weights_total == total == 2368
    assert step.weights_kept == round(0.25 * total) == 592
    assert step.sparsity == pytest.approx(1 - 592 / 2368)
    # biases are never pruned
    assert int((m[1].bias == 0).sum()) == 0


def test_smallest_magnitudes_go_first():
    m = nn.Sequential(nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor([[0.1, -3.0, 0.2, 2.0]]))
    GlobalMagnitude().prune(m, 0.5)
    make_permanent(m)
    assert m[0].weight.tolist() == [[0.0, -3.0, 0.0, 2.0]]


def test_zeros_stay_zero_through_fine_tuning_and_after_remove():
    m = _mlp()
    GlobalMagnitude().prune(m, 0.3)
    masks = {id(mod): (mod.weight == 0).clone() for mod, _ in prunable_weights(m)}
    train(m, load_digits(0), TrainSettings(epochs=1, lr=1e-2))
    for mod, _ in prunable_weights(m):
        assert torch.all(mod.weight[masks[id(mod)]] == 0)
    make_permanent(m)
    assert not any(name.endswith("_orig") for name, _ in m.named_parameters())
    assert sparsity_of(m) == pytest.approx(1 - round(0.3 * 2368) / 2368)


def test_recurrent_weights_are_pruned_and_the_rnn_still_runs():
    with seeded(0):
        m = build_rnn(rnn_space().reference, (8, 8), 10)
    step = GlobalMagnitude().prune(m, 0.5)
    make_permanent(m)
    lstm = m.encoder.rnn
    zeros = sum(int((p == 0).sum()) for n, p in lstm.named_parameters() if "weight" in n)
    assert zeros > 0
    assert step.weights_kept == step.weights_total - step.weights_total // 2
    out = m(torch.randn(3, 8, 8))
    assert out.shape == (3, 10) and torch.isfinite(out).all()


def test_bad_inputs_are_named():
    with pytest.raises(ConfigError, match="keep_ratio"):
        GlobalMagnitude().prune(_mlp(), 0.0)
    with pytest.raises(ConfigError, match="prune_method: 'nope'"):
        get_pruner("nope")
    with pytest.raises(CompressionError, match="no conv, linear"):
        GlobalMagnitude().prune(nn.Sequential(nn.ReLU()), 0.5)
