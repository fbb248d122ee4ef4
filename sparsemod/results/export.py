"""A stored search written out as result files (``sparsemod export``, the end of a search)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparsemod.evaluate import COMPLETED
from sparsemod.results.artifact import artifact_from
from sparsemod.results.files import write_results
from sparsemod.results.pareto import hypervolume
from sparsemod.results.trials import trial_row, trials_frame
from sparsemod.store.records import RUNTIME_METRICS

if TYPE_CHECKING:
    import pandas as pd

    from sparsemod.evaluate import ModelArtifact
    from sparsemod.store import SearchRecord, Store, TrialRecord


def artifact_from_store(store: Store, trial_id: int) -> ModelArtifact:
    """The deployed model stored with trial ``trial_id``.

    Raises:
        DataError: the trial has no stored model.
    """
    rec = store.get_model(trial_id)
    return artifact_from(rec.meta, rec.data, rec.format)


def stored_frame(
    search: SearchRecord, trials: Sequence[TrialRecord], param_names: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, dict[int, float]]]:
    """A stored search's trials table, and ``pareto.csv``'s further columns.

    Args:
        search: the search as the store returns it.
        trials: its trials, as the store returns them.
        param_names: the space's parameter names, in column order.

    Returns:
        :func:`~sparsemod.results.trials.trials_frame`'s frame, and by column name the
        values by index of the Pareto members: ``test_error`` (1 - stored test accuracy)
        and, when the deploy check ran, the runtime's figures (``runtime_*``).
    """
    frame = trials_frame([trial_row(t) for t in trials], list(param_names), list(search.objectives))
    pareto = set(frame.loc[frame["is_pareto"], "index"].astype(int))
    members = [t for t in trials if t.index in pareto]
    columns: dict[str, dict[int, float]] = {
        "test_error": {
            t.index: 1.0 - t.metrics["accuracy_test"]
            for t in members
            if t.metrics.get("accuracy_test") is not None
        }
    }
    for name in RUNTIME_METRICS:
        found = {t.index: t.metrics[name] for t in members if t.metrics.get(name) is not None}
        if found:
            columns[name] = found
    return frame, columns


def export_search(
    store: Store,
    search_id: int,
    directory: str | Path,
    param_names: Sequence[str],
    extra_summary: Mapping[str, Any] | None = None,
    wall_seconds: float | None = None,
) -> Path:
    """Write ``trials.csv``, ``pareto.csv``, ``summary.json``, ``models/`` … from the store.

    Returns:
        The directory written.
    """
    search = store.get_search(search_id)
    trials = store.list_trials(search_id)
    objectives = list(search.objectives)
    frame, columns = stored_frame(search, trials, param_names)
    pareto = set(frame.loc[frame["is_pareto"], "index"].astype(int))
    by_index = {t.index: t for t in trials}
    with_model = set(store.model_trial_ids(search_id))
    models = {
        i: artifact_from_store(store, by_index[i].id)
        for i in pareto
        if by_index[i].id in with_model
    }
    done = frame[frame["status"] == COMPLETED]
    hv = (
        hypervolume(done[objectives].to_numpy(float), search.ref_point)
        if len(done) and search.ref_point
        else 0.0
    )
    summary = {
        "name": search.name,
        "search_id": search.id,
        "problem": search.problem,
        "status": search.status,
        "config": search.config,
        "objectives": objectives,
        "reference_point": search.ref_point,
        "hypervolume": hv,
        "trials": len(trials),
        "completed": int((frame["status"] == COMPLETED).sum()),
        "database": _safe_url(store.url),
        "morphs": {t.index: t.morph for t in trials if t.morph},
    }
    summary.update(extra_summary or {})
    if wall_seconds is None:
        wall_seconds = (search.updated_at - search.created_at).total_seconds()
    write_results(
        directory,
        frame,
        pareto_columns=columns,
        summary=summary,
        models=models,
        problem_name=search.problem,
        objectives=objectives,
        wall_seconds=wall_seconds,
    )
    return Path(directory)


def _safe_url(url: str) -> str:
    # Never write a password into a file.
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
