"""The names every layer shares: metrics with their units, and the statuses' lifecycles.

A trial's metrics are stored one row per fact under these names (:mod:`sparsemod.store`),
written to ``trials.csv`` / ``pareto.csv`` and served by the API; the first four are the
objectives, in SpArSeMod's cumulative order (``objectives = 1`` is the error alone, ``4``
adds latency). What each objective counts under each ``runtime`` is DESIGN.md's table and
:mod:`sparsemod.objectives.runtime`.

Lifecycles (the store enforces them: a conditional update, never a blind write):

* a **search** is ``queued`` (the service accepted it) -> ``running`` (a runner claimed it;
  ``python main.py`` creates it running) -> ``done`` or ``failed`` (with its error); a
  cancel makes a queued search ``cancelled`` at once and a running one ``cancelling``
  until its runner stops between trials, then ``cancelled``. A runner that dies leaves it
  ``running`` with a stale heartbeat, and a worker takes it back to ``queued``.
* a **trial** is ``running`` from its proposal (written with its round, in one
  transaction) -> ``completed`` (with every metric), ``failed`` (with its reason) or
  ``stopped`` (early stopping on the front: its final error could not join the front; with
  the epoch, its error then and the predicted final error), once: of two completions
  racing, one wins. A resumed search re-runs the trials it finds ``running``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SearchStatus(StrEnum):
    """Where a search is in its lifecycle (see the module docstring)."""

    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    DONE = "done"
    FAILED = "failed"


class TrialStatus(StrEnum):
    """Where a trial is in its lifecycle (see the module docstring)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"


SEARCH_STATUSES = tuple(s.value for s in SearchStatus)
TRIAL_STATUSES = tuple(s.value for s in TrialStatus)
FINISHED = (SearchStatus.DONE, SearchStatus.FAILED, SearchStatus.CANCELLED)
"""The statuses a search does not leave."""


@dataclass(frozen=True)
class Metric:
    """One measured quantity of a trial: its name, unit and meaning."""

    name: str
    unit: str
    description: str


_OBJECTIVES = (
    Metric("error", "1", "1 - top-1 accuracy of the deployed network on the validation split"),
    Metric("model_size_bytes", "B", "flash the deployed network takes, as `runtime` counts it"),
    Metric("working_memory_bytes", "B", "RAM one inference needs, as `runtime` counts it"),
    Metric("latency_s", "s", "one inference: the latency model's, or the latency_hook's"),
)
_RUNTIME = (
    Metric("runtime_accuracy_test", "1", "deploy_check: the runtime's test-split accuracy"),
    Metric("runtime_model_bytes", "B", "deploy_check: the exported artifact's bytes"),
    Metric("runtime_memory_bytes", "B", "deploy_check: the runtime's arena / planned memory"),
    Metric("runtime_activation_bytes", "B", "deploy_check: the arena's activations"),
    Metric("runtime_persistent_bytes", "B", "deploy_check: the arena's persistent part"),
)
METRIC_INFO: dict[str, Metric] = {
    m.name: m
    for m in (
        *_OBJECTIVES,
        Metric("accuracy_val", "1", "top-1 accuracy of the deployed network, validation"),
        Metric("accuracy_val_float", "1", "the same, of the float network before quantizing"),
        Metric("accuracy_test", "1", "top-1 accuracy on the test split (Pareto set, TEST)"),
        Metric("dense_size_bytes", "B", "the float network before compression, 4 B a weight"),
        Metric("flops", "FLOPs", "2 per multiply-accumulate of one inference"),
        Metric("latency_model_s", "s", "the latency model's, beside a latency_hook's"),
        Metric("sparsity", "1", "share of prunable weights that are zero"),
        Metric("train_seconds", "s", "wall time of training, pruning and fine-tuning"),
        Metric("total_seconds", "s", "wall time of the whole evaluation"),
        Metric("stop_epoch", "epochs", "early stopping: the epochs the stopped stage trained"),
        Metric("stop_val_error", "1", "early stopping: validation error when it stopped"),
        Metric("predicted_error", "1", "early stopping: the predicted final validation error"),
        *_RUNTIME,
    )
}
"""Every metric a trial can store, by name."""

OBJECTIVES = tuple(m.name for m in _OBJECTIVES)
"""The objective names, in SpArSeMod's cumulative order; all minimised."""
RUNTIME_METRICS = tuple(m.name for m in _RUNTIME)
"""What the deploy check (``deploy_check``) reads from the runtime for a Pareto member."""
METRICS = tuple(METRIC_INFO)
"""The names the store keeps a trial's metrics under."""
