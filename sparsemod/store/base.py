"""What every part of a :class:`~sparsemod.store.Store` stands on: an open database.

:class:`StoreBase` opens the engine (checking the schema's revision), hands out one
transaction per call and closes. The search and trial methods are written on top of it in
their own modules, and :class:`~sparsemod.store.Store` joins them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Self

from sqlalchemy.orm import Session, sessionmaker

from sparsemod.store.engine import driver_errors, make_engine, open_database, safe_url


class StoreBase:
    """An open sparsemod database: its engine, sessions and transactions.

    Args:
        url: a SQLAlchemy URL.
        upgrade: migrate a database at an older schema revision instead of refusing it.

    Raises:
        StoreError: the schema is not the code's, or the database cannot be opened.
        ConfigError: the URL is not valid or names a driver that is not installed.
    """

    def __init__(self, url: str, *, upgrade: bool = False) -> None:
        self.url = url
        self._engine = make_engine(url)
        try:
            open_database(self._engine, url, upgrade)
        except BaseException:
            self._engine.dispose()
            raise
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Store({safe_url(self.url)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection (a closed store can be reopened by a new one)."""
        self._engine.dispose()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back when it raises.

        Raises:
            StoreError: the driver failed (see :func:`~sparsemod.store.engine.driver_errors`);
                integrity errors pass through for the caller to explain.
        """
        with driver_errors(self.url), self._sessions.begin() as session:
            yield session

    def vacuum(self) -> None:
        """Give the space of deleted rows (dropped models) back to the file system.

        On SQLite the write-ahead log is checkpointed into the file and truncated too, so
        the file's size is the database's size.

        Raises:
            StoreError: the driver failed (a lock held past the busy timeout, ...).
        """
        with driver_errors(self.url), self._engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql("VACUUM")
            if self._engine.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
