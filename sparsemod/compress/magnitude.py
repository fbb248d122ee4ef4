"""Magnitude pruning: ``magnitude`` (global) and ``magnitude_layerwise`` (SpArSe)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from sparsemod.compress.base import Pruner
from sparsemod.compress.masks import check_keep_ratio, require_prunable
from sparsemod.compress.options import PrunerOptions
from sparsemod.compress.step import PruneStep


@torch.no_grad()
def zero_smallest(weights: list[torch.Tensor], amount: int) -> None:
    """Zero the ``amount`` smallest-magnitude entries of ``weights`` taken together, in place.

    The entries torch's ``L1Unstructured`` prunes (the same ``topk`` over the same vector),
    without attaching masks: what a prediction of the costs needs, several times faster.
    """
    if amount <= 0:
        return
    flat = torch.cat([w.detach().reshape(-1) for w in weights])
    keep = torch.ones_like(flat)
    keep[torch.topk(flat.abs(), k=amount, largest=False).indices] = 0
    start = 0
    for w in weights:
        w.mul_(keep[start : start + w.numel()].view_as(w))
        start += w.numel()


class GlobalMagnitude(Pruner):
    """Unstructured pruning of the smallest-magnitude weights over the whole network."""

    name = "magnitude"

    def prune(self, model: nn.Module, keep_ratio: float) -> PruneStep:
        keep_ratio = check_keep_ratio(keep_ratio)
        pairs = require_prunable(model)
        total = sum(getattr(m, n).numel() for m, n in pairs)
        if keep_ratio < 1.0:
            # An int amount makes torch prune exactly that many weights, not a rounded share.
            amount = total - round(keep_ratio * total)
            torch_prune.global_unstructured(
                pairs, pruning_method=torch_prune.L1Unstructured, amount=amount
            )
        kept = sum(int(torch.count_nonzero(getattr(m, n)).item()) for m, n in pairs)
        return PruneStep(self.name, keep_ratio, total, kept)

    def predict(
        self, model: nn.Module, keep_ratio: float, options: PrunerOptions | None = None
    ) -> None:
        keep_ratio = check_keep_ratio(keep_ratio)
        weights = [getattr(m, n) for m, n in require_prunable(model)]
        total = sum(w.numel() for w in weights)
        zero_smallest(weights, total - round(keep_ratio * total))


class LayerwiseMagnitude(Pruner):
    """Unstructured magnitude pruning that keeps the same share of every layer (SpArSe).

    Each layer keeps exactly ``round(keep_ratio * n)`` of its ``n`` weights, so how many
    weights each layer keeps (and so the model size) follows from the parameters alone,
    before any training.
    """

    name = "magnitude_layerwise"

    def prune(self, model: nn.Module, keep_ratio: float) -> PruneStep:
        keep_ratio = check_keep_ratio(keep_ratio)
        pairs = require_prunable(model)
        total = kept = 0
        for m, n in pairs:
            size = getattr(m, n).numel()
            keep = max(1, round(keep_ratio * size))
            if keep < size:
                torch_prune.l1_unstructured(m, n, amount=size - keep)
            total += size
            kept += int(torch.count_nonzero(getattr(m, n)).item())
        return PruneStep(self.name, keep_ratio, total, kept)

    def predict(
        self, model: nn.Module, keep_ratio: float, options: PrunerOptions | None = None
    ) -> None:
        keep_ratio = check_keep_ratio(keep_ratio)
        for m, n in require_prunable(model):
            w = getattr(m, n)
            zero_smallest([w], w.numel() - max(1, round(keep_ratio * w.numel())))
