"""Choosing arms: a GP for the error, exact costs, joint batches."""

from __future__ import annotations

import torch

from sparsemod.search.acquisition import select


def _data():
    # one input dimension carries the error: error = x0; costs are given exactly
    g = torch.Generator().manual_seed(0)
    train_x = torch.rand(12, 3, generator=g, dtype=torch.float64)
    train_err = train_x[:, 0].clone()
    train_c = torch.full((12, 1), 0.5, dtype=torch.float64)
    return train_x, train_err, train_c


def test_equal_costs_pick_the_lowest_predicted_error():
    train_x, train_err, train_c = _data()
    cand_x = torch.tensor([[0.9, 0.5, 0.5], [0.02, 0.5, 0.5], [0.6, 0.5, 0.5]], dtype=torch.float64)
    cand_c = torch.full((3, 1), 0.5, dtype=torch.float64)
    assert select(train_x, train_err, train_c, cand_x, cand_c, [1.0], q=1, seed=0) == [1]


def test_exact_costs_decide_between_equal_errors():
    train_x, train_err, train_c = _data()
    # the same predicted error (same x), but one is ten times cheaper than anything seen
    cand_x = torch.tensor([[0.3, 0.5, 0.5], [0.3, 0.5, 0.5 + 1e-9]], dtype=torch.float64)
    cand_c = torch.tensor([[0.9], [0.05]], dtype=torch.float64)
    assert select(train_x, train_err, train_c, cand_x, cand_c, [1.0], q=1, seed=0) == [1]


def test_a_batch_is_distinct_and_deterministic():
    train_x, train_err, train_c = _data()
    g = torch.Generator().manual_seed(1)
    cand_x = torch.rand(40, 3, generator=g, dtype=torch.float64)
    cand_c = torch.rand(40, 1, generator=g, dtype=torch.float64)
    a = select(train_x, train_err, train_c, cand_x, cand_c, [1.0], q=3, seed=0)
    assert len(set(a)) == 3
    assert a == select(train_x, train_err, train_c, cand_x, cand_c, [1.0], q=3, seed=0)
    # more arms asked than candidates: all of them, once
    assert sorted(
        select(train_x, train_err, train_c, cand_x[:2], cand_c[:2], [1.0], q=5, seed=0)
    ) == [0, 1]


def test_error_only_search_uses_single_objective_improvement():
    train_x, train_err, _ = _data()
    cand_x = torch.tensor([[0.8, 0.1, 0.1], [0.05, 0.9, 0.9]], dtype=torch.float64)
    none = torch.zeros((12, 0), dtype=torch.float64)
    assert select(
        train_x,
        train_err,
        none,
        cand_x,
        torch.zeros((2, 0), dtype=torch.float64),
        [1.0],
        q=1,
        seed=0,
    ) == [1]


def test_the_error_reference_is_scaled_like_the_error():
    # One problem written in two scalings: errors in [0, 0.5) against a reference of 0.5,
    # and the same errors doubled against 1. The arms chosen must be the same, and the
    # cheap candidate whose error (0.35) beats the reference (0.5) must count: it opens
    # far more hypervolume than shaving the error at the cost everything else has.
    train_x, x0, train_c = _data()
    cand_x = torch.tensor([[0.7, 0.5, 0.5], [0.03, 0.5, 0.5]], dtype=torch.float64)
    cand_c = torch.tensor([[0.05], [0.5]], dtype=torch.float64)
    half = select(train_x, 0.5 * x0, train_c, cand_x, cand_c, [0.5], q=1, seed=0)
    whole = select(train_x, x0, train_c, cand_x, cand_c, [1.0], q=1, seed=0)
    assert half == whole == [0]
