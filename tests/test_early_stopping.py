"""Early stopping on the front: the error to beat by hand, the learning-curve prediction,
the stopper's rule, and the evaluator stopping real training (digits) when, and only when,
the candidate cannot join the front."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from sparsemod.early_stopping import (
    SPREAD,
    EarlyStop,
    FrontStopper,
    StopTraining,
    chance_below,
    error_to_beat,
    predict_final,
)
from sparsemod.evaluate import COMPLETED, EvalSettings, evaluate
from sparsemod.problems import get_problem

REF = {"error": 1.0, "model_size_bytes": 10_000.0, "working_memory_bytes": 4_000.0}
FRONT = [
    {"error": 0.30, "model_size_bytes": 1_000.0, "working_memory_bytes": 500.0},
    {"error": 0.10, "model_size_bytes": 5_000.0, "working_memory_bytes": 2_000.0},
    {"error": 0.05, "model_size_bytes": 8_000.0, "working_memory_bytes": 3_500.0},
]


@pytest.mark.parametrize(
    ("size", "memory", "bar"),
    [
        (6_000, 2_500, 0.10),  # costs more than the first two: must beat the lower, 0.10
        (900, 3_900, 1.00),  # smaller than every member: any error under the reference
        (5_000, 2_000, 0.10),  # ties in cost count as costing no more
        (9_000, 1_000, 0.30),  # only the first costs no more in both
        (9_999, 3_999, 0.05),
        (10_000, 100, 0.0),  # at the reference size: it adds nothing whatever its error
    ],
)
def test_the_error_to_beat_by_hand(size, memory, bar) -> None:
    costs = {"model_size_bytes": size, "working_memory_bytes": memory}
    assert error_to_beat(costs, FRONT, REF) == bar


def test_the_error_alone_must_beat_the_best() -> None:
    assert error_to_beat({}, [{"error": 0.2}, {"error": 0.07}], {"error": 1.0}) == 0.07
    assert error_to_beat({}, [], {"error": 0.8}) == 0.8


def test_the_power_law_fit_by_hand() -> None:
    # e(t) = 0.4 / t exactly: the fit finds it, and the final error at 10 epochs is 0.04;
    # the log-spread is the binomial noise of the best error seen (0.2 on 400 samples,
    # relative) and SPREAD times the log improvement still expected (0.2 -> 0.04).
    errors = [0.4 / t for t in (1, 2)]
    error, sd = predict_final(errors, 10, 400)
    assert error == pytest.approx(0.04)
    noise = math.sqrt(0.2 * 0.8 / 400) / 0.2
    assert sd == pytest.approx(math.sqrt(noise**2 + (SPREAD * math.log(5)) ** 2))
    # never above the best seen, and a rising curve is read as flat
    error, _ = predict_final([0.30, 0.32, 0.31], 10, 400)
    assert error == pytest.approx(0.30)


def test_one_epoch_says_little() -> None:
    error, sd = predict_final([0.4], 10, 400)
    assert error == 0.4 and sd == 1.0


def test_chance_below() -> None:
    assert chance_below(0.2, 0.5, 0.2) == pytest.approx(0.5)
    assert chance_below(0.2, 0.5, 0.2 * math.exp(-1.0)) == pytest.approx(0.02275, abs=1e-5)
    assert chance_below(0.2, 0.0, 0.3) == 1.0 and chance_below(0.2, 0.0, 0.1) == 0.0
    assert chance_below(0.2, 5.0, 0.0) == 0.0  # no error is below 0


def test_the_stopper_checks_from_min_epochs_to_the_last_but_one() -> None:
    stopper = FrontStopper(EarlyStop(0.0, min_epochs=3, confidence=0.95), 300, 10)
    for epoch in (1, 2):
        stopper.epoch("train", epoch, 10, 0.5)  # before min_epochs: no check
    with pytest.raises(StopTraining) as stop:
        stopper.epoch("train", 3, 10, 0.5)
    assert (stop.value.stage, stop.value.epoch, stop.value.val_error) == ("train", 3, 0.5)
    assert stop.value.chance < 0.05
    last = FrontStopper(EarlyStop(0.0, min_epochs=1), 300, 10)
    last.epoch("train", 1, 1, 0.5)  # the last epoch: stopping saves nothing


def test_a_curve_near_chance_is_not_judged() -> None:
    stopper = FrontStopper(EarlyStop(0.0, min_epochs=1), 300, 10)
    stopper.epoch("train", 1, 10, 0.15)  # error 0.85 > 0.9 * 0.9: still guessing
    stopper.epoch("train", 2, 10, 0.18)
    with pytest.raises(StopTraining):
        stopper.epoch("train", 3, 10, 0.25)  # learning now, and 0 cannot be beaten


def test_a_new_stage_starts_a_new_curve() -> None:
    stopper = FrontStopper(EarlyStop(0.2, min_epochs=2), 300, 10)
    stopper.epoch("retrain", 1, 5, 0.50)
    stopper.epoch("retrain", 2, 5, 0.95)  # fast: 0.05 error predicted below 0.2
    stopper.epoch("retrain", 1, 5, 0.90)  # imp's next round begins again at epoch 1
    assert stopper.curves["retrain"] == [pytest.approx(0.1)]


# ---------------------------------------------------------------------- real training


@pytest.fixture(scope="module")
def mlp():
    problem = get_problem("digits_mlp")
    return problem, problem.load(0)


PARAMS = {"num_layers": 1, "units1": 64, "units2": 32, "units3": 32, "activation": "relu",
          "dropout": 0.0, "lr": 0.003, "keep_ratio": 1.0}  # fmt: skip
EPOCHS = 8


def _settings(**changes) -> EvalSettings:
    return replace(EvalSettings(epochs=EPOCHS, device="cpu", keep_model=False), **changes)


def test_a_candidate_that_cannot_reach_the_front_is_stopped_and_one_that_can_is_not(mlp):
    problem, data = mlp
    full = evaluate(problem, PARAMS, _settings(), data)
    assert full.status == COMPLETED and full.error < 0.1
    # A slow learner (a tiny learning rate, 16 units) ends near 0.67 error: against a front
    # that needs 0.2 at its costs it is stopped once it learns at all (epochs 1-2 are near
    # chance and not judged), with what it had and what it would have reached.
    slow = dict(PARAMS, lr=0.0002, units1=16)
    stopped = evaluate(problem, slow, _settings(early_stop=EarlyStop(0.2)), data)
    assert stopped.status == "stopped" and stopped.stop_epoch == 3, stopped
    train_rows = [h for h in stopped.history if h["stage"] == "train"]
    assert len(train_rows) == 3 and stopped.history[-1]["stage"] == "stopped"
    assert stopped.stop_val_error == pytest.approx(1 - train_rows[-1]["val_accuracy"])
    assert 0.2 < stopped.predicted_error <= stopped.stop_val_error
    assert stopped.error is None and stopped.model_size_bytes is None
    assert evaluate(problem, slow, _settings(), data).error > 0.5  # it was hopeless
    # The good network, asked to beat a quarter of the error it reaches: stopped at the
    # first check (min_epochs = 2).
    quarter = evaluate(problem, PARAMS, _settings(early_stop=EarlyStop(full.error / 4)), data)
    assert quarter.status == "stopped" and quarter.stop_epoch == 2
    # Asked to beat an error it does reach: it trains every epoch and gives the same network
    # as without early stopping.
    reachable = EarlyStop(full.error + 0.02, min_epochs=2, confidence=0.95)
    kept = evaluate(problem, PARAMS, _settings(early_stop=reachable), data)
    assert kept.status == COMPLETED
    assert kept.error == full.error and kept.model_size_bytes == full.model_size_bytes
    assert list(kept.history) == list(full.history)


@pytest.mark.parametrize("method", ["imp", "snip"])
def test_methods_that_train_in_stages_stop_between_epochs(mlp, method) -> None:
    problem, data = mlp
    params = dict(PARAMS, keep_ratio=0.5)
    rule = EarlyStop(0.0, min_epochs=2)  # nothing can beat 0: stopped at the first check
    settings = _settings(prune_method=method, early_stop=rule, keep_ratio=0.5, epochs=4)
    result = evaluate(problem, params, settings, data)
    assert result.status == "stopped" and result.stop_epoch == 2, result
    assert result.history[-1]["during"] in ("train", "retrain", "prune", "finetune")
