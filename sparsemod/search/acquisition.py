"""Choosing the next arms from a candidate set with BoTorch: a GP for the error only.

The costs of a candidate (size, working memory, latency) are exact functions of its
parameters, computed before training. So the model is a ``ModelList`` of a
``SingleTaskGP`` for the error and a ``GenericDeterministicModel`` that looks the exact
costs up. A small round (one or two arms, a small front, a few hundred trials) is
qLogEHVI's joint batch over all objectives, picked by ``optimize_acqf_discrete``; any other
is the closed-form greedy batch of :mod:`~sparsemod.search.ehvi`, linear in the batch. The
GP's hyperparameters are fitted on at most :data:`FIT_MAX` trials. Nothing here knows
about Ax.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import gpytorch
import torch
from botorch.acquisition.multi_objective import logei
from botorch.acquisition.multi_objective.logei import qLogExpectedHypervolumeImprovement
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.deterministic import GenericDeterministicModel
from botorch.models.model import ModelList
from botorch.models.transforms.outcome import Standardize
from botorch.optim.optimize import optimize_acqf_discrete
from botorch.sampling.index_sampler import IndexSampler
from botorch.sampling.list_sampler import ListSampler
from botorch.sampling.normal import SobolQMCNormalSampler
from botorch.utils.multi_objective.box_decompositions.non_dominated import (
    FastNondominatedPartitioning,
)
from gpytorch.mlls import ExactMarginalLogLikelihood

from sparsemod.search.ehvi import Posterior, greedy_batch

# botorch 0.18 builds qLogEHVI's fused C++ kernel with torch.utils.cpp_extension (-O3
# -march=native) the first time one is constructed, into ~/.cache/torch_extensions: 30-90 s
# on two cores inside the first GP round after install, again each time another venv on the
# machine has rebuilt it there (the include paths differ), and a hang forever if a killed
# build left its lock file. Its pure-PyTorch path picks the same arms, 0.2-2 s slower a round
# here. Marking the load as already tried keeps botorch on that path, for the Ax generator too.
logei._load_attempted = True


JOINT_MAX_Q = 2  # arms (with the pending ones) up to which the joint qLogEHVI chooses
# ... when its tensors stay small: candidates x cells x samples. Four objectives and a
# front of 40 gave 11 GB and 108 s for a round of 2 at 100 trials (bench/scale.py).
JOINT_MAX_SIZE = 2_000_000
JOINT_MAX_TRIALS = 200  # ... and the GP's posterior stays small: 36 s a round at 1,000
FIT_MAX = 400  # trials the GP's hyperparameters are fitted on (the posterior uses all)


def fit_error_gp(train_x: torch.Tensor, y: torch.Tensor, seed: int) -> SingleTaskGP:
    """A GP of the error, its hyperparameters fitted on at most :data:`FIT_MAX` trials.

    The exact marginal likelihood over n trials costs O(n^3) an iteration: at 1,000 trials
    a fit took (measured in bench/scale.py) several seconds. The hyperparameters (length
    scales, noise) settle long before that, so they are fitted on the best FIT_MAX / 4
    trials and a seeded random draw of the rest; the model then conditions on every trial.
    """
    dtype = torch.float64
    with warnings.catch_warnings(), gpytorch.settings.max_cholesky_size(100_000):
        warnings.simplefilter("ignore")  # input-scaling hints: the inputs are in [0, 1]
        if len(train_x) <= FIT_MAX:
            gp = SingleTaskGP(train_x, y, outcome_transform=Standardize(m=1))
            fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
            return gp
        best = torch.argsort(y[:, 0], descending=True)[: FIT_MAX // 4]
        rest = torch.ones(len(y), dtype=torch.bool)
        rest[best] = False
        others = torch.nonzero(rest).squeeze(-1)
        g = torch.Generator().manual_seed(seed)
        draw = others[torch.randperm(len(others), generator=g)[: FIT_MAX - len(best)]]
        sub = torch.cat([best, draw])
        small = SingleTaskGP(train_x[sub], y[sub], outcome_transform=Standardize(m=1))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(small.likelihood, small))
        gp = SingleTaskGP(train_x, y, outcome_transform=Standardize(m=1))
        fitted = {
            k: v for k, v in small.state_dict().items() if not k.startswith("outcome_transform")
        }
        gp.load_state_dict(fitted, strict=False)
        gp.eval()
    return gp.to(dtype)


def select(
    train_x: torch.Tensor,
    train_error: torch.Tensor,
    train_costs: torch.Tensor,
    cand_x: torch.Tensor,
    cand_costs: torch.Tensor,
    ref_point: Sequence[float],
    q: int,
    seed: int,
    mc_samples: int = 64,
    pending_x: torch.Tensor | None = None,
    pending_costs: torch.Tensor | None = None,
) -> list[int]:
    """Indices of the ``q`` candidates with the best joint hypervolume improvement.

    Up to :data:`JOINT_MAX_Q` arms (counting the pending ones), while its tensors stay
    under :data:`JOINT_MAX_SIZE` and there are at most :data:`JOINT_MAX_TRIALS` trials,
    the batch is qLogEHVI's joint one; beyond, it is the
    greedy closed-form batch of :mod:`~sparsemod.search.ehvi` (linear in ``q``; qLogEHVI's
    joint batch is exponential in it, and its memory grows with the front's cells).

    Args:
        train_x: (n, d) encoded parameters of the completed trials.
        train_error: (n,) their measured error.
        train_costs: (n, k) their measured costs, scaled so the reference point is 1
            (divided by it, or on the search's log scale).
        cand_x: (m, d) encoded candidates.
        cand_costs: (m, k) their exact predicted costs, scaled the same way.
        ref_point: the error's reference value (costs are normalised to 1).
        q: arms to choose (fewer when there are fewer candidates).
        seed: seeds the quasi-Monte-Carlo sampler and the GP's fitting subset.
        mc_samples: quasi-Monte-Carlo samples of the joint acquisition.
        pending_x, pending_costs: arms asked and not yet told (still training): the batch
            is chosen as if their errors were known, at the GP's mean.

    Returns:
        Indices into ``cand_x``, in the order chosen.
    """
    q = min(q, len(cand_x))
    if q == 0:
        return []
    dtype = torch.float64
    train_x, cand_x = train_x.to(dtype), cand_x.to(dtype)
    if pending_x is None or len(pending_x) == 0:
        pending_x = torch.zeros(0, train_x.shape[-1], dtype=dtype)
        pending_costs = torch.zeros(0, train_costs.shape[-1], dtype=dtype)
    pending_x = pending_x.to(dtype)
    y = (-train_error.to(dtype) / ref_point[0]).unsqueeze(-1)
    gp = fit_error_gp(train_x, y, seed)
    if train_costs.shape[-1] == 0:
        return _single_objective(gp, train_x, cand_x, q, seed, mc_samples, pending_x)
    observed = torch.cat([y, -train_costs.to(dtype)], dim=-1)
    ref = torch.full((observed.shape[-1],), -1.0, dtype=dtype)
    partitioning = FastNondominatedPartitioning(ref_point=ref, Y=observed)
    lo, hi = partitioning.get_hypercell_bounds()
    joint_size = len(cand_x) * len(lo) * mc_samples * (2 ** (q + len(pending_x)) - 1)
    if (
        q + len(pending_x) > JOINT_MAX_Q
        or joint_size > JOINT_MAX_SIZE
        or len(train_x) > JOINT_MAX_TRIALS
    ):
        all_x = torch.cat([cand_x, pending_x])
        all_c = -torch.cat([cand_costs.to(dtype), pending_costs.to(dtype)])
        with gpytorch.settings.max_cholesky_size(100_000):
            posterior = Posterior.of(gp, train_x, all_x)
        pending = list(range(len(cand_x), len(all_x)))
        return greedy_batch(posterior, all_c, lo, hi, q, pending)
    table_x = torch.cat([train_x, cand_x, pending_x])
    table_c = -torch.cat([train_costs.to(dtype), cand_costs.to(dtype), pending_costs.to(dtype)])

    def lookup(x: torch.Tensor) -> torch.Tensor:
        # Every point the acquisition asks about is a trial or a candidate: look its exact
        # costs up (nearest row, distance 0) instead of modelling them.
        flat = x.reshape(-1, x.shape[-1])
        idx = torch.cdist(flat, table_x).argmin(dim=-1)
        return table_c[idx].reshape(*x.shape[:-1], table_c.shape[-1])

    costs_model = GenericDeterministicModel(lookup, num_outputs=table_c.shape[-1])
    model = ModelList(gp, costs_model)
    # Every objective is scaled so that its reference value is 1 (the error by ref_point[0]
    # above, the costs by the caller): the reference is -1 in each.
    shape = torch.Size([mc_samples])
    # The deterministic costs give the same value for every sample: an index sampler.
    sampler = ListSampler(SobolQMCNormalSampler(shape, seed=seed), IndexSampler(shape, seed=seed))
    # The front to improve on: the observed trials (the error as measured; costs exact).
    # NEHVI would redo this box decomposition for every MC sample and every pending arm,
    # which took 9 of 11 s for a q=2 round here; the error is measured with little noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        acq = qLogExpectedHypervolumeImprovement(
            model=model, ref_point=ref, partitioning=partitioning, sampler=sampler,
            X_pending=pending_x if len(pending_x) else None,
        )  # fmt: skip
        chosen, _ = optimize_acqf_discrete(acq, q=q, choices=cand_x, unique=True)
    return torch.cdist(chosen, cand_x).argmin(dim=-1).tolist()


def _single_objective(
    gp: SingleTaskGP,
    train_x: torch.Tensor,
    cand_x: torch.Tensor,
    q: int,
    seed: int,
    mc_samples: int,
    pending_x: torch.Tensor,
) -> list[int]:
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement

    sampler = SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples]), seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        acq = qLogNoisyExpectedImprovement(
            gp, X_baseline=train_x, sampler=sampler, prune_baseline=True,
            X_pending=pending_x if len(pending_x) else None,
        )  # fmt: skip
        chosen, _ = optimize_acqf_discrete(acq, q=q, choices=cand_x, unique=True)
    return torch.cdist(chosen, cand_x).argmin(dim=-1).tolist()
