"""What one evaluation produces: :class:`TrialResult`, and the model it keeps.

Plain frozen records with no torch in them: the evaluator writes them, executors carry
them between processes, the search, the store and the results files read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sparsemod.core.vocabulary import TrialStatus

COMPLETED = TrialStatus.COMPLETED.value
FAILED = TrialStatus.FAILED.value
STOPPED = TrialStatus.STOPPED.value


@dataclass(frozen=True)
class ModelArtifact:
    """The deployed model as bytes, and what rebuilds it (see ``sparsemod.evaluate.load_model``).

    ``format`` is ``exported`` (``torch.export.save`` of a PT2E int8 model: ``post``, and
    ``both`` without an RNN) or ``state_dict`` (the builder's network, shrunk to the saved
    channel counts after ``l1_structured``, with sparsemod's int8 layers swapped in when
    ``quant_scheme`` is ``dynamic`` or ``both``). Each quantization scheme writes and reads
    its own (:mod:`sparsemod.compress.scheme`).
    """

    format: str
    data: bytes
    params: Mapping[str, Any]
    input_shape: tuple[int, ...]
    num_classes: int
    quant_scheme: str


@dataclass(frozen=True)
class TrialResult:
    """Everything one evaluation produced. Costs are ``None`` when the trial failed or was
    stopped; a stopped one has ``stop_epoch``, ``stop_val_error`` and ``predicted_error``.

    ``latency_s`` is the latency the search minimises: the one the user's ``latency_hook``
    measured on the device when there is one, else the cost model's. ``latency_model_s``
    is the cost model's beside a measured one (``None`` without a hook).
    """

    status: str
    params: Mapping[str, Any]
    seed: int
    failure_reason: str | None = None
    error: float | None = None
    accuracy_val: float | None = None
    accuracy_val_float: float | None = None
    accuracy_test: float | None = None
    model_size_bytes: int | None = None
    dense_size_bytes: int | None = None
    working_memory_bytes: int | None = None
    flops: int | None = None
    latency_s: float | None = None
    latency_model_s: float | None = None
    sparsity: float | None = None
    train_seconds: float = 0.0
    total_seconds: float = 0.0
    stop_epoch: int | None = None
    stop_val_error: float | None = None
    predicted_error: float | None = None
    history: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)
    model: ModelArtifact | None = None
    trained_state: bytes | None = None

    @property
    def ok(self) -> bool:
        """Whether the trial completed."""
        return self.status == COMPLETED

    def objectives(self) -> dict[str, float]:
        """The four objectives by name (all minimised)."""
        return {
            "error": self.error,
            "model_size_bytes": self.model_size_bytes,
            "working_memory_bytes": self.working_memory_bytes,
            "latency_s": self.latency_s,
        }


@dataclass(frozen=True)
class WarmStart:
    """A trained parent to start a morphed child from (Net2Net-style weight inheritance).

    ``state`` is the parent's trained float state dict, as ``torch.save`` wrote it.
    """

    params: Mapping[str, Any]
    state: bytes
