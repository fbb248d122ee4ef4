"""Choosing the next arms from a candidate set with BoTorch: a GP for the error only.

The costs of a candidate (size, working memory, latency) are exact functions of its
parameters, computed before training. So the model is a ``ModelList`` of a
``SingleTaskGP`` for the error and a ``GenericDeterministicModel`` that looks the exact
costs up; the acquisition is qLogEHVI over all objectives; and ``optimize_acqf_discrete``
picks a joint batch of ``q`` arms (sequential greedy with fantasies) from the candidates.
Nothing here knows about Ax.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

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

# botorch 0.18 builds qLogEHVI's fused C++ kernel with torch.utils.cpp_extension (-O3
# -march=native) the first time one is constructed, into ~/.cache/torch_extensions: 30-90 s
# on two cores inside the first GP round after install, again each time another venv on the
# machine has rebuilt it there (the include paths differ), and a hang forever if a killed
# build left its lock file. Its pure-PyTorch path picks the same arms, 0.2-2 s slower a round
# here. Marking the load as already tried keeps botorch on that path, for the Ax generator too.
logei._load_attempted = True


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
) -> list[int]:
    """Indices of the ``q`` candidates with the best joint hypervolume improvement.

    Args:
        train_x: (n, d) encoded parameters of the completed trials.
        train_error: (n,) their measured error.
        train_costs: (n, k) their measured costs, scaled so the reference point is 1
            (divided by it, or on the search's log scale).
        cand_x: (m, d) encoded candidates.
        cand_costs: (m, k) their exact predicted costs, scaled the same way.
        ref_point: the error's reference value (costs are normalised to 1).
        q: arms to choose (fewer when there are fewer candidates).
        seed: seeds the quasi-Monte-Carlo sampler.
        mc_samples: quasi-Monte-Carlo samples of the acquisition.

    Returns:
        Indices into ``cand_x``, in the order chosen.
    """
    q = min(q, len(cand_x))
    if q == 0:
        return []
    dtype = torch.float64
    train_x, cand_x = train_x.to(dtype), cand_x.to(dtype)
    y = (-train_error.to(dtype) / ref_point[0]).unsqueeze(-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # input-scaling hints: the inputs are in [0, 1]
        gp = SingleTaskGP(train_x, y, outcome_transform=Standardize(m=1))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
    if train_costs.shape[-1] == 0:
        return _single_objective(gp, train_x, cand_x, q, seed, mc_samples)
    table_x = torch.cat([train_x, cand_x])
    table_c = -torch.cat([train_costs.to(dtype), cand_costs.to(dtype)])

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
    ref = torch.full((1 + table_c.shape[-1],), -1.0, dtype=dtype)
    shape = torch.Size([mc_samples])
    # The deterministic costs give the same value for every sample: an index sampler.
    sampler = ListSampler(SobolQMCNormalSampler(shape, seed=seed), IndexSampler(shape, seed=seed))
    # The front to improve on: the observed trials (the error as measured; costs exact).
    # NEHVI would redo this box decomposition for every MC sample and every pending arm,
    # which took 9 of 11 s for a q=2 round here; the error is measured with little noise.
    observed = torch.cat([y, -train_costs.to(dtype)], dim=-1)
    partitioning = FastNondominatedPartitioning(ref_point=ref, Y=observed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        acq = qLogExpectedHypervolumeImprovement(
            model=model, ref_point=ref, partitioning=partitioning, sampler=sampler
        )
        chosen, _ = optimize_acqf_discrete(acq, q=q, choices=cand_x, unique=True)
    return torch.cdist(chosen, cand_x).argmin(dim=-1).tolist()


def _single_objective(
    gp: SingleTaskGP,
    train_x: torch.Tensor,
    cand_x: torch.Tensor,
    q: int,
    seed: int,
    mc_samples: int,
) -> list[int]:
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement

    sampler = SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples]), seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        acq = qLogNoisyExpectedImprovement(gp, X_baseline=train_x, sampler=sampler)
        chosen, _ = optimize_acqf_discrete(acq, q=q, choices=cand_x, unique=True)
    return torch.cdist(chosen, cand_x).argmin(dim=-1).tolist()
