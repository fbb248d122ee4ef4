"""SNIP: sensitivity |g * w| at initialisation, exact counts, masks held while training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsemod import objectives
from sparsemod.compress import PruneContext, make_permanent, masks_of
from sparsemod.compress.masks import count_weights
from sparsemod.compress.snip import Snip, sensitivity
from sparsemod.data import load_digits
from sparsemod.evaluate import EvalSettings, evaluate
from sparsemod.problems import get_problem
from sparsemod.train import TrainSettings, seeded


def _mlp() -> nn.Module:
    with seeded(0):
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


@pytest.fixture(scope="module")
def context():
    return PruneContext(
        load_digits(0),
        TrainSettings(epochs=2, lr=1e-2, device="cpu"),
        None,
        Snip.Options(snip_batches=2),
    )


def test_sensitivity_is_the_summed_gradient_times_the_weight(context):
    m = _mlp()
    scores = sensitivity(m, context, context.options.snip_batches)
    # by hand: the gradient of the loss of each of the two batches, summed, times w
    twin = _mlp()
    for x, y in context.batches(2):
        F.cross_entropy(twin(x), y).backward()
    for key, (mod, name) in {
        "1.weight": (twin[1], "weight"),
        "3.weight": (twin[3], "weight"),
    }.items():
        g = getattr(mod, name).grad
        assert torch.allclose(scores[key], (g * getattr(mod, name)).abs(), atol=1e-7)
    assert all(p.grad is None for p in m.parameters())  # no gradient left behind


def test_snip_keeps_the_most_sensitive_weights_exactly_and_holds_the_mask(context):
    m = _mlp()
    scores = sensitivity(m, context, context.options.snip_batches)
    dense = objectives.measure_all(m.eval(), torch.zeros(1, 1, 8, 8), 1e8)
    steps = Snip().run(m, 0.1, context)
    assert [s.stage for s in steps] == ["snip", "train", "train"]
    assert steps[0].weights_kept == round(0.1 * 2368) == 237
    masks = masks_of(m)
    flat_scores = torch.cat([scores[k].flatten() for k in masks])
    flat_masks = torch.cat([masks[k].flatten() for k in masks])
    assert flat_scores[flat_masks].min() >= flat_scores[~flat_masks].max()
    make_permanent(m)  # after two epochs of training the pruned weights are still zero
    assert count_weights(m) == (2368, 237)
    for key, mask in masks.items():
        assert not bool(m.state_dict()[key][~mask].any())
    sparse = objectives.measure_all(m.eval(), torch.zeros(1, 1, 8, 8), 1e8)
    assert sparse["model_size_bytes"] < dense["model_size_bytes"]
    assert (sparse["flops"], sparse["working_memory_bytes"]) == (
        dense["flops"],
        dense["working_memory_bytes"],
    )


def test_in_the_evaluator_snip_replaces_the_dense_training():
    problem = get_problem("digits_mlp")
    params = dict(problem.space.reference, keep_ratio=0.3)
    s = EvalSettings(
        epochs=5, prune_method="snip", quant_scheme="none", runtime="ideal", device="cpu"
    )
    r = evaluate(problem, params, s)
    assert r.ok, r.failure_reason
    assert [h["stage"] for h in r.history] == ["snip"] + ["train"] * 5 + ["quantize:none"]
    assert r.sparsity == pytest.approx(0.7, abs=1e-4)
    assert r.accuracy_val >= 0.85
