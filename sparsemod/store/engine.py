"""Opening a database: URLs, engines, SQLite pragmas and the schema's revision.

The schema is versioned with Alembic (``sparsemod/migrations``); a store refuses a database
whose revision is not the code's, the way Optuna's ``RDBStorage`` does, and says which
command upgrades it. SQLite runs in WAL mode with foreign keys on and a 30 s busy timeout,
so a worker, the API process and a CLI can share one file.

Whatever stops a database from being used (a foreign or newer schema, an unreachable
server, an unwritable file, a lock held past the busy timeout) is a :class:`StoreError`
that names the database.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, exc, inspect
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from sparsemod.errors import ConfigError, SparsemodError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# Tests point this (here, in sparsemod.store.engine) at a copy with an extra revision to
# exercise the version check.
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


_ENV_URL = "SPARSEMOD_DATABASE_URL"
_BUSY_TIMEOUT_MS = 30_000

# Alembic logs at INFO as it is imported ("setup plugin ...") and each time a store opens
# ("Context impl SQLiteImpl."); sparsemod prints its own lines, so only Alembic's warnings
# get through. Alembic is imported lazily, below, so that this comes first.
logging.getLogger("alembic").setLevel(logging.WARNING)


class StoreError(SparsemodError):
    """The database cannot be used as it is.

    Its schema is at another revision or is not a sparsemod store, or the driver refused
    to open, read or write it (an unreachable server, an unwritable file, a lock held past
    the busy timeout). The message names the database and, for a revision, what to do.
    """


# ------------------------------------------------------------------- URLs and engines


def default_url(root: str | os.PathLike[str]) -> str:
    """The database URL of a results root.

    Args:
        root: the results folder.

    Returns:
        ``$SPARSEMOD_DATABASE_URL`` when set (a shared server database wins), else a
        SQLite file ``sparsemod.db`` in ``root``.
    """
    env = os.environ.get(_ENV_URL, "").strip()
    if env:
        return env
    return f"sqlite:///{Path(root).resolve()}/sparsemod.db"


def _parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except (exc.ArgumentError, ValueError) as e:
        raise ConfigError(f"database URL {url!r} is not a valid SQLAlchemy URL: {e}") from e


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; on SQLite with the pragmas set on every new connection."""
    parsed = _parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        try:
            # pool_pre_ping: a worker holds its store for hours; servers drop idle links.
            return create_engine(parsed, pool_pre_ping=True)
        except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as e:
            raise ConfigError(f"cannot open database {safe_url(url)}: {e}") from e
    memory = _is_memory(parsed)
    if memory:
        # One connection for everyone: each new connection to :memory: is a new database.
        engine = create_engine(
            parsed, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        Path(parsed.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # The timeout first: switching to WAL needs a lock another process may hold.
        cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not memory:
            # Readers do not block the writer: the API can list while a worker commits.
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    return engine


def safe_url(url: str | URL) -> str:
    """The URL with its password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (exc.ArgumentError, ValueError):
        return "<invalid URL>"


# ------------------------------------------------------------------------- migrations


@functools.cache
def _scripts(location: str) -> ScriptDirectory:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", location)
    return ScriptDirectory.from_config(config)


def head_revision() -> str:
    """The schema revision this code writes (the Alembic head)."""
    head = _scripts(str(MIGRATIONS)).get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise StoreError(f"no migrations found in {MIGRATIONS}")
    return head


def _alembic_config(connection: Connection, url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolates '%': URL-encoded passwords must be escaped.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


@contextlib.contextmanager
def _schema_lock(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that no other store can migrate past.

    Two processes opening a new database at once must not both create the tables: on
    SQLite ``BEGIN IMMEDIATE`` takes the write lock (and makes the DDL one transaction),
    on PostgreSQL a transaction-scoped advisory lock does.
    """
    with engine.connect() as connection:
        backend = engine.dialect.name
        if backend == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif backend == "postgresql":
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7421001)")
        try:
            yield connection
        except BaseException:
            connection.rollback()
            raise
        connection.commit()


def _prepare(connection: Connection, url: str, upgrade: bool) -> tuple[str, str]:
    """Check the database's revision against the code's; create or upgrade as allowed.

    Returns:
        ``(from, to)`` revisions, ``"base"`` for a new database.

    Raises:
        StoreError: a foreign database, one newer than the code, or an old one without
            ``upgrade``.
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    head = head_revision()
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        tables = sorted(set(inspect(connection).get_table_names()) - {"alembic_version"})
        if tables:
            raise StoreError(
                f"database {safe_url(url)} has tables ({', '.join(tables)}) but no sparsemod "
                "schema revision (no alembic_version row): it was not created by sparsemod. "
                "Point --database at a new or sparsemod database."
            )
        command.upgrade(_alembic_config(connection, url), "head")
        return "base", head
    if current == head:
        return current, head
    known = {script.revision for script in _scripts(str(MIGRATIONS)).walk_revisions()}
    if current not in known:
        raise StoreError(
            f"database {safe_url(url)} is at schema revision {current!r}, which this sparsemod "
            f"does not know (its newest is {head!r}): it was written by a newer sparsemod. "
            "Upgrade sparsemod to use it."
        )
    if not upgrade:
        raise StoreError(
            f"database {safe_url(url)} is at schema revision {current!r}, this sparsemod needs "
            f"{head!r}. Back it up, then run `sparsemod db upgrade --database {safe_url(url)}`."
        )
    command.upgrade(_alembic_config(connection, url), "head")
    return current, head


def upgrade_database(url: str) -> tuple[str, str]:
    """Bring a database to the code's schema revision (``sparsemod db upgrade``).

    Args:
        url: the database URL.

    Returns:
        ``(from, to)``: the revision found (``"base"`` for an empty database) and the one
        it is at now; equal when there was nothing to do.

    Raises:
        StoreError: the database is not a sparsemod store, is newer than the code, or
            cannot be opened.
        ConfigError: the URL is not valid.
    """
    engine = make_engine(url)
    try:
        return open_database(engine, url, upgrade=True)
    finally:
        engine.dispose()


def open_database(engine: Engine, url: str, upgrade: bool) -> tuple[str, str]:
    """Check (and create or upgrade, as allowed) the schema of the database of ``engine``.

    Returns:
        ``(from, to)`` revisions, as :func:`upgrade_database`.

    Raises:
        StoreError: the schema is not the code's (see :func:`_prepare`), or the database
            cannot be opened.
    """
    try:
        with _schema_lock(engine) as connection:
            return _prepare(connection, url, upgrade)
    except exc.OperationalError as e:
        # Unreachable server, unwritable file, lock held past the busy timeout: the user's
        # to fix, so a one-line message rather than a traceback.
        raise StoreError(f"cannot open database {safe_url(url)}: {e.orig}") from e


@contextlib.contextmanager
def driver_errors(url: str) -> Iterator[None]:
    """Turn a driver's error inside the block into a :class:`StoreError` naming the database.

    Integrity errors pass through unchanged: the store's callers turn a broken unique
    constraint into a ``ConfigError`` that says which value was taken.

    Raises:
        StoreError: the driver failed (``sqlalchemy.exc.DBAPIError``, for example a lock
            held past the busy timeout, a file that cannot be written, a lost server).
    """
    try:
        yield
    except exc.IntegrityError:
        raise
    except exc.DBAPIError as e:
        raise StoreError(f"cannot read or write database {safe_url(url)}: {e.orig}") from e
