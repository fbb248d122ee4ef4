"""trials.csv and pareto.csv of a search, built from the store (not from its files).

The columns are those ``sparsemod export`` writes (:func:`sparsemod.results.trials.trials_frame`);
``pareto.csv`` adds ``test_error`` (1 - the stored test accuracy of each Pareto member).
"""

from __future__ import annotations

import math

from sparsemod.errors import ConfigError
from sparsemod.problems import get_problem
from sparsemod.results.trials import trials_frame
from sparsemod.store import SearchRecord, Store, TrialRecord


def _frame(store: Store, search: SearchRecord) -> tuple[list[TrialRecord], object]:
    trials = store.list_trials(search.id)
    try:
        names = get_problem(search.problem).space.names
    except ConfigError:  # the problem was unregistered since: its columns from the trials
        names = sorted({k for t in trials for k in t.params})
    rows = [
        {
            "index": t.index,
            "phase": t.phase,
            "parent": t.parent_index,
            "status": t.status,
            "failure_reason": t.failure_reason,
            "params": t.params,
            **t.metrics,
        }
        for t in trials
    ]
    return trials, trials_frame(rows, names, list(search.objectives))


def trials_csv(store: Store, search: SearchRecord) -> str:
    """Every trial of the search, one row each, with ``is_pareto``."""
    return _frame(store, search)[1].to_csv(index=False)


def pareto_csv(store: Store, search: SearchRecord) -> str:
    """The Pareto members of the search with their ``test_error``."""
    trials, frame = _frame(store, search)
    by_index = {t.index: t for t in trials}
    pareto = frame[frame["is_pareto"].astype(bool)].copy()
    pareto["test_error"] = [
        1.0 - by_index[int(i)].metrics["accuracy_test"]
        if by_index[int(i)].metrics.get("accuracy_test") is not None
        else math.nan
        for i in pareto["index"]
    ]
    return pareto.to_csv(index=False)
