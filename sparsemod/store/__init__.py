"""The durable store: searches, trials and their facts in one SQL database.

The store is the single source of truth of a search (a resumed search is rebuilt from it),
and the only package of sparsemod that imports SQLAlchemy or writes SQL. Everything it
hands out is a frozen record (:class:`SearchRecord`, :class:`TrialRecord`,
:class:`ModelRecord`), never an ORM object, so no caller can hold a session open or write
behind the store's back.

One row per fact, no pickles, JSON text only where a value has no fixed type; datetimes
are stored as naive UTC and come back aware (``tzinfo=UTC``). The schema is versioned with
Alembic (``sparsemod/migrations``); a store refuses a database whose revision is not the
code's, the way Optuna's ``RDBStorage`` does, and says which command upgrades it. SQLite
(the default, one file next to the results) runs in WAL mode with foreign keys on and a
30 s busy timeout, so a worker, the API process and a CLI can share one file.

Modules, each importing only those above it:

* :mod:`~sparsemod.store.records`: statuses, metric names, the frozen records.
* :mod:`~sparsemod.store.tables`: the SQLAlchemy models, one table per kind of fact.
* :mod:`~sparsemod.store.engine`: URLs, engines, SQLite pragmas, the schema's revision
  (Alembic), :class:`StoreError` and the mapping of driver errors to it.
* :mod:`~sparsemod.store.checks`: the checks of values before they are written.
* :mod:`~sparsemod.store.base`: an open database, one transaction per call.
* :mod:`~sparsemod.store.searches`, :mod:`~sparsemod.store.trials`,
  :mod:`~sparsemod.store.queries`: the methods on searches, on recording trials and on
  reading trials, models and histories.
* :mod:`~sparsemod.store.store`: :class:`Store`, which joins them.
"""

from __future__ import annotations

from sparsemod.store.engine import (
    StoreError,
    default_url,
    head_revision,
    upgrade_database,
)
from sparsemod.store.records import (
    HISTORY_KEYS,
    METRICS,
    SEARCH_STATUSES,
    TRIAL_STATUSES,
    ModelRecord,
    NewTrial,
    SearchRecord,
    TrialRecord,
)
from sparsemod.store.store import Store
from sparsemod.store.tables import (
    Base,
    HistoryRow,
    MetricRow,
    ModelRow,
    ParamRow,
    PredictionRow,
    SearchRow,
    TrialRow,
    UTCDateTime,
)

__all__ = [
    "HISTORY_KEYS",
    "METRICS",
    "SEARCH_STATUSES",
    "TRIAL_STATUSES",
    "ModelRecord",
    "NewTrial",
    "SearchRecord",
    "Store",
    "StoreError",
    "TrialRecord",
    "default_url",
    "head_revision",
    "upgrade_database",
    # The tables, for the migrations' environment and for tests that hook into them.
    "Base",
    "HistoryRow",
    "MetricRow",
    "ModelRow",
    "ParamRow",
    "PredictionRow",
    "SearchRow",
    "TrialRow",
    "UTCDateTime",
]
