"""The trials table: one row per trial, as ``trials.csv`` and the API's CSV hold it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sparsemod.errors import ConfigError
from sparsemod.results.pareto import pareto_mask
from sparsemod.settings import OBJECTIVES  # the objectives key declares them

if TYPE_CHECKING:
    from sparsemod.store import TrialRecord


_ID_COLUMNS = ("index", "phase", "parent", "status", "failure_reason")
_METRIC_COLUMNS = (
    "error",
    "model_size_bytes",
    "working_memory_bytes",
    "flops",
    "latency_s",
    "accuracy_val",
    "train_seconds",
)
# After parent, in the table only when a trial took an earlier trial's result.
_DUPLICATE = "duplicate_of"
# Beside latency_s, the cost model's latency, in the table only when a latency_hook measured
# latency_s on the device (the searches without one keep their columns).
_MODELLED = "latency_model_s"


def trial_row(trial: TrialRecord) -> dict[str, Any]:
    """A stored trial as one input row of :func:`trials_frame`.

    Args:
        trial: the trial as the store returns it.

    Returns:
        ``index, phase, parent, status, failure_reason, params`` and every stored metric.
    """
    row: dict[str, Any] = {
        "index": trial.index,
        "phase": trial.phase,
        "parent": trial.parent_index,
        "status": trial.status,
        "failure_reason": trial.failure_reason,
        "params": trial.params,
    }
    if trial.duplicate_of is not None:
        row[_DUPLICATE] = trial.duplicate_of
    row.update(trial.metrics)
    return row


def trials_frame(
    rows: Sequence[Mapping[str, Any]],
    param_names: Sequence[str],
    objectives: Sequence[str],
) -> pd.DataFrame:
    """One row per trial, in a fixed column order, with ``is_pareto`` filled in.

    Args:
        rows: one mapping per trial with keys among the columns below; a parameter is read
            from ``row[name]`` or else from ``row["params"][name]``. Missing keys become NaN
            (numbers) or None.
        param_names: the search space's parameter names, in column order.
        objectives: the objectives the search minimised (names in :data:`OBJECTIVES`).

    Returns:
        Columns ``index, phase, parent, status, failure_reason``, the parameters, then
        ``error, model_size_bytes, working_memory_bytes, flops, latency_s, accuracy_val,
        train_seconds, is_pareto``; ``latency_model_s`` after ``latency_s`` and
        ``duplicate_of`` after ``parent`` when a row has one. ``is_pareto`` is computed
        among ``completed`` trials that are not duplicates.

    Raises:
        ConfigError: an objective is unknown, or a parameter name clashes with a column.
    """
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown or not objectives:
        raise ConfigError(
            f"objectives: {list(objectives)!r} must be a non-empty subset of {OBJECTIVES}"
        )
    metric_columns = _METRIC_COLUMNS
    if any(row.get(_MODELLED) is not None for row in rows):
        at = _METRIC_COLUMNS.index("latency_s") + 1
        metric_columns = (*_METRIC_COLUMNS[:at], _MODELLED, *_METRIC_COLUMNS[at:])
    id_columns = _ID_COLUMNS
    if any(row.get(_DUPLICATE) is not None for row in rows):
        at = _ID_COLUMNS.index("parent") + 1
        id_columns = (*_ID_COLUMNS[:at], _DUPLICATE, *_ID_COLUMNS[at:])
    clash = sorted(set(param_names) & set(id_columns + metric_columns + ("is_pareto",)))
    if clash:
        raise ConfigError(f"parameter name(s) {clash} clash with result columns")
    records = []
    for row in rows:
        params = row.get("params") or {}
        rec: dict[str, Any] = {c: row.get(c) for c in id_columns}
        for name in param_names:
            rec[name] = row[name] if name in row else params.get(name)
        for c in metric_columns:
            value = row.get(c)
            rec[c] = np.nan if value is None else value
        records.append(rec)
    columns = [*id_columns, *param_names, *metric_columns]
    frame = pd.DataFrame.from_records(records, columns=columns)
    for c in metric_columns:
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    # Trials without a parent would turn the column into floats (3.0); keep it integral.
    for c in {"parent", _DUPLICATE} & set(id_columns):
        frame[c] = pd.array(
            [None if p is None or (isinstance(p, float) and np.isnan(p)) else int(p) for p in frame[c]],
            dtype="Int64",
        )
    completed = (frame["status"] == "completed").to_numpy(dtype=bool)
    if _DUPLICATE in id_columns:  # a duplicate repeats its original's point
        completed &= frame[_DUPLICATE].isna().to_numpy(dtype=bool)
    mask = np.zeros(len(frame), dtype=bool)
    if completed.any():
        mask[completed] = pareto_mask(frame.loc[completed, list(objectives)].to_numpy(float))
    frame["is_pareto"] = mask
    return frame
