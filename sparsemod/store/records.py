"""The store's records, and the vocabulary it keeps (statuses and metric names, declared
in :mod:`sparsemod.core.vocabulary`).

Everything a :class:`~sparsemod.store.Store` hands out is one of these records, never an
ORM object, so no caller can hold a session open or write behind the store's back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sparsemod.core.vocabulary import METRICS, RUNTIME_METRICS, SEARCH_STATUSES, TRIAL_STATUSES

__all__ = [
    "HISTORY_KEYS",
    "METRICS",
    "RUNTIME_METRICS",
    "SEARCH_STATUSES",
    "TRIAL_STATUSES",
    "ModelRecord",
    "SearchRecord",
    "TrialRecord",
]

HISTORY_KEYS = ("stage", "epoch", "loss", "val_accuracy", "sparsity")


@dataclass(frozen=True)
class SearchRecord:
    """One search as stored.

    Attributes:
        id: database id.
        name: the search's name (not unique: :meth:`Store.find_search` takes the newest).
        problem: the registered problem's name.
        config: the validated configuration.
        objectives: objective names, all minimised.
        ref_point: the hypervolume reference point, one value per objective, once known.
        status: one of :data:`SEARCH_STATUSES`.
        owner: the worker running it, if a worker claimed it.
        error: why it failed, for a failed search.
        created_at: creation time (UTC).
        updated_at: time of the last status change (UTC).
        heartbeat_at: the runner's last sign of life (UTC), ``None`` before the first.
        sobol_drawn: Sobol points drawn so far (resuming continues the sequence).
    """

    id: int
    name: str
    problem: str
    config: dict[str, Any]
    objectives: list[str]
    ref_point: list[float] | None
    status: str
    owner: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    heartbeat_at: datetime | None
    sobol_drawn: int


@dataclass(frozen=True)
class TrialRecord:
    """One trial as stored.

    Attributes:
        id: database id (unique across searches).
        search_id: the search it belongs to.
        index: its number within the search (0, 1, ...).
        phase: how it was proposed (sobol / gp / morph / test).
        status: one of :data:`TRIAL_STATUSES`.
        params: the parameters, with their Python types.
        parent_index: the index of the trial it was morphed from.
        morph: a description of the morph.
        duplicate_of: the index of the earlier trial of the same network, whose result it
            took without training (``None``: it was trained).
        seed: the seed it was trained with.
        metrics: measured metrics by name (only those measured).
        predicted: the costs predicted before training, by name.
        failure_reason: why it failed, for a failed trial.
        created_at: when it started (UTC).
        finished_at: when it completed or failed (UTC).
        has_model: whether its deployed model is stored.
    """

    id: int
    search_id: int
    index: int
    phase: str
    status: str
    params: dict[str, Any]
    parent_index: int | None
    morph: str | None
    seed: int
    metrics: dict[str, float]
    predicted: dict[str, float]
    failure_reason: str | None
    created_at: datetime
    finished_at: datetime | None
    has_model: bool
    duplicate_of: int | None = None


@dataclass(frozen=True)
class NewTrial:
    """A trial to record as started (see :meth:`Store.add_trials`)."""

    index: int
    phase: str
    params: Mapping[str, Any]
    parent_index: int | None = None
    morph: str | None = None
    seed: int = 0
    predicted: Mapping[str, float] | None = None
    duplicate_of: int | None = None


@dataclass(frozen=True)
class ModelRecord:
    """A stored deployed model.

    Attributes:
        trial_id: the trial it belongs to.
        format: how ``data`` is encoded (the evaluator's artifact format).
        data: the bytes.
        sha256: hex digest of ``data``, checked when read.
        meta: what is needed to load it (input shape, scheme, ...).
    """

    trial_id: int
    format: str
    data: bytes
    sha256: str
    meta: dict[str, Any]
