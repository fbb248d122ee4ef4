"""Which weights a pruner may mask, the masks themselves, and making them permanent.

A pruner attaches masks to a model (``torch.nn.utils.prune`` reparametrisation, so the
pruned weights stay zero while the model is fine-tuned) and :func:`make_permanent`
removes the masks, leaving plain tensors with real zeros in them.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from sparsemod.errors import CompressionError, ConfigError

_PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


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
    """``keep_ratio`` as a float; raises ConfigError naming it when not in (0, 1]."""
    if not 0.0 < keep_ratio <= 1.0:
        raise ConfigError(f"keep_ratio: {keep_ratio!r} is not in (0, 1]", key="keep_ratio")
    return float(keep_ratio)


def require_prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """:func:`prunable_weights`; raises CompressionError when there are none."""
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
