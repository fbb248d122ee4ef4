"""Magnitude pruning: ``magnitude`` (global) and ``magnitude_layerwise`` (SpArSe)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from sparsemod.compress.base import Pruner
from sparsemod.compress.masks import check_keep_ratio, require_prunable
from sparsemod.compress.step import PruneStep


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
