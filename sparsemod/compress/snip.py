"""SNIP: single-shot pruning at initialisation from connection sensitivity (Lee et al., 2019).

Before any training, the sensitivity of each prunable weight is ``|g * w|``, the gradient
of the training loss times the weight, summed over a few training batches
(``snip_batches``). The network keeps exactly ``round(keep_ratio * total)`` of the most
sensitive weights, globally, and then trains for the candidate's epochs with the masks
held: the dense training is replaced, not added to.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sparsemod.compress.base import Pruner
from sparsemod.compress.context import PruneContext
from sparsemod.compress.magnitude import GlobalMagnitude
from sparsemod.compress.masks import (
    apply_masks,
    check_keep_ratio,
    count_weights,
    named_prunable,
    require_prunable,
    top_k_masks,
)
from sparsemod.compress.options import PrunerOptions, option
from sparsemod.compress.step import PruneStep
from sparsemod.spec import integer
from sparsemod.train import resolve_device, seeded


def sensitivity(model: nn.Module, context: PruneContext, batches: int) -> dict[str, torch.Tensor]:
    """``|g * w|`` of every prunable weight, summed over ``batches`` training batches."""
    device = resolve_device(context.settings.device)
    model.to(device)
    named = named_prunable(model)
    was_training = model.training
    model.train()
    model.zero_grad(set_to_none=True)
    try:
        with seeded(context.seed):
            for x, y in context.batches(batches):
                x = x.to(device) if isinstance(x, torch.Tensor) else x
                loss = F.cross_entropy(model(x), torch.as_tensor(y).to(device))
                loss.backward()
        scores = {}
        for key, (m, n) in named.items():
            w = getattr(m, n)
            if w.grad is None:
                scores[key] = torch.zeros_like(w)
            else:
                scores[key] = (w.grad * w).detach().abs()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return scores


class Snip(Pruner):
    """``snip``: prune the untrained network by connection sensitivity, then train it."""

    name = "snip"
    at_init = True
    trains = True

    @dataclass(frozen=True)
    class Options(PrunerOptions):
        """``snip``'s key: how many batches the sensitivity sums over."""

        snip_batches: int = option(
            integer(1).declare(4, "snip: batches the connection sensitivity sums over")
        )

    def run(self, model: nn.Module, keep_ratio: float, context: PruneContext) -> list[PruneStep]:
        keep_ratio = check_keep_ratio(keep_ratio)
        require_prunable(model)
        batches = self.options(context).snip_batches
        total, _ = count_weights(model)
        masks = top_k_masks(sensitivity(model, context, batches), round(keep_ratio * total))
        apply_masks(model, masks)
        kept = sum(int(m.sum()) for m in masks.values())
        step = PruneStep(
            self.name,
            keep_ratio,
            total,
            kept,
            "snip",
            detail={"batches": batches},
        )
        like = PruneStep(self.name, keep_ratio, total, kept)
        return [context.scored(model, step)] + context.train(
            model, context.settings.epochs, "train", like
        )

    def predict(
        self, model: nn.Module, keep_ratio: float, options: PrunerOptions | None = None
    ) -> None:
        GlobalMagnitude().predict(model, keep_ratio)
