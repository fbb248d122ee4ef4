"""Pruning: a small protocol and the methods that plug into it.

A pruner attaches masks to a model (``torch.nn.utils.prune`` reparametrisation, so the
pruned weights stay zero while the model is fine-tuned) and :func:`make_permanent`
removes the masks, leaving plain tensors with real zeros in them. Later methods
(structured, lottery tickets, SNIP) implement the same :class:`Pruner` contract.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from sparsemod.errors import CompressionError, ConfigError

_PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass(frozen=True)
class PruneStep:
    """What one pruning step did: the method, the keep ratio asked, the sparsity got."""

    method: str
    keep_ratio: float
    weights_total: int
    weights_kept: int

    @property
    def sparsity(self) -> float:
        return 1.0 - self.weights_kept / self.weights_total if self.weights_total else 0.0


class Pruner(abc.ABC):
    """Attach pruning masks to a model so that it keeps ``keep_ratio`` of its weights."""

    name: ClassVar[str]

    @abc.abstractmethod
    def prune(self, model: nn.Module, keep_ratio: float) -> PruneStep:
        """Mask the weights of ``model`` in place.

        Args:
            model: the trained model; its prunable weights get a mask.
            keep_ratio: fraction of the prunable weights to keep, in (0, 1].

        Returns:
            The step, with the number of weights kept.

        Raises:
            CompressionError: the model has no prunable weights.
        """


def prunable_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """The (module, name) pairs a pruner may mask: conv / linear weights, RNN matrices.

    Biases, batch-norm parameters and embeddings are left dense: they are a small share
    of the size and pruning them hurts accuracy for little gain.
    """
    pairs: list[tuple[nn.Module, str]] = []
    for m in model.modules():
        if isinstance(m, _PRUNABLE):
            pairs.append((m, "weight"))
        elif isinstance(m, nn.RNNBase):
            pairs.extend((m, n) for n, _ in m.named_parameters(recurse=False) if "weight" in n)
    return pairs


def _check_keep_ratio(keep_ratio: float) -> float:
    if not 0.0 < keep_ratio <= 1.0:
        raise ConfigError(f"keep_ratio: {keep_ratio!r} is not in (0, 1]")
    return float(keep_ratio)


class GlobalMagnitude(Pruner):
    """Unstructured pruning of the smallest-magnitude weights over the whole network."""

    name = "magnitude"

    def prune(self, model: nn.Module, keep_ratio: float) -> PruneStep:
        keep_ratio = _check_keep_ratio(keep_ratio)
        pairs = prunable_weights(model)
        if not pairs:
            raise CompressionError(f"{type(model).__name__} has no conv, linear or RNN weights")
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
        keep_ratio = _check_keep_ratio(keep_ratio)
        pairs = prunable_weights(model)
        if not pairs:
            raise CompressionError(f"{type(model).__name__} has no conv, linear or RNN weights")
        total = kept = 0
        for m, n in pairs:
            size = getattr(m, n).numel()
            keep = max(1, round(keep_ratio * size))
            if keep < size:
                torch_prune.l1_unstructured(m, n, amount=size - keep)
            total += size
            kept += int(torch.count_nonzero(getattr(m, n)).item())
        return PruneStep(self.name, keep_ratio, total, kept)


PRUNERS: dict[str, type[Pruner]] = {
    GlobalMagnitude.name: GlobalMagnitude,
    LayerwiseMagnitude.name: LayerwiseMagnitude,
}


def get_pruner(name: str) -> Pruner:
    """The pruner registered under ``name``.

    Raises:
        ConfigError: no pruner has that name; the message lists those that exist.
    """
    try:
        return PRUNERS[name]()
    except KeyError:
        raise ConfigError(f"prune_method: {name!r} is not one of {sorted(PRUNERS)}") from None


def make_permanent(model: nn.Module) -> None:
    """Fold every pruning mask into its weight, leaving plain tensors with real zeros."""
    for m in model.modules():
        for name in [
            k[: -len("_orig")] for k, _ in m.named_parameters(recurse=False) if k.endswith("_orig")
        ]:
            torch_prune.remove(m, name)
        if isinstance(m, nn.RNNBase):
            # RNNs cache a flat list of their weights; point it at the new tensors.
            m._init_flat_weights()


def sparsity(model: nn.Module) -> float:
    """Share of zeros among the prunable weights of a model."""
    pairs = prunable_weights(model)
    total = sum(getattr(m, n).numel() for m, n in pairs)
    zeros = sum(int((getattr(m, n) == 0).sum().item()) for m, n in pairs)
    return zeros / total if total else 0.0
