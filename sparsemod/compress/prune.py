"""Pruning: the protocol every method plugs into, masks, and magnitude pruning.

A pruner attaches masks to a model (``torch.nn.utils.prune`` reparametrisation, so the
pruned weights stay zero while the model is fine-tuned) and :func:`make_permanent`
removes the masks, leaving plain tensors with real zeros in them. Structured pruning
(:mod:`sparsemod.compress.structured`) rebuilds smaller layers instead.

Two entry points:

* ``prune(model, keep_ratio) -> PruneStep``: one shot on the weights as they are, no data.
  The magnitude methods and ``l1_structured`` implement it.
* ``run(model, keep_ratio, context) -> list[PruneStep]``: what the evaluator calls. The
  default calls ``prune`` once; methods that need data or training (lottery tickets, SNIP,
  dynamic sparse training) override it and use the :class:`PruneContext`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from sparsemod.errors import CompressionError, ConfigError

if TYPE_CHECKING:
    from sparsemod.compress.context import PruneContext

_PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass(frozen=True)
class PruneStep:
    """One step in the life of a compressed network, for the trial's history.

    Args:
        method: the pruner's name.
        keep_ratio: the keep ratio the method was asked for.
        weights_total: prunable weights of the network before any pruning.
        weights_kept: prunable weights left (non-zero, or still present after a rebuild).
        stage: what happened: ``prune``, ``snip``, ``rewind:imp-2``, ``retrain:imp-2``,
            ``regrow``, ``train``, ``finetune`` ...
        epoch: the epoch within the stage (1-based) for training stages, else 0.
        loss: mean training loss of the epoch, for training stages.
        val_accuracy: validation accuracy after the step, when measured.
        detail: extra facts of the step (channels kept per layer, weights regrown ...).
    """

    method: str
    keep_ratio: float
    weights_total: int
    weights_kept: int
    stage: str = "prune"
    epoch: int = 0
    loss: float | None = None
    val_accuracy: float | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def sparsity(self) -> float:
        return 1.0 - self.weights_kept / self.weights_total if self.weights_total else 0.0

    def row(self) -> dict[str, Any]:
        """The step as a ``TrialResult.history`` row."""
        return {
            "stage": self.stage,
            "epoch": self.epoch,
            "loss": self.loss,
            "val_accuracy": self.val_accuracy,
            "sparsity": self.sparsity,
            "method": self.method,
            "weights_kept": self.weights_kept,
            "weights_total": self.weights_total,
            **dict(self.detail),
        }


class Pruner:
    """A pruning method. Subclasses implement ``prune`` or ``run`` (or both).

    Class attributes tell the evaluator where the method sits in the pipeline:

    * ``at_init``: the method starts from the untrained network and does the training
      itself (SNIP, dynamic sparse training); the evaluator skips its dense training.
    * ``trains``: the method ends with its own training, so the evaluator does not
      fine-tune after it.
    """

    name: ClassVar[str]
    at_init: ClassVar[bool] = False
    trains: ClassVar[bool] = False

    def prune(self, model: nn.Module, keep_ratio: float) -> PruneStep:
        """Prune ``model`` in place, in one shot, without data.

        Args:
            model: the model (trained, for the magnitude methods).
            keep_ratio: fraction of the prunable weights (or channels) to keep, in (0, 1].

        Returns:
            The step, with the number of weights kept.

        Raises:
            CompressionError: the model has nothing this method can prune, or the method
                needs data and training (call :meth:`run`).
        """
        raise CompressionError(
            f"prune_method {self.name!r} needs data and training: call run(model, "
            "keep_ratio, context)"
        )

    def run(self, model: nn.Module, keep_ratio: float, context: PruneContext) -> list[PruneStep]:
        """Prune ``model`` in place with whatever data and training the method needs.

        Args:
            model: the trained network, or the untrained one when ``at_init`` is set.
            keep_ratio: fraction of the prunable weights (or channels) to keep.
            context: the data, a way to train with masks held, the initial weights.

        Returns:
            The steps taken, in order, each with the validation accuracy after it.
        """
        step = self.prune(model, keep_ratio)
        return [context.scored(model, step)]

    def predict(self, model: nn.Module, keep_ratio: float) -> None:
        """Apply the structural part of the method to an untrained model, without data.

        Used to predict the costs of a candidate before training: what matters is how many
        weights (or channels) of each layer remain, not which.
        """
        self.prune(model, keep_ratio)


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
            pairs.extend(
                (m, n.removesuffix("_orig"))
                for n, _ in m.named_parameters(recurse=False)
                if n.startswith("weight")
            )
    return pairs


def named_prunable(model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """:func:`prunable_weights` keyed by the weight's state-dict name (``fc1.weight``)."""
    names = {id(m): q for q, m in model.named_modules()}
    out = {}
    for m, n in prunable_weights(model):
        prefix = names[id(m)]
        out[f"{prefix}.{n}" if prefix else n] = (m, n)
    return out


def check_keep_ratio(keep_ratio: float) -> float:
    if not 0.0 < keep_ratio <= 1.0:
        raise ConfigError(f"keep_ratio: {keep_ratio!r} is not in (0, 1]", key="keep_ratio")
    return float(keep_ratio)


def require_prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    pairs = prunable_weights(model)
    if not pairs:
        raise CompressionError(f"{type(model).__name__} has no conv, linear or RNN weights")
    return pairs


def count_weights(model: nn.Module) -> tuple[int, int]:
    """(prunable weights, of which non-zero)."""
    pairs = prunable_weights(model)
    total = sum(getattr(m, n).numel() for m, n in pairs)
    kept = sum(int(torch.count_nonzero(getattr(m, n)).item()) for m, n in pairs)
    return total, kept


# ------------------------------------------------------------------------------------ masks


def masks_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """The current mask of every prunable weight (1 = kept), by state-dict name.

    A weight without a pruning mask gets the mask of its non-zero entries.
    """
    out = {}
    for key, (m, n) in named_prunable(model).items():
        mask = getattr(m, n + "_mask", None)
        out[key] = (mask if mask is not None else getattr(m, n) != 0).detach().to(torch.bool)
    return out


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Mask the prunable weights of ``model`` so that they stay zero while it trains.

    Earlier masks are folded into the weights first, so the new mask replaces them.
    """
    named = named_prunable(model)
    for key, mask in masks.items():
        if key not in named:
            raise CompressionError(f"no prunable weight {key!r} in {type(model).__name__}")
        m, n = named[key]
        if hasattr(m, n + "_orig"):
            torch_prune.remove(m, n)
        torch_prune.custom_from_mask(m, n, mask.to(getattr(m, n).device))
        if isinstance(m, nn.RNNBase):
            m._init_flat_weights()


def top_k_masks(scores: Mapping[str, torch.Tensor], keep: int) -> dict[str, torch.Tensor]:
    """Masks keeping exactly the ``keep`` highest scores over all tensors together.

    Ties are broken by position, so the count is exact. Entries scored ``-inf`` are never
    kept unless there are not enough others.
    """
    flat = torch.cat([s.detach().reshape(-1).float().cpu() for s in scores.values()])
    chosen = torch.zeros(flat.numel(), dtype=torch.bool)
    if keep > 0:
        chosen[torch.topk(flat, keep, sorted=False).indices] = True
    out, start = {}, 0
    for key, s in scores.items():
        out[key] = chosen[start : start + s.numel()].reshape(s.shape).to(s.device)
        start += s.numel()
    return out


# --------------------------------------------------------------------------- magnitude


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
