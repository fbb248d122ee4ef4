"""Batches of any size by expected hypervolume improvement with exact costs, in closed form.

Only the error is uncertain: the costs of a candidate are known before training. So the
expected hypervolume improvement of one candidate is exact and needs no Monte Carlo: over
the cells of the region no observed point dominates, the cost dimensions give a plain
volume and the error dimension the expectation of a clipped normal,
``sigma * (psi(w_lo) - psi(w_hi))`` with ``psi(w) = w Phi(w) + phi(w)``.

A batch of ``q`` is chosen greedily, each arm against the ones chosen before it (and the
arms still training: ``pending``) as if their errors were already measured at the GP's
mean (the Kriging believer): each such arm joins the front, its cells are split off, and
the GP's variance shrinks around it, to zero at it (a rank-one update with the fitted
hyperparameters).
The cost of a batch is linear in ``q``; a near-copy of a chosen arm gains almost nothing,
so the batch spreads. qLogEHVI's joint batch instead integrates over every subset of the
batch, exponential in ``q``: 20-80 s a round of 8 arms at 64-110 trials (issue 19).

All values here are in BoTorch's maximisation form: ``-objective / reference``, so the
reference point is -1 in every dimension and a better point is larger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sparsemod.results import pareto

_CHUNK = 512  # candidates per slice of the (candidates x cells) products
_NOISE_FLOOR = 1e-9


def split_cells(lo: torch.Tensor, hi: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The cells ``[lo, hi]`` (maximisation form) less the region the point ``p``
    dominates (``y <= p``): :func:`sparsemod.results.pareto.split_cells`, mirrored."""
    new_lo, new_hi = pareto.split_cells(-hi.numpy(), -lo.numpy(), -p.numpy())
    return torch.from_numpy(-new_hi), torch.from_numpy(-new_lo)


def _psi(w: torch.Tensor) -> torch.Tensor:
    """The antiderivative of the standard normal CDF: ``w Phi(w) + phi(w)`` (0 at -inf)."""
    normal = torch.distributions.Normal(0.0, 1.0)
    finite = torch.where(torch.isfinite(w), w, torch.zeros_like(w))
    out = finite * normal.cdf(finite) + normal.log_prob(finite).exp()
    return torch.where(w == -math.inf, torch.zeros_like(w), out)


def expected_improvement(
    mean: torch.Tensor,
    std: torch.Tensor,
    costs: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
) -> torch.Tensor:
    """Expected hypervolume improvement of each candidate over the cells ``[lo, hi]``.

    Args:
        mean, std: (m,) the error's posterior in maximisation form.
        costs: (m, k) the exact costs in maximisation form.
        lo, hi: (B, 1 + k) the cells of the non-dominated region, error first.

    Returns:
        (m,) the expected improvement (exact: no sampling).
    """
    out = torch.zeros(len(mean), dtype=mean.dtype)
    if len(lo) == 0:
        return out
    for s in range(0, len(mean), _CHUNK):
        c = costs[s : s + _CHUNK, None, :]  # (c, 1, k)
        volume = (torch.minimum(hi[None, :, 1:], c) - lo[None, :, 1:]).clamp(min=0).prod(-1)
        mu, sd = mean[s : s + _CHUNK, None], std[s : s + _CHUNK, None].clamp(min=1e-12)
        w_lo = (mu - lo[None, :, 0]) / sd
        w_hi = (mu - hi[None, :, 0]) / sd
        error_part = sd * (_psi(w_lo) - _psi(w_hi))
        out[s : s + _CHUNK] = (volume * error_part.clamp(min=0)).sum(-1)
    return out


@dataclass
class Posterior:
    """A fitted GP's posterior over the candidates, updated as fantasised arms are added.

    ``mean`` and ``var`` are the error's, in maximisation form, for each candidate.
    """

    mean: torch.Tensor
    var: torch.Tensor
    _k_cand: torch.Tensor  # (n, m) K(train, cand) solved: L^-1 K(train, cand)
    _cand_x: torch.Tensor
    _gp: object
    _scale: float
    _updates: list[tuple[torch.Tensor, torch.Tensor]]  # (column over candidates, var + noise)

    @classmethod
    def of(cls, gp: object, train_x: torch.Tensor, cand_x: torch.Tensor) -> Posterior:
        """The posterior of ``gp`` (a fitted SingleTaskGP with a Standardize transform)."""
        with torch.no_grad():
            noise = gp.likelihood.noise.reshape(-1)[0]
            k_nn = gp.covar_module(train_x).to_dense()
            chol = torch.linalg.cholesky(k_nn + (noise + _NOISE_FLOOR) * torch.eye(len(train_x)))
            k_nm = gp.covar_module(train_x, cand_x).to_dense()
            solved = torch.linalg.solve_triangular(chol, k_nm, upper=False)
            y = gp.train_targets  # standardised
            mean0 = gp.mean_module(train_x)
            alpha = torch.cholesky_solve((y - mean0).unsqueeze(-1), chol).squeeze(-1)
            mean = gp.mean_module(cand_x) + k_nm.T @ alpha
            prior = gp.covar_module(cand_x[:1]).to_dense()[0, 0]  # stationary: one value
            var = (prior - (solved**2).sum(0)).clamp(min=1e-12)
            tf = gp.outcome_transform
            scale = float(tf.stdvs.reshape(-1)[0])
            mean = tf.means.reshape(-1)[0] + scale * mean
        return cls(mean, var * scale**2, solved, cand_x, gp, scale, [])

    def believe(self, j: int) -> None:
        """Condition on candidate ``j``'s error being its mean, exactly: the mean stays,
        the variance around ``j`` shrinks, to zero at ``j`` (a rank-one update with the
        fitted hyperparameters)."""
        gp = self._gp
        with torch.no_grad():
            x = self._cand_x[j : j + 1]
            column = gp.covar_module(self._cand_x, x).to_dense()[:, 0]
            column = column - self._k_cand.T @ self._k_cand[:, j]
            column = column * self._scale**2
            for u, denom in self._updates:
                column = column - u * u[j] / denom
            # believed exactly (no noise): a copy of a believed arm has nothing left to
            # tell, the batch moves on
            denom = self.var[j] * (1 + 1e-6) + 1e-30
            self.var = (self.var - column**2 / denom).clamp(min=1e-12)
            self._updates.append((column, denom))


def greedy_batch(
    posterior: Posterior,
    cand_costs: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    q: int,
    pending: list[int] | None = None,
) -> list[int]:
    """``q`` candidates by expected hypervolume improvement, each chosen against the ones
    before it and the ``pending`` ones (indices into the candidates) believed at their mean.

    When no candidate's improvement is above zero (underflow far from the front), they
    are ranked by the improvement at an optimistic error (two standard deviations better),
    and when that is zero too, by their standard deviation.
    """
    chosen: list[int] = []
    taken = torch.zeros(len(cand_costs), dtype=torch.bool)

    def add(j: int) -> None:
        nonlocal lo, hi
        taken[j] = True
        point = torch.cat([posterior.mean[j : j + 1], cand_costs[j]])
        lo, hi = split_cells(lo, hi, point)
        posterior.believe(j)

    for j in pending or []:
        add(j)
    while len(chosen) < q and not bool(taken.all()):
        std = posterior.var.sqrt()
        score = expected_improvement(posterior.mean, std, cand_costs, lo, hi)
        score[taken] = -1.0
        if float(score.max()) <= 0.0:  # underflow far from the front: be optimistic
            score = expected_improvement(
                posterior.mean + 2 * std, torch.zeros_like(std), cand_costs, lo, hi
            )
            score[taken] = -1.0
        if float(score.max()) <= 0.0:  # nothing improves even so: explore
            score = torch.where(taken, -1.0, std)
        j = int(score.argmax())
        chosen.append(j)
        add(j)
    return chosen
