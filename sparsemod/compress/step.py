"""One step in the life of a compressed network, as a trial's history records it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
