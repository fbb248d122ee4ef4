"""Iterative magnitude pruning with rewinding: exact counts, rewound survivors, tickets."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsemod import objectives
from sparsemod.compress import PruneContext, apply_masks, make_permanent, masks_of
from sparsemod.compress.context import state_copy
from sparsemod.compress.lottery import LotteryTicket, prune_round, rewind
from sparsemod.compress.masks import count_weights
from sparsemod.data import load_digits
from sparsemod.evaluate import EvalSettings, evaluate, load_model
from sparsemod.problems import get_problem
from sparsemod.train import TrainSettings, accuracy, seeded, train

X = torch.zeros(1, 1, 8, 8)


def _mlp(seed: int = 0) -> nn.Module:
    with seeded(seed):
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


@pytest.fixture(scope="module")
def digits():
    return load_digits(0)


def test_a_round_keeps_the_largest_survivors_and_rewinds_them_to_init(digits):
    m = _mlp()
    init = state_copy(m)
    train(m, digits, TrainSettings(epochs=1, lr=1e-2, device="cpu"))
    trained = {k: v.clone() for k, v in m.state_dict().items()}
    masks = prune_round(m, 1000)
    assert sum(int(v.sum()) for v in masks.values()) == 1000
    w = torch.cat([trained["1.weight"].abs().flatten(), trained["3.weight"].abs().flatten()])
    kept = torch.cat([masks["1.weight"].flatten(), masks["3.weight"].flatten()])
    assert w[kept].min() >= w[~kept].max()
    rewind(m, init, masks)
    make_permanent(m)
    for key in ("1.weight", "3.weight"):
        assert torch.equal(m.state_dict()[key], init[key] * masks[key])
    assert torch.equal(m.state_dict()["1.bias"], init["1.bias"])
    # a second round only prunes among the survivors
    apply_masks(m, masks)
    second = prune_round(m, 500)
    for key in masks:
        assert not bool((second[key] & ~masks[key]).any())


def test_imp_reaches_the_keep_ratio_exactly_and_pruned_weights_stay_zero(digits):
    m = _mlp()
    context = PruneContext(
        digits,
        TrainSettings(epochs=2, lr=1e-2, device="cpu"),
        state_copy(m),
        LotteryTicket.Options(imp_rate=0.5),
    )
    train(m, digits, context.settings)
    dense = objectives.measure_all(m.eval(), X, 1e8)
    steps = LotteryTicket().run(m, 0.2, context)
    # 2368 weights: 1184 -> 592 -> 474 (= round(0.2 * 2368)), each round prune, rewind, retrain
    assert [s.stage for s in steps] == [
        f"{kind}:imp-{r}" for r in (1, 2, 3) for kind in ("prune", "rewind", "retrain", "retrain")
    ]
    assert [s.weights_kept for s in steps if s.stage.startswith("prune")] == [1184, 592, 474]
    assert all(s.val_accuracy is not None for s in steps)
    zeros = {k: ~v for k, v in masks_of(m).items()}
    train(m, digits, TrainSettings(epochs=1, lr=1e-2, device="cpu"))  # masks are held
    make_permanent(m)
    assert count_weights(m) == (2368, 474)
    for key, z in zeros.items():
        assert not bool(m.state_dict()[key][z].any())
    # unstructured: only the size falls
    sparse = objectives.measure_all(m.eval(), X, 1e8)
    assert sparse["model_size_bytes"] < dense["model_size_bytes"]
    assert sparse["flops"] == dense["flops"]
    assert sparse["working_memory_bytes"] == dense["working_memory_bytes"]


def test_late_rewinding_gives_the_weights_of_that_epoch_bit_for_bit(digits):
    m = _mlp()
    settings = TrainSettings(epochs=3, lr=1e-2, device="cpu", seed=3)
    context = PruneContext(digits, settings, state_copy(m))
    # the state after epoch 1 of a 3-epoch training, caught by counting optimizer steps
    caught: dict[str, torch.Tensor] = {}
    steps = [0]

    def after_step(model: nn.Module) -> None:
        steps[0] += 1
        if steps[0] == context.steps_per_epoch():
            caught.update(state_copy(model))

    train(m, digits, settings, after_step=after_step)
    assert steps[0] == 3 * context.steps_per_epoch() == 3 * 20
    at_1 = context.state_at(m, 1)
    assert all(torch.equal(at_1[k], caught[k]) for k in caught)
    assert all(torch.equal(context.state_at(m, 0)[k], context.initial_state[k]) for k in caught)


def _masks_of_deployed(result, problem) -> dict[str, torch.Tensor]:
    return masks_of(load_model(result.model, problem))


@pytest.mark.slow
def test_tickets_at_20_percent_match_dense_and_beat_random_reinit_over_3_seeds():
    problem = get_problem("digits_mlp")
    params = dict(problem.space.reference, keep_ratio=0.2, dropout=0.0)
    dense_acc, ticket_acc, reinit_acc = [], [], []
    for seed in (0, 1, 2):
        data = problem.load(seed)
        base = dict(
            epochs=10,
            quant_scheme="none",
            runtime="ideal",
            score_test=True,
            device="cpu",
            seed=seed,
        )
        dense = evaluate(problem, params, EvalSettings(pruning=False, **base), data)
        ticket = evaluate(problem, params, EvalSettings(prune_method="imp", **base), data)
        assert dense.ok and ticket.ok, ticket.failure_reason
        assert ticket.sparsity == pytest.approx(0.8, abs=1e-4)
        rounds = [h for h in ticket.history if h["stage"].startswith("prune:imp")]
        assert len(rounds) == 8  # 20 % a round: 0.8 ** 7 = 0.21, the 8th lands on 0.2
        # the control: the same masks on a fresh random initialisation, trained the same
        masks = _masks_of_deployed(ticket, problem)
        with seeded(seed + 100):
            control = problem.build(params, data.input_shape, data.num_classes)
        apply_masks(control, masks)
        train(control, data, TrainSettings(10, lr=params["lr"], device="cpu", seed=seed))
        dense_acc.append(dense.accuracy_test)
        ticket_acc.append(ticket.accuracy_test)
        reinit_acc.append(accuracy(control, data.test))
    mean = [sum(a) / 3 for a in (dense_acc, ticket_acc, reinit_acc)]
    assert mean[1] >= mean[0] - 0.02, (dense_acc, ticket_acc)
    assert mean[2] < mean[1], (ticket_acc, reinit_acc)
