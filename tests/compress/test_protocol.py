"""The pruning protocol: registry, steps as history rows, masks, options, the IMP schedule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsemod.compress import (
    PRUNERS,
    GlobalMagnitude,
    PruneContext,
    PruneStep,
    apply_masks,
    get_pruner,
    make_permanent,
    masks_of,
)
from sparsemod.compress.lottery import LotteryTicket, schedule
from sparsemod.compress.masks import top_k_masks
from sparsemod.data import load_digits
from sparsemod.errors import CompressionError, ConfigError
from sparsemod.evaluate import EvalSettings
from sparsemod.train import TrainSettings, seeded


def _mlp() -> nn.Module:
    with seeded(0):
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def test_every_method_is_registered_by_its_config_name():
    assert sorted(PRUNERS) == [
        "dynamic_sparse",
        "imp",
        "l1_structured",
        "magnitude",
        "magnitude_layerwise",
        "snip",
    ]
    with pytest.raises(ConfigError, match="prune_method: 'nope' is not one of"):
        get_pruner("nope")
    # where each sits in the pipeline
    assert [n for n, c in sorted(PRUNERS.items()) if c.at_init] == ["dynamic_sparse", "snip"]
    assert [n for n, c in sorted(PRUNERS.items()) if c.trains] == ["dynamic_sparse", "imp", "snip"]


def test_methods_that_need_data_say_so_when_called_without():
    for name in ("imp", "snip", "dynamic_sparse"):
        with pytest.raises(CompressionError, match=f"{name}' needs data and training"):
            get_pruner(name).prune(_mlp(), 0.5)


def test_the_default_run_is_one_prune_scored_on_validation():
    splits = load_digits(0)
    context = PruneContext(splits, TrainSettings(epochs=1, device="cpu"))
    (step,) = GlobalMagnitude().run(_mlp(), 0.25, context)
    assert (step.stage, step.weights_total, step.weights_kept) == ("prune", 2368, 592)
    assert 0.0 <= step.val_accuracy <= 1.0
    row = step.row()
    assert row["stage"] == "prune" and row["epoch"] == 0 and row["loss"] is None
    assert row["sparsity"] == pytest.approx(1 - 592 / 2368)
    assert (row["method"], row["weights_kept"], row["weights_total"]) == ("magnitude", 592, 2368)


def test_step_detail_becomes_extra_columns_of_the_row():
    step = PruneStep("imp", 0.2, 100, 80, "prune:imp-1", detail={"round": 1})
    assert step.row()["round"] == 1 and step.row()["sparsity"] == pytest.approx(0.2)


def test_top_k_masks_keep_exactly_k_even_with_ties():
    scores = {"a": torch.ones(3, 4), "b": torch.tensor([5.0, 1.0, -float("inf")])}
    masks = top_k_masks(scores, 7)
    assert sum(int(m.sum()) for m in masks.values()) == 7
    # 5.0 first, then six of the thirteen tied ones; -inf never
    assert bool(masks["b"][0]) and not bool(masks["b"][2])


def test_masks_replace_earlier_masks_and_survive_make_permanent():
    m = _mlp()
    GlobalMagnitude().prune(m, 0.5)
    first = masks_of(m)
    assert sum(int(v.sum()) for v in first.values()) == 1184
    # keep a quarter of what is left: the new mask replaces, it is not multiplied on twice
    new = {
        k: v & (torch.rand(v.shape, generator=torch.Generator().manual_seed(0)) < 0.25)
        for k, v in first.items()
    }
    apply_masks(m, new)
    assert [n for n, _ in m[1].named_buffers()] == ["weight_mask"]
    make_permanent(m)
    assert {k: int(v.sum()) for k, v in masks_of(m).items()} == {
        k: int(v.sum()) for k, v in new.items()
    }


def test_imp_schedule_prunes_a_share_of_what_is_left_and_lands_on_the_keep_ratio():
    # 20 % of the remaining each round: 1000 -> 800 -> 640 -> 512 -> 410 -> 328 -> 262 -> 210,
    # then the last round prunes only down to the target, 200 = 20 %.
    assert schedule(1000, 0.2, 0.2) == [800, 640, 512, 410, 328, 262, 210, 200]
    assert schedule(1000, 0.2) == schedule(1000, 0.2, 0.2)
    # a given number of rounds: each keeps keep ** (1 / rounds)
    assert schedule(1000, 0.25, rounds=2) == [500, 250]
    assert schedule(1000, 1.0) == []
    # a tiny layer still gets there (at least one weight a round)
    assert schedule(3, 0.3, 0.1) == [2, 1]


def test_new_settings_are_validated_with_their_names():
    with pytest.raises(ConfigError, match="give one of them"):
        LotteryTicket.Options(imp_rate=0.2, imp_rounds=3)
    with pytest.raises(ConfigError, match=r"imp_rate: 1\.5"):
        EvalSettings(imp_rate=1.5)
    with pytest.raises(ConfigError, match="dst_regrow: 'magic'"):
        EvalSettings(dst_regrow="magic")
    with pytest.raises(ConfigError, match="dst_drop_fraction"):
        EvalSettings(dst_drop_fraction=1.0)
    with pytest.raises(ConfigError, match="snip_batches: 0"):
        EvalSettings(snip_batches=0)
    with pytest.raises(ConfigError, match="rewind_epoch: 6 is after the last epoch"):
        EvalSettings(prune_method="imp", epochs=5, rewind_epoch=6)
    s = EvalSettings(prune_method="imp", imp_rounds=4, rewind_epoch=1, quant_scheme="both")
    assert s.prune_options().imp_rounds == 4 and s.prune_options().rewind_epoch == 1


@pytest.mark.parametrize("method", ["magnitude", "magnitude_layerwise"])
def test_predicting_zeroes_exactly_what_pruning_zeroes(method):
    import copy

    from sparsemod.evaluate import build_network
    from sparsemod.problems import get_problem
    from sparsemod.search.encoding import Encoder

    problem = get_problem("digits_cnn")
    data = problem.load(0)
    for params in Encoder(problem.space).sample(6, 11):
        model = build_network(
            problem, params, splits=None, shape=(tuple(data.input_shape), data.num_classes)
        )
        for keep in (0.05, 0.37, 0.9):
            pruned, predicted = copy.deepcopy(model), copy.deepcopy(model)
            get_pruner(method).prune(pruned, keep)
            make_permanent(pruned)
            get_pruner(method).predict(predicted, keep)  # no masks attached
            assert not any(name.endswith("_orig") for name, _ in predicted.named_parameters())
            a, b = pruned.state_dict(), predicted.state_dict()
            assert a.keys() == b.keys()
            for key in a:
                assert torch.equal(a[key], b[key]), (method, keep, key)
                assert torch.equal(a[key].signbit(), b[key].signbit())
