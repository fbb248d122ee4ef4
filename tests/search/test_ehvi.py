"""The closed-form expected hypervolume improvement and the greedy batch: against the
hypervolume computed from scratch, against Monte Carlo, against BoTorch's own posterior,
and a batch's spread."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from botorch.utils.multi_objective.box_decompositions.non_dominated import (
    FastNondominatedPartitioning,
)

from sparsemod.results.pareto import hypervolume
from sparsemod.search.acquisition import fit_error_gp, select
from sparsemod.search.ehvi import Posterior, expected_improvement, greedy_batch, split_cells

D = torch.float64


def _front(n: int, k: int, seed: int) -> torch.Tensor:
    """n points in [0, 1)^k, minimised, as objectives over a reference of 1."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, k, generator=g, dtype=D) * 0.9 + 0.05


def _cells(objs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ref = torch.full((objs.shape[-1],), -1.0, dtype=D)
    lo, hi = FastNondominatedPartitioning(ref_point=ref, Y=-objs).get_hypercell_bounds()
    return lo, hi


def _free_volume(lo: torch.Tensor, hi: torch.Tensor) -> float:
    """The volume of the cells inside [-1, 0]^k: what no point dominates there."""
    return float((hi.clamp(max=0.0) - lo).clamp(min=0).prod(-1).sum())


@pytest.mark.parametrize("k", [2, 3, 4])
def test_splitting_off_a_point_removes_exactly_its_hypervolume_improvement(k):
    objs = _front(12, k, seed=k)
    lo, hi = _cells(objs)
    assert _free_volume(lo, hi) == pytest.approx(1 - hypervolume(objs.numpy(), [1.0] * k))
    for p in _front(5, k, seed=10 + k):  # each added to the front in turn
        lo, hi = split_cells(lo, hi, -p)
        objs = torch.cat([objs, p[None]])
        expected = 1 - hypervolume(objs.numpy(), [1.0] * k)
        assert _free_volume(lo, hi) == pytest.approx(expected, abs=1e-12)


def test_with_a_known_error_the_improvement_is_the_hypervolume_gained():
    objs = _front(15, 3, seed=1)
    lo, hi = _cells(objs)
    cands = _front(30, 3, seed=2)
    got = expected_improvement(-cands[:, 0], torch.zeros(30, dtype=D), -cands[:, 1:], lo, hi)
    base = hypervolume(objs.numpy(), [1.0] * 3)
    for c, g in zip(cands, got):
        gained = hypervolume(torch.cat([objs, c[None]]).numpy(), [1.0] * 3) - base
        assert float(g) == pytest.approx(gained, abs=1e-12)
    assert (got > 0).sum() >= 5  # not a vacuous comparison of zeros


def test_with_an_uncertain_error_it_is_the_mean_improvement_over_the_error_s_law():
    objs = _front(10, 3, seed=3)
    lo, hi = _cells(objs)
    cands = _front(6, 3, seed=4)
    mean, std = -cands[:, 0], torch.full((6,), 0.15, dtype=D)
    got = expected_improvement(mean, std, -cands[:, 1:], lo, hi)
    base = hypervolume(objs.numpy(), [1.0] * 3)
    rng = np.random.default_rng(0)
    for j in range(6):
        errors = -(mean[j].item() + std[j].item() * rng.standard_normal(4000))
        gains = []
        for e in errors:
            point = np.array([[e, *cands[j, 1:].tolist()]])
            gains.append(hypervolume(np.vstack([objs.numpy(), point]), [1.0] * 3) - base)
        mc, se = np.mean(gains), np.std(gains) / np.sqrt(len(gains))
        assert float(got[j]) == pytest.approx(mc, abs=4 * se + 1e-9)


def _gp_data(n: int = 40, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, generator=g, dtype=D)
    err = 0.1 + 0.6 * x[:, 0] ** 2 + 0.02 * torch.randn(n, generator=g, dtype=D)
    return x, err


def test_the_posterior_is_botorch_s_and_believing_an_arm_shrinks_its_neighbourhood():
    x, err = _gp_data()
    gp = fit_error_gp(x, -err.unsqueeze(-1), seed=0)
    cand = torch.rand(25, 3, generator=torch.Generator().manual_seed(5), dtype=D)
    post = Posterior.of(gp, x, cand)
    theirs = gp.posterior(cand)
    assert torch.allclose(post.mean, theirs.mean.squeeze(-1), atol=1e-6)
    assert torch.allclose(post.var, theirs.variance.squeeze(-1), rtol=1e-4, atol=1e-9)
    before = post.var.clone()
    post.believe(3)
    assert float(post.var[3]) < 1e-6 * float(before[3])  # believed exactly
    assert (post.var <= before + 1e-12).all()
    # the variance of the others as a GP with that point among its trials, noise-free
    # there, says: computed from scratch with the same kernel
    with torch.no_grad():
        noise = gp.likelihood.noise.reshape(-1)[0]
        xs = torch.cat([x, cand[3:4]])
        jitter = torch.full((len(xs),), float(noise), dtype=D)
        jitter[-1] = 1e-9
        k = gp.covar_module(xs).to_dense() + torch.diag(jitter)
        ks = gp.covar_module(xs, cand).to_dense()
        prior = gp.covar_module(cand).to_dense().diagonal()
        scratch = prior - (ks * torch.linalg.solve(k, ks)).sum(0)
        scratch = scratch * gp.outcome_transform.stdvs[0] ** 2
    assert torch.allclose(post.var, scratch.clamp(min=1e-12), rtol=1e-3, atol=1e-9)


def _clustered():
    """A trade-off: x0 buys accuracy with cost, x2 buys it for free, x1 does nothing. The
    trials kept x2 below 0.5, so the front can be improved at every cost. Candidates: 20
    near-copies (x1 jittered) of one very good point, and 20 spread at x2 in [0.6, 0.85]."""
    g = torch.Generator().manual_seed(1)

    def error(x):
        return 0.6 - 0.3 * x[:, 0] - 0.2 * x[:, 2]

    def cost(x):
        return (0.2 + 0.7 * x[:, 0:1]).clone()

    x = torch.rand(60, 3, generator=g, dtype=D) * torch.tensor([1.0, 1.0, 0.5], dtype=D)
    err = error(x) + 0.01 * torch.randn(60, generator=g, dtype=D)
    copies = torch.tensor([0.05, 0.5, 1.0], dtype=D).repeat(20, 1)
    copies[:, 1] += 1e-3 * torch.rand(20, generator=g, dtype=D)
    spread = torch.rand(20, 3, generator=g, dtype=D)
    spread[:, 2] = 0.6 + 0.25 * spread[:, 2]
    cand = torch.cat([copies, spread])
    return x, err, cost(x), cand, cost(cand)


def test_a_batch_of_eight_takes_at_most_one_of_twenty_near_copies():
    x, err, costs, cand, cand_c = _clustered()
    chosen = select(x, err, costs, cand, cand_c, [1.0], q=8, seed=0)
    assert len(set(chosen)) == 8
    assert sum(i < 20 for i in chosen) <= 1, chosen
    # the copies are the eight best arms one at a time: without the batch's awareness of
    # itself they would fill it
    gp = fit_error_gp(x, -err.unsqueeze(-1), seed=0)
    post = Posterior.of(gp, x, cand)
    lo, hi = _cells(torch.cat([err[:, None], costs], -1))
    alone = expected_improvement(post.mean, post.var.sqrt(), -cand_c, lo, hi)
    assert sum(i < 20 for i in alone.argsort(descending=True)[:8].tolist()) >= 6


def test_a_pending_arm_keeps_its_copies_out_of_the_next_batch():
    x, err, costs, cand, cand_c = _clustered()
    rest = [i for i in range(40) if i not in (2, 38)]  # 38: a cheaper rival of the copies
    alone = select(x, err, costs, cand[rest], cand_c[rest], [1.0], q=1, seed=0)
    assert rest[alone[0]] < 20  # without the pending copy, a copy is the best arm
    again = select(
        x, err, costs, cand[rest], cand_c[rest], [1.0], q=3, seed=0,
        pending_x=cand[[2]], pending_costs=cand_c[[2]],
    )  # fmt: skip
    assert not any(rest[i] < 20 for i in again), again


def test_the_greedy_batch_is_deterministic_and_stops_at_the_candidates():
    x, err, costs, cand, cand_c = _clustered()
    a = select(x, err, costs, cand, cand_c, [1.0], q=6, seed=0)
    assert a == select(x, err, costs, cand, cand_c, [1.0], q=6, seed=0)
    gp = fit_error_gp(x, -err.unsqueeze(-1), seed=0)
    lo, hi = _cells(torch.cat([err[:, None], costs], -1))
    post = Posterior.of(gp, x, cand[:3])
    assert sorted(greedy_batch(post, -cand_c[:3], lo, hi, q=10)) == [0, 1, 2]


def test_the_fitting_subset_keeps_the_model_close_to_a_full_fit():
    # above FIT_MAX trials the hyperparameters come from a subset; the posterior's mean
    # must stay within a small share of the error's spread of a full fit's
    from sparsemod.search import acquisition

    x, err = _gp_data(180, seed=4)
    y = -err.unsqueeze(-1)
    full = fit_error_gp(x, y, seed=0)
    before = acquisition.FIT_MAX
    acquisition.FIT_MAX = 60
    try:
        sub = fit_error_gp(x, y, seed=0)
    finally:
        acquisition.FIT_MAX = before
    cand = torch.rand(50, 3, generator=torch.Generator().manual_seed(9), dtype=D)
    a = full.posterior(cand).mean.squeeze(-1)
    b = sub.posterior(cand).mean.squeeze(-1)
    assert float((a - b).abs().max()) < 0.1 * float(err.std())
