"""trials.csv and pareto.csv of a search, built from the store (not from its files).

The columns are those ``sparsemod export`` writes (:func:`sparsemod.results.trials.trials_frame`);
``pareto.csv`` adds ``test_error`` (1 - the stored test accuracy of each Pareto member).
"""

from __future__ import annotations

from sparsemod.errors import ConfigError
from sparsemod.problems import get_problem
from sparsemod.results.export import stored_frame
from sparsemod.results.files import pareto_frame
from sparsemod.store import SearchRecord, Store


def _frames(store: Store, search: SearchRecord):
    trials = store.list_trials(search.id)
    try:
        names = get_problem(search.problem).space.names
    except ConfigError:  # the problem was unregistered since: its columns from the trials
        names = sorted({k for t in trials for k in t.params})
    return stored_frame(search, trials, names)


def trials_csv(store: Store, search: SearchRecord) -> str:
    """Every trial of the search, one row each, with ``is_pareto``."""
    return _frames(store, search)[0].to_csv(index=False)


def pareto_csv(store: Store, search: SearchRecord) -> str:
    """The Pareto members of the search with their ``test_error``."""
    return pareto_frame(*_frames(store, search)).to_csv(index=False)
