"""Dynamic sparse training: a fixed density at every step, connections that move, RigL."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from sparsemod import objectives
from sparsemod.compress import PruneContext, PruneStep, make_permanent, masks_of
from sparsemod.compress.dynamic_sparse import DynamicSparse, _Updater, layer_counts, random_masks
from sparsemod.compress.masks import named_prunable
from sparsemod.data import load_digits
from sparsemod.errors import ConfigError
from sparsemod.evaluate import EvalSettings, evaluate
from sparsemod.problems import get_problem
from sparsemod.train import TrainSettings, seeded


def _mlp() -> nn.Module:
    with seeded(0):
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


@pytest.fixture(scope="module")
def digits():
    return load_digits(0)


def _context(digits, epochs: int = 4, **options) -> PruneContext:
    return PruneContext(
        digits,
        TrainSettings(epochs=epochs, lr=1e-2, device="cpu"),
        None,
        DynamicSparse.Options(**options),
    )


def test_density_is_exact_in_every_layer_and_connections_move(digits, monkeypatch):
    m = _mlp()
    counts: list[dict[str, int]] = []
    original = _Updater.__call__

    def watched(self, model):
        original(self, model)
        counts.append({k: int((getattr(mod, n) != 0).sum()) for k, (mod, n) in self.named.items()})

    monkeypatch.setattr(_Updater, "__call__", watched)
    start = random_masks(_mlp(), 0.25, torch.Generator().manual_seed(0))
    dense = objectives.measure_all(m.eval(), torch.zeros(1, 1, 8, 8), 1e8)
    steps = DynamicSparse().run(m, 0.25, _context(digits, dst_interval=5))
    # 64 * 32 and 32 * 10 weights: 512 and 80 kept after every single optimizer step
    assert len(counts) == 4 * 20
    assert all(c == {"1.weight": 512, "3.weight": 80} for c in counts)
    regrows = [s for s in steps if s.stage == "regrow"]
    # every 5 steps until 75 % of the 80 steps: 12 updates, the share dropped decaying
    assert [s.detail["step"] for s in regrows] == list(range(5, 61, 5))
    dropped = [s.detail["dropped"] for s in regrows]
    assert dropped[0] > dropped[-1] >= 0 and dropped == sorted(dropped, reverse=True)
    assert steps[0].stage == "sparse_init" and [s.stage for s in steps].count("train") == 4
    final = masks_of(m)
    moved = sum(int((final[k] & ~start[k]).sum()) for k in final)
    assert moved > 50  # the connectivity really changed
    make_permanent(m)
    assert {k: int((m.state_dict()[k] != 0).sum()) for k in final} == {
        "1.weight": 512,
        "3.weight": 80,
    }
    sparse = objectives.measure_all(m.eval(), torch.zeros(1, 1, 8, 8), 1e8)
    assert sparse["model_size_bytes"] < dense["model_size_bytes"]
    assert sparse["flops"] == dense["flops"]


def test_rigl_regrows_where_the_gradient_is_largest(digits, monkeypatch):
    monkeypatch.setattr(PruneContext, "scored", lambda self, model, step: step)
    m = nn.Sequential(nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor([[0.125, 0.0, 0.75, 0.0], [0.5, 0.0, 0.0, 0.25]]))
    m[0].weight.grad = torch.tensor([[0.0, 7.0, 0.0, 1.0], [0.0, 0.5, 9.0, 0.0]])
    masks = {"0.weight": m[0].weight != 0}
    context = _context(digits, epochs=1, dst_regrow="gradient", dst_drop_fraction=0.5)
    like = PruneStep("dynamic_sparse", 0.5, 8, 4)
    updater = _Updater(m, masks, context, context.options, like, torch.Generator().manual_seed(0))
    updater.t, updater.last = 0, 10  # the first update drops the whole fraction (cos = 1)
    with torch.no_grad():
        updater._update(m)
    # 4 active, half dropped: the two smallest (0.125 and 0.25) go, the two inactive weights of
    # largest gradient (9.0 and 7.0) come, at zero as in RigL
    assert updater.masks["0.weight"].tolist() == [
        [False, True, True, False],
        [True, False, True, False],
    ]
    assert m[0].weight.tolist() == [[0.0, 0.0, 0.75, 0.0], [0.5, 0.0, 0.0, 0.0]]
    assert named_prunable(m).keys() == {"0.weight"}


def test_in_the_evaluator_it_replaces_the_dense_training():
    problem = get_problem("digits_mlp")
    params = dict(problem.space.reference, keep_ratio=0.3)
    s = EvalSettings(
        epochs=5, prune_method="dynamic_sparse", quant_scheme="none", runtime="ideal", device="cpu"
    )
    r = evaluate(problem, params, s)
    assert r.ok, r.failure_reason
    stages = [h["stage"] for h in r.history]
    assert stages[0] == "sparse_init" and stages.count("train") == 5 and "regrow" in stages
    assert stages[-1] == "quantize:none"
    # each layer keeps round(0.3 * n): 64*128 -> 2458, 128*64 -> 2458, 64*10 -> 192
    assert r.sparsity == pytest.approx(1 - (2458 + 2458 + 192) / (8192 + 8192 + 640))
    assert r.accuracy_val >= 0.85


def test_dst_end_moves_the_last_update_and_reaches_the_evaluator(digits):
    # dst_end: one declaration, in DynamicSparse.Options; the config and the evaluator take it
    from sparsemod.config import load_config

    m = _mlp()
    steps = DynamicSparse().run(m, 0.25, _context(digits, dst_interval=5, dst_end=0.5))
    regrows = [s.detail["step"] for s in steps if s.stage == "regrow"]
    assert regrows == list(range(5, 41, 5))  # every 5 steps until half of the 80
    given = ["DEFAULT.train=true", "TRAIN.prune_method=dynamic_sparse", "TRAIN.dst_end=0.5"]
    cfg = load_config(None, given).train_config
    assert cfg.eval_settings(1).prune_options() == DynamicSparse.Options(dst_end=0.5)
    with pytest.raises(ConfigError, match=r"dst_end: '1.5' is out of range"):
        load_config(None, ["DEFAULT.train=true", "TRAIN.dst_end=1.5"])


def test_erk_spreads_the_kept_weights_by_layer_shape_as_counted_by_hand():
    m = _mlp()  # weights 32x64 (2048) and 10x32 (320)
    # density ~ (out + in) / (out * in): 96 / 2048 and 42 / 320, scaled to keep 592 of 2368:
    # 592 * 96 / 138 = 411.8 and 592 * 42 / 138 = 180.2
    assert layer_counts(m, 0.25, "erk") == {"1.weight": 412, "3.weight": 180}
    # at 0.5 the head would pass 1 (1184 * 42 / 138 / 320 = 1.13): it stays dense and the
    # first layer keeps the rest, 1184 - 320 = 864
    assert layer_counts(m, 0.5, "erk") == {"1.weight": 864, "3.weight": 320}
    assert layer_counts(m, 0.25) == {"1.weight": 512, "3.weight": 80}  # uniform
    conv = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Conv2d(8, 16, 3), nn.Flatten(), nn.Linear(64, 10))
    # (8+1+3+3) / 72, (16+8+3+3) / 1152, (10+64) / 640 scaled to keep 0.3 * 1864 = 559.2:
    # 15, 30 and 74 times 559.2 / 119
    assert layer_counts(conv, 0.3, "erk") == {"0.weight": 70, "1.weight": 141, "3.weight": 348}


def test_erk_reaches_the_evaluator_from_one_declaration_and_costs_are_predicted_exactly():
    from sparsemod.config import load_config
    from sparsemod.evaluate import predict_costs

    given = ["DEFAULT.train=true", "TRAIN.prune_method=dynamic_sparse"]
    cfg = load_config(None, [*given, "TRAIN.dst_distribution=erk"]).train_config
    assert cfg.eval_settings(1).prune_options().dst_distribution == "erk"
    with pytest.raises(ConfigError, match=r"\[TRAIN\] dst_distribution: 'er' is not one of"):
        load_config(None, [*given, "TRAIN.dst_distribution=er"])
    problem = get_problem("digits_mlp")
    params = dict(problem.space.reference, keep_ratio=0.3)
    s = EvalSettings(
        epochs=2,
        prune_method="dynamic_sparse",
        dst_distribution="erk",
        quant_scheme="none",
        runtime="ideal",
        device="cpu",
    )
    r = evaluate(problem, params, s)
    assert r.ok, r.failure_reason
    # 8192, 8192 and 640 weights; the head would pass 1, so it stays dense, and the others
    # share 0.3 * 17024 - 640 = 4467.2 equally: 2234 each
    assert r.sparsity == pytest.approx(1 - (2234 + 2234 + 640) / 17024)
    predicted = predict_costs(problem, params, s, (1, 8, 8), 10)
    assert predicted["model_size_bytes"] == r.model_size_bytes
    uniform = predict_costs(problem, params, replace(s, dst_distribution="uniform"), (1, 8, 8), 10)
    assert uniform["model_size_bytes"] != r.model_size_bytes  # the spread is what is counted
