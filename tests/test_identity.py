"""network_fingerprint: equal exactly when two candidates train the same network."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsemod.config import TrainConfig
from sparsemod.errors import BuildError
from sparsemod.identity import network_fingerprint
from sparsemod.problems import Problem, get_problem
from sparsemod.space import FloatParam, IntParam, SearchSpace, choice

SETTINGS = TrainConfig(problem="digits_cnn").eval_settings(1)


def fp(problem, params, settings=SETTINGS, shape=(1, 8, 8)):
    return network_fingerprint(problem, params, settings, shape, 10)


@pytest.fixture(scope="module")
def cnn():
    return get_problem("digits_cnn")


def test_unused_parameters_of_the_built_in_space_give_the_same_network(cnn):
    ref = dict(cnn.space.reference)  # two blocks, one FC layer
    assert (ref["num_blocks"], ref["num_fc"]) == (2, 1)
    same = fp(cnn, ref)
    assert fp(cnn, {**ref, "b3_filters": 8, "b3_type": "depthwise", "b3_pool": "max"}) == same
    assert fp(cnn, {**ref, "fc2_units": 9}) == same
    assert fp(cnn, ref) == same  # deterministic
    for change in (
        {"b2_filters": 8}, {"b2_pool": "avg"}, {"dropout": 0.3}, {"lr": 0.01},
        {"keep_ratio": 0.25}, {"num_blocks": 3},
    ):  # fmt: skip
        assert fp(cnn, {**ref, **change}) != same, change


def test_the_settings_that_change_the_result_change_it_and_the_epochs_do_not(cnn):
    ref = dict(cnn.space.reference)
    same = fp(cnn, ref)
    cfg = TrainConfig(problem="digits_cnn")
    assert fp(cnn, ref, cfg.eval_settings(7)) == same
    for other in (
        TrainConfig(problem="digits_cnn", prune_method="l1_structured"),
        TrainConfig(problem="digits_cnn", seed=cfg.seed + 1),
        TrainConfig(problem="digits_cnn", train_batch_size=cfg.train_batch_size * 2),
    ):
        assert fp(cnn, ref, other.eval_settings(1)) != same


class _Scaled(nn.Module):
    def __init__(self, width: int, scale: float, pool: bool) -> None:
        super().__init__()
        self.fc = nn.Linear(16, width)
        with torch.no_grad():
            self.fc.weight.mul_(scale)
        self.out = nn.Linear(width, 3)


def _build(params, input_shape, num_classes):
    # A user's builder that reads every parameter but uses "pool2" only with two layers,
    # and declares no active_if: the network tells.
    if params["width"] == 13:
        raise BuildError("13 units do not build")
    return _Scaled(params["width"], params["scale"], params["pool2"] and params["n"] == 2)


SPACE = SearchSpace(
    (
        IntParam("n", 1, 2),
        IntParam("width", 4, 16),
        FloatParam("scale", 0.5, 2.0),
        choice("pool2", [True, False]),
    )
)
USER = Problem("user", SPACE, _build, lambda seed: None)


def test_a_users_builder_is_judged_by_what_it_builds():
    p = {"n": 1, "width": 8, "scale": 1.0, "pool2": True}
    shape = (16,)
    # pool2 never reaches a module attribute or a weight: the same network
    assert fp(USER, {**p, "pool2": False}, shape=shape) == fp(USER, p, shape=shape)
    # a width is a shape; a scale is only in the initial weights: both are seen
    assert fp(USER, {**p, "width": 9}, shape=shape) != fp(USER, p, shape=shape)
    assert fp(USER, {**p, "scale": 1.5}, shape=shape) != fp(USER, p, shape=shape)
    with pytest.raises(BuildError, match="13 units"):
        fp(USER, {**p, "width": 13}, shape=shape)


def test_a_problem_study_knows_candidates_by_their_network(tmp_path, cnn):
    from sparsemod.search import problem_study
    from sparsemod.search.reporter import SilentReporter
    from sparsemod.store import Store

    cfg = TrainConfig(problem="digits_cnn", name="ident", root=str(tmp_path), r1=1, r2=1)
    data = cnn.load(0)
    study = problem_study(cfg, cnn, data, Store("sqlite://"), None, SilentReporter())
    ref = dict(cnn.space.reference)
    costs = study.costs
    assert costs.identity({**ref, "b3_filters": 7}) == costs.identity(ref)
    assert costs.identity({**ref, "b2_filters": 7}) != costs.identity(ref)
    # the pool keeps one candidate a network, and none of a network trained before
    study.state.new_trial(ref, "sobol", {})
    pool = [
        {**ref, "b3_filters": 7},  # the reference network, trained
        {**ref, "b2_filters": 7},
        {**ref, "b2_filters": 7, "fc2_units": 9},  # the one before, again
    ]
    assert costs.feasible(pool, study.state.seen) == [pool[1]]


def test_a_costed_candidate_keeps_the_fingerprint_of_the_network_its_costing_built(tmp_path, cnn):
    from sparsemod.search import problem_study
    from sparsemod.search.encoding import Encoder
    from sparsemod.search.reporter import SilentReporter
    from sparsemod.store import Store

    cfg = TrainConfig(problem="digits_cnn", name="reuse", root=str(tmp_path), r1=1, r2=1)
    data = cnn.load(0)
    study = problem_study(cfg, cnn, data, Store("sqlite://"), None, SilentReporter())
    costing = cfg.eval_settings(cfg.epochs1)
    for params in Encoder(cnn.space).sample(8, 3):
        assert study.costs.predict(params) is not None  # costed first, as the pool is
        built_once = study.costs.identity(params)
        assert built_once == network_fingerprint(cnn, params, costing, (1, 8, 8), 10)
