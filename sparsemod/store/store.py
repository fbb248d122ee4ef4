"""The :class:`Store`: one object for a sparsemod database, joined from its parts."""

from __future__ import annotations

from sparsemod.store.queries import QueryMethods
from sparsemod.store.searches import SearchMethods
from sparsemod.store.trials import TrialMethods


class Store(SearchMethods, TrialMethods, QueryMethods):
    """The sparsemod database.

    Every method is its own transaction; records are detached snapshots. A ``Store`` may
    be shared by threads (each call takes its own session and pooled connection) and many
    stores, in many processes, may open one database. An in-memory SQLite store has one
    connection and lives as long as the ``Store``: it is meant for tests.

    The methods are written in three modules, by what they touch: searches
    (:mod:`~sparsemod.store.searches`), recording trials (:mod:`~sparsemod.store.trials`)
    and reading them (:mod:`~sparsemod.store.queries`); opening, transactions and closing
    are in :mod:`~sparsemod.store.base`.

    Args:
        url: a SQLAlchemy URL (``sqlite:///path/sparsemod.db``, ``sqlite://`` for memory,
            ``postgresql+psycopg://...``). A SQLite file's folder is created.
        upgrade: migrate a database at an older schema revision instead of refusing it.

    Raises:
        StoreError: the database is not a sparsemod store, is newer than the code, or is
            older and ``upgrade`` is false (the message gives the command that upgrades it);
            or it cannot be opened. Any call raises it when the driver fails (a lock held
            past the busy timeout, a file that cannot be written, a lost server).
        ConfigError: the URL is not valid or names a driver that is not installed.
    """
