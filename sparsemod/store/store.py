"""The durable store: searches, trials and their facts in one SQL database.

The store is the single source of truth of a search (a resumed search is rebuilt from it),
and the only module of sparsemod that imports SQLAlchemy or writes SQL. Everything it
hands out is a frozen record (:class:`SearchRecord`, :class:`TrialRecord`,
:class:`ModelRecord`), never an ORM object, so no caller can hold a session open or write
behind the store's back.

Layout (one row per fact, no pickles, JSON text only where a value has no fixed type):

* ``searches``: one row per search, the validated config as JSON text.
* ``trials``: one row per trial, unique ``(search_id, index)``.
* ``trial_params``, ``trial_metrics``, ``trial_predictions``: one row per parameter,
  measured metric and predicted cost, keyed by ``(trial_id, name)``. Parameter values are
  JSON text, so ``3``, ``3.0`` and ``"3"`` come back as they went in.
* ``models``: the deployed bytes of Pareto members only.
* ``histories``: one row per epoch / pruning stage.

Datetimes are stored as naive UTC and come back aware (``tzinfo=UTC``). The schema is
versioned with Alembic (``sparsemod/migrations``); a store refuses a database whose
revision is not the code's, the way Optuna's ``RDBStorage`` does, and says which command
upgrades it.

SQLite (the default, one file next to the results) runs in WAL mode with foreign keys on
and a 30 s busy timeout, so a worker, the API process and a CLI can share one file.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    exc,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

from sparsemod.errors import ConfigError, DataError, SparsemodError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "METRICS",
    "SEARCH_STATUSES",
    "TRIAL_STATUSES",
    "ModelRecord",
    "SearchRecord",
    "Store",
    "StoreError",
    "TrialRecord",
    "default_url",
    "head_revision",
    "upgrade_database",
]

SEARCH_STATUSES = ("queued", "running", "cancelling", "cancelled", "done", "failed")
TRIAL_STATUSES = ("running", "completed", "failed")
METRICS = (
    "error",
    "accuracy_val",
    "accuracy_val_float",
    "accuracy_test",
    "model_size_bytes",
    "dense_size_bytes",
    "working_memory_bytes",
    "flops",
    "latency_s",
    "sparsity",
    "train_seconds",
    "total_seconds",
)
HISTORY_KEYS = ("stage", "epoch", "loss", "val_accuracy", "sparsity")

# Tests point this at a copy with an extra revision to exercise the version check.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

_ENV_URL = "SPARSEMOD_DATABASE_URL"
_BUSY_TIMEOUT_MS = 30_000
_CLAIM_ATTEMPTS = 100
_IN_CHUNK = 500  # ids per IN (...) list, far below every backend's parameter limit
_NAME_MAX = 255

# Alembic logs at INFO as it is imported ("setup plugin ...") and each time a store opens
# ("Context impl SQLiteImpl."); sparsemod prints its own lines, so only Alembic's warnings
# get through. Alembic is imported lazily, below, so that this comes first.
logging.getLogger("alembic").setLevel(logging.WARNING)


class StoreError(SparsemodError):
    """The database cannot be used as it is: wrong schema revision or not a sparsemod store.

    The message names the database, its revision, the code's revision and what to do.
    """


# --------------------------------------------------------------------------- records


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


# ---------------------------------------------------------------------------- schema


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored as naive UTC and read back aware.

    SQLite has no time zones and PostgreSQL's ``timestamp`` drops them; storing UTC
    everywhere keeps comparisons (stale heartbeats) right on both.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    """Declarative base of the store's tables (the migrations must create the same)."""

    # Fixed constraint names, so a later migration can find and alter them on every backend.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class SearchRow(Base):
    __tablename__ = "searches"
    __table_args__ = (CheckConstraint(_in("status", SEARCH_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(_NAME_MAX), index=True)
    problem: Mapped[str] = mapped_column(String(_NAME_MAX))
    config: Mapped[str] = mapped_column(Text)
    objectives: Mapped[str] = mapped_column(Text)
    ref_point: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    owner: Mapped[str | None] = mapped_column(String(_NAME_MAX))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sobol_drawn: Mapped[int] = mapped_column(Integer)


class TrialRow(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("search_id", "index"),
        CheckConstraint(_in("status", TRIAL_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    parent_index: Mapped[int | None] = mapped_column(Integer)
    morph: Mapped[str | None] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(BigInteger)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class _Fact:
    """Columns shared by the one-row-per-fact tables keyed by ``(trial_id, name)``."""

    trial_id: Mapped[int] = mapped_column(
        ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(_NAME_MAX), primary_key=True)


# Without a rowid SQLite keeps each fact once, in the key's b-tree (about half the bytes
# of a rowid table plus a unique index); other backends ignore the option.
_WITHOUT_ROWID: dict[str, Any] = {"sqlite_with_rowid": False}


class ParamRow(_Fact, Base):
    __tablename__ = "trial_params"
    __table_args__ = dict(_WITHOUT_ROWID)

    value: Mapped[str] = mapped_column(Text)


class MetricRow(_Fact, Base):
    __tablename__ = "trial_metrics"
    __table_args__ = dict(_WITHOUT_ROWID)

    value: Mapped[float] = mapped_column(Float)


class PredictionRow(_Fact, Base):
    __tablename__ = "trial_predictions"
    __table_args__ = dict(_WITHOUT_ROWID)

    value: Mapped[float] = mapped_column(Float)


class ModelRow(Base):
    __tablename__ = "models"

    trial_id: Mapped[int] = mapped_column(
        ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True
    )
    format: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    meta: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)


class HistoryRow(Base):
    __tablename__ = "histories"
    __table_args__ = (UniqueConstraint("trial_id", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(_NAME_MAX))
    epoch: Mapped[int] = mapped_column(Integer)
    loss: Mapped[float | None] = mapped_column(Float)
    val_accuracy: Mapped[float | None] = mapped_column(Float)
    sparsity: Mapped[float | None] = mapped_column(Float)
    extra: Mapped[str | None] = mapped_column(Text)


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


def _make_engine(url: str) -> Engine:
    parsed = _parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        try:
            # pool_pre_ping: a worker holds its store for hours; servers drop idle links.
            return create_engine(parsed, pool_pre_ping=True)
        except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as e:
            raise ConfigError(f"cannot open database {_safe(url)}: {e}") from e
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


def _safe(url: str | URL) -> str:
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
                f"database {_safe(url)} has tables ({', '.join(tables)}) but no sparsemod "
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
            f"database {_safe(url)} is at schema revision {current!r}, which this sparsemod "
            f"does not know (its newest is {head!r}): it was written by a newer sparsemod. "
            "Upgrade sparsemod to use it."
        )
    if not upgrade:
        raise StoreError(
            f"database {_safe(url)} is at schema revision {current!r}, this sparsemod needs "
            f"{head!r}. Back it up, then run `sparsemod db upgrade --database {_safe(url)}`."
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
    engine = _make_engine(url)
    try:
        return _open(engine, url, upgrade=True)
    finally:
        engine.dispose()


def _open(engine: Engine, url: str, upgrade: bool) -> tuple[str, str]:
    try:
        with _schema_lock(engine) as connection:
            return _prepare(connection, url, upgrade)
    except exc.OperationalError as e:
        # Unreachable server, unwritable file, lock held past the busy timeout: the user's
        # to fix, so a one-line message rather than a traceback.
        raise StoreError(f"cannot open database {_safe(url)}: {e.orig}") from e


# -------------------------------------------------------------------------- helpers


def _now() -> datetime:
    return datetime.now(UTC)


def _json_default(value: Any) -> Any:
    # NumPy scalars (Ax hands some out) are not JSON types but know their Python value.
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), default=_json_default)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what} must be JSON data (numbers, strings, lists, dicts): {e}") from e


def _text(value: Any, what: str, *, max_len: int = _NAME_MAX, empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not empty) or len(value) > max_len:
        raise ConfigError(
            f"{what} must be a {'' if empty else 'non-empty '}string of at most {max_len} "
            f"characters, got {value!r}"
        )
    return value


def _int(value: Any, what: str, *, minimum: int | None = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{what} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{what} must be >= {minimum}, got {value}")
    return value


def _status(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _facts(values: Mapping[str, Any] | None, what: str) -> list[tuple[str, float]]:
    """Metric-like values to ``(name, float)`` pairs, leaving out the unmeasured ones.

    ``None`` and NaN mean "not measured": SQLite would store NaN as NULL anyway.
    """
    pairs = []
    for name, value in (values or {}).items():
        if name not in METRICS:
            raise ConfigError(f"{what} {name!r} is not one of {', '.join(METRICS)}")
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{what} {name!r} must be a number, got {value!r}") from e
        if not math.isnan(number):
            pairs.append((name, number))
    return pairs


def _optional_float(value: Any, what: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what} must be a number or None, got {value!r}") from e
    return None if math.isnan(number) else number


def _history_rows(trial_id: int, history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for step, entry in enumerate(history):
        if "stage" not in entry or "epoch" not in entry:
            raise ConfigError(f"history entry {step} needs 'stage' and 'epoch': {dict(entry)!r}")
        extra = {k: v for k, v in entry.items() if k not in HISTORY_KEYS}
        rows.append(
            {
                "trial_id": trial_id,
                "step": step,
                "stage": _text(entry["stage"], f"history entry {step} stage"),
                "epoch": _int(entry["epoch"], f"history entry {step} epoch", minimum=None),
                "loss": _optional_float(entry.get("loss"), f"history entry {step} loss"),
                "val_accuracy": _optional_float(
                    entry.get("val_accuracy"), f"history entry {step} val_accuracy"
                ),
                "sparsity": _optional_float(
                    entry.get("sparsity"), f"history entry {step} sparsity"
                ),
                "extra": _dumps(extra, f"history entry {step}") if extra else None,
            }
        )
    return rows


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), _IN_CHUNK):
        yield ids[start : start + _IN_CHUNK]


def _search_record(row: SearchRow) -> SearchRecord:
    return SearchRecord(
        id=row.id,
        name=row.name,
        problem=row.problem,
        config=json.loads(row.config),
        objectives=json.loads(row.objectives),
        ref_point=None if row.ref_point is None else json.loads(row.ref_point),
        status=row.status,
        owner=row.owner,
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        heartbeat_at=row.heartbeat_at,
        sobol_drawn=row.sobol_drawn,
    )


# ---------------------------------------------------------------------------- store


class Store:
    """The sparsemod database.

    Every method is its own transaction; records are detached snapshots. A ``Store`` may
    be shared by threads (each call takes its own session and pooled connection) and many
    stores, in many processes, may open one database. An in-memory SQLite store has one
    connection and lives as long as the ``Store``: it is meant for tests.

    Args:
        url: a SQLAlchemy URL (``sqlite:///path/sparsemod.db``, ``sqlite://`` for memory,
            ``postgresql+psycopg://...``). A SQLite file's folder is created.
        upgrade: migrate a database at an older schema revision instead of refusing it.

    Raises:
        StoreError: the database is not a sparsemod store, is newer than the code, or is
            older and ``upgrade`` is false (the message gives the command that upgrades it).
        ConfigError: the URL is not valid or names a driver that is not installed.
    """

    def __init__(self, url: str, *, upgrade: bool = False) -> None:
        self.url = url
        self._engine = _make_engine(url)
        try:
            _open(self._engine, url, upgrade)
        except BaseException:
            self._engine.dispose()
            raise
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Store({_safe(self.url)!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection (a closed store can be reopened by a new one)."""
        self._engine.dispose()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def vacuum(self) -> None:
        """Give the space of deleted rows (dropped models) back to the file system.

        On SQLite the write-ahead log is checkpointed into the file and truncated too, so
        the file's size is the database's size.
        """
        with self._engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql("VACUUM")
            if self._engine.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    # ------------------------------------------------------------------ searches

    def create_search(
        self,
        name: str,
        problem: str,
        config: Mapping[str, Any],
        objectives: Sequence[str],
        ref_point: Sequence[float] | None = None,
        status: str = "running",
        owner: str | None = None,
    ) -> int:
        """Record a new search.

        Args:
            name: the search's name (several searches may share one).
            problem: the registered problem's name.
            config: the validated configuration (JSON data).
            objectives: objective names, all minimised.
            ref_point: the hypervolume reference point, one value per objective.
            status: ``running`` when the caller runs it now, ``queued`` for a worker.
            owner: who runs it.

        Returns:
            The new search's id.

        Raises:
            ConfigError: a bad name, status, objective list or reference point, or a
                config that is not JSON data.
        """
        _text(name, "search name")
        _text(problem, "problem")
        _status(status, SEARCH_STATUSES, "search status")
        if owner is not None:
            _text(owner, "owner")
        objectives = list(objectives)
        if not objectives or not all(isinstance(o, str) and o for o in objectives):
            raise ConfigError(f"objectives must be a non-empty list of names, got {objectives!r}")
        ref_json = None
        if ref_point is not None:
            ref_json = _dumps(self._ref_point(ref_point, len(objectives)), "ref_point")
        now = _now()
        row = SearchRow(
            name=name,
            problem=problem,
            config=_dumps(dict(config), "config"),
            objectives=_dumps(objectives, "objectives"),
            ref_point=ref_json,
            status=status,
            owner=owner,
            error=None,
            created_at=now,
            updated_at=now,
            heartbeat_at=None,
            sobol_drawn=0,
        )
        with self._tx() as session:
            session.add(row)
            session.flush()
            return row.id

    @staticmethod
    def _ref_point(ref_point: Sequence[float], n: int) -> list[float]:
        try:
            values = [float(v) for v in ref_point]
        except (TypeError, ValueError) as e:
            raise ConfigError(f"ref_point must be numbers, got {ref_point!r}") from e
        if len(values) != n or not all(math.isfinite(v) for v in values):
            raise ConfigError(
                f"ref_point must hold {n} finite numbers (one per objective), got {ref_point!r}"
            )
        return values

    def _search_row(self, session: Session, search_id: int) -> SearchRow:
        row = session.get(SearchRow, search_id)
        if row is None:
            raise DataError(f"no search with id {search_id}")
        return row

    def get_search(self, search_id: int) -> SearchRecord:
        """One search by id.

        Raises:
            DataError: there is no such search.
        """
        with self._tx() as session:
            return _search_record(self._search_row(session, search_id))

    def find_search(self, name: str) -> SearchRecord | None:
        """The newest search with this name, or ``None``."""
        query = (
            select(SearchRow)
            .where(SearchRow.name == name)
            .order_by(SearchRow.created_at.desc(), SearchRow.id.desc())
            .limit(1)
        )
        with self._tx() as session:
            row = session.scalars(query).first()
            return None if row is None else _search_record(row)

    def list_searches(
        self, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[SearchRecord]:
        """Searches, newest first.

        Args:
            status: only searches with this status.
            limit: at most this many.
            offset: skip this many first.

        Raises:
            ConfigError: an unknown status or a negative limit or offset.
        """
        query = select(SearchRow).order_by(SearchRow.created_at.desc(), SearchRow.id.desc())
        if status is not None:
            query = query.where(SearchRow.status == _status(status, SEARCH_STATUSES, "status"))
        query = query.limit(_int(limit, "limit")).offset(_int(offset, "offset"))
        with self._tx() as session:
            return [_search_record(row) for row in session.scalars(query)]

    def count_searches(self, status: str | None = None) -> int:
        """The number of searches (with this status).

        Raises:
            ConfigError: an unknown status.
        """
        query = select(func.count()).select_from(SearchRow)
        if status is not None:
            query = query.where(SearchRow.status == _status(status, SEARCH_STATUSES, "status"))
        with self._tx() as session:
            return int(session.scalar(query) or 0)

    def _update_search(self, search_id: int, **values: Any) -> None:
        with self._tx() as session:
            result = session.execute(
                update(SearchRow).where(SearchRow.id == search_id).values(**values),
                execution_options={"synchronize_session": False},
            )
            if result.rowcount != 1:
                raise DataError(f"no search with id {search_id}")

    def set_search_status(self, search_id: int, status: str, error: str | None = None) -> None:
        """Set a search's status (and its error message, cleared when ``None``).

        Raises:
            ConfigError: an unknown status.
            DataError: there is no such search.
        """
        _status(status, SEARCH_STATUSES, "search status")
        self._update_search(search_id, status=status, error=error, updated_at=_now())

    def set_reference_point(self, search_id: int, ref_point: Sequence[float]) -> None:
        """Fix the hypervolume reference point (once the Sobol phase has seen the costs).

        Raises:
            ConfigError: not one finite number per objective.
            DataError: there is no such search.
        """
        n = len(self.get_search(search_id).objectives)
        values = self._ref_point(ref_point, n)
        self._update_search(search_id, ref_point=_dumps(values, "ref_point"), updated_at=_now())

    def set_search_config(self, search_id: int, config: Mapping[str, Any]) -> None:
        """Replace a search's stored config (a resume that changed what it may change).

        Raises:
            ConfigError: the config is not JSON data.
            DataError: there is no such search.
        """
        self._update_search(search_id, config=_dumps(dict(config), "config"), updated_at=_now())

    def set_sobol_drawn(self, search_id: int, n: int) -> None:
        """Record how many Sobol points were drawn, so a resume continues the sequence.

        Raises:
            ConfigError: ``n`` is not a non-negative integer.
            DataError: there is no such search.
        """
        self._update_search(search_id, sobol_drawn=_int(n, "sobol_drawn"))

    def heartbeat(self, search_id: int) -> None:
        """Say the search's runner is alive (a worker calls this every few seconds).

        Raises:
            DataError: there is no such search.
        """
        self._update_search(search_id, heartbeat_at=_now())

    def delete_search(self, search_id: int) -> None:
        """Delete a search and, by cascade, its trials and all their rows.

        Raises:
            DataError: there is no such search.
        """
        with self._tx() as session:
            result = session.execute(delete(SearchRow).where(SearchRow.id == search_id))
            if result.rowcount != 1:
                raise DataError(f"no search with id {search_id}")

    def claim_search(self, worker: str, stale_after_s: float = 60.0) -> SearchRecord | None:
        """Take a search to run: the oldest queued one, else one whose runner died.

        A running search is taken over when it has heartbeated once and not for
        ``stale_after_s`` seconds (a search that never heartbeats is never taken). The
        take is a conditional ``UPDATE`` (same id, status and heartbeat as read), so of
        two workers racing for one search exactly one gets it; the loser tries the next.

        Args:
            worker: the claiming worker's name, stored as the owner.
            stale_after_s: heartbeat age after which a running search's runner is
                considered dead.

        Returns:
            The claimed search (status ``running``, owner ``worker``, heartbeat now), or
            ``None`` when there is nothing to run.

        Raises:
            ConfigError: an empty worker name or a negative ``stale_after_s``.
        """
        _text(worker, "worker")
        if not stale_after_s >= 0:
            raise ConfigError(f"stale_after_s must be >= 0, got {stale_after_s!r}")
        for _ in range(_CLAIM_ATTEMPTS):
            now = _now()
            with self._tx() as session:
                candidate = session.execute(
                    select(SearchRow.id, SearchRow.status, SearchRow.heartbeat_at)
                    .where(SearchRow.status == "queued")
                    .order_by(SearchRow.created_at, SearchRow.id)
                    .limit(1)
                ).first()
                if candidate is None:
                    candidate = session.execute(
                        select(SearchRow.id, SearchRow.status, SearchRow.heartbeat_at)
                        .where(
                            SearchRow.status == "running",
                            SearchRow.heartbeat_at.is_not(None),
                            SearchRow.heartbeat_at < now - timedelta(seconds=stale_after_s),
                        )
                        .order_by(SearchRow.heartbeat_at, SearchRow.id)
                        .limit(1)
                    ).first()
                if candidate is None:
                    return None
                search_id, status, heartbeat_at = candidate
                unchanged = (
                    SearchRow.heartbeat_at.is_(None)
                    if heartbeat_at is None
                    else SearchRow.heartbeat_at == heartbeat_at
                )
                result = session.execute(
                    update(SearchRow)
                    .where(SearchRow.id == search_id, SearchRow.status == status, unchanged)
                    .values(
                        status="running",
                        owner=worker,
                        heartbeat_at=now,
                        updated_at=now,
                        error=None,
                    ),
                    execution_options={"synchronize_session": False},
                )
                if result.rowcount == 1:
                    return _search_record(self._search_row(session, search_id))
            # Lost the race for this one: another worker took it; look again.
        return None

    # -------------------------------------------------------------------- trials

    def add_trial(
        self,
        search_id: int,
        index: int,
        phase: str,
        params: Mapping[str, Any],
        *,
        parent_index: int | None = None,
        morph: str | None = None,
        seed: int = 0,
        predicted: Mapping[str, float] | None = None,
    ) -> int:
        """Record a trial that starts now (status ``running``).

        Args:
            search_id: its search.
            index: its number within the search, unique there.
            phase: how it was proposed (sobol / gp / morph / test).
            params: its parameters (JSON values; types are kept).
            parent_index: the index of the trial it was morphed from.
            morph: a description of the morph.
            seed: its training seed.
            predicted: costs predicted before training, by metric name.

        Returns:
            The trial's id.

        Raises:
            ConfigError: the index is taken in this search, or a bad argument.
            DataError: there is no such search.
        """
        new = NewTrial(index, phase, params, parent_index, morph, seed, predicted)
        return self.add_trials(search_id, [new])[0]

    def add_trials(
        self, search_id: int, trials: Sequence[NewTrial], *, sobol_drawn: int | None = None
    ) -> list[int]:
        """Record the trials of one round together: all of them, or none.

        A search killed while its round is being written leaves no part of the round, so
        a resume proposes the whole round again instead of counting half of it as done.

        Args:
            search_id: their search.
            trials: the round's trials (see :meth:`add_trial` for the fields).
            sobol_drawn: how many Sobol points the search has drawn with this round, set
                in the same transaction.

        Returns:
            The trials' ids, in order.

        Raises:
            ConfigError: an index is taken in this search (or given twice), or a bad
                argument; nothing is written.
            DataError: there is no such search.
        """
        checked = []
        for t in trials:
            _int(t.index, "trial index")
            _text(t.phase, "phase", max_len=32)
            if t.parent_index is not None:
                _int(t.parent_index, "parent_index")
            _int(t.seed, "seed", minimum=None)
            values = [
                (_text(k, "parameter name"), _dumps(v, f"parameter {k!r}"))
                for k, v in t.params.items()
            ]
            checked.append((t, values, _facts(t.predicted, "prediction")))
        drawn = None if sobol_drawn is None else _int(sobol_drawn, "sobol_drawn")
        ids: list[int] = []
        try:
            with self._tx() as session:
                search = self._search_row(session, search_id)
                for t, param_values, predictions in checked:
                    row = TrialRow(
                        search_id=search_id,
                        index=t.index,
                        phase=t.phase,
                        status="running",
                        parent_index=t.parent_index,
                        morph=t.morph,
                        seed=t.seed,
                        failure_reason=None,
                        created_at=_now(),
                        finished_at=None,
                    )
                    session.add(row)
                    session.flush()
                    ids.append(row.id)
                    if param_values:
                        session.execute(
                            insert(ParamRow),
                            [{"trial_id": row.id, "name": k, "value": v} for k, v in param_values],
                        )
                    if predictions:
                        session.execute(
                            insert(PredictionRow),
                            [{"trial_id": row.id, "name": k, "value": v} for k, v in predictions],
                        )
                if drawn is not None:
                    search.sobol_drawn = drawn
        except exc.IntegrityError as e:
            taken = ", ".join(str(t.index) for t in trials)
            raise ConfigError(
                f"search {search_id} already has a trial with index among {taken}"
                if len(trials) > 1
                else f"search {search_id} already has a trial with index {taken}"
            ) from e
        return ids

    def complete_trial(
        self,
        trial_id: int,
        status: str,
        metrics: Mapping[str, float | None],
        *,
        failure_reason: str | None = None,
        history: Sequence[Mapping[str, Any]] = (),
        model: tuple[str, bytes, Mapping[str, Any]] | None = None,
        drop_models: Sequence[int] = (),
    ) -> None:
        """Finish a running trial, in one transaction: all of it is written or none.

        Writes the status and finish time, one metrics row per measured metric, the
        history rows, the model if given, and deletes the models of ``drop_models`` (the
        trials this one pushed out of the Pareto set). After a crash at any moment the
        trial is either complete with all its rows or still ``running`` with none.

        Args:
            trial_id: the trial.
            status: ``completed`` or ``failed``.
            metrics: metric values by name; ``None`` (or NaN) means not measured.
            failure_reason: why it failed.
            history: one mapping per epoch / stage with ``stage`` and ``epoch`` and
                optionally ``loss``, ``val_accuracy``, ``sparsity``; any other keys are
                kept too. Stored in this order.
            model: ``(format, data, meta)`` of the deployed model.
            drop_models: ids of trials of the same search whose models to delete.

        Raises:
            ConfigError: a bad status, metric, history entry or model; the trial is not
                running (a second completion); a ``drop_models`` id that is not a trial of
                this search or is this trial.
            DataError: there is no such trial.
        """
        _status(status, ("completed", "failed"), "completed trial status")
        metric_values = _facts(metrics, "metric")
        history_rows = _history_rows(trial_id, history)
        model_row = None
        if model is not None:
            try:
                fmt, data, meta = model
            except (TypeError, ValueError) as e:
                raise ConfigError("model must be a (format, data, meta) tuple") from e
            if not isinstance(data, bytes | bytearray | memoryview):
                raise ConfigError(f"model data must be bytes, got {type(data).__name__}")
            data = bytes(data)
            model_row = {
                "trial_id": trial_id,
                "format": _text(fmt, "model format", max_len=32),
                "data": data,
                "sha256": hashlib.sha256(data).hexdigest(),
                "meta": _dumps(dict(meta), "model meta"),
                "size": len(data),
            }
        drop = sorted({_int(i, "drop_models id", minimum=None) for i in drop_models})
        if trial_id in drop:
            raise ConfigError(f"drop_models holds the completed trial {trial_id} itself")
        with self._tx() as session:
            # Conditional on 'running': of two completions racing, one wins, one is refused.
            result = session.execute(
                update(TrialRow)
                .where(TrialRow.id == trial_id, TrialRow.status == "running")
                .values(status=status, finished_at=_now(), failure_reason=failure_reason),
                execution_options={"synchronize_session": False},
            )
            if result.rowcount != 1:
                row = session.get(TrialRow, trial_id)
                if row is None:
                    raise DataError(f"no trial with id {trial_id}")
                raise ConfigError(
                    f"trial {trial_id} (index {row.index}) is {row.status!r}, not running: "
                    "it was completed already"
                )
            if metric_values:
                session.execute(
                    insert(MetricRow),
                    [{"trial_id": trial_id, "name": k, "value": v} for k, v in metric_values],
                )
            if history_rows:
                session.execute(insert(HistoryRow), history_rows)
            if model_row is not None:
                session.execute(insert(ModelRow), [model_row])
            if drop:
                search_id = select(TrialRow.search_id).where(TrialRow.id == trial_id)
                ours = set(
                    session.scalars(
                        select(TrialRow.id).where(
                            TrialRow.id.in_(drop), TrialRow.search_id == search_id.scalar_subquery()
                        )
                    )
                )
                if strangers := sorted(set(drop) - ours):
                    raise ConfigError(
                        f"drop_models ids {strangers} are not trials of the search of trial "
                        f"{trial_id}"
                    )
                session.execute(delete(ModelRow).where(ModelRow.trial_id.in_(drop)))

    def set_trial_morph(self, trial_id: int, morph: str) -> None:
        """Replace the description of a trial's morph (a resume that lost its warm start).

        Raises:
            DataError: there is no such trial.
        """
        with self._tx() as session:
            row = session.get(TrialRow, _int(trial_id, "trial id"))
            if row is None:
                raise DataError(f"no trial with id {trial_id}")
            row.morph = morph

    def record_metrics(self, trial_id: int, metrics: Mapping[str, float | None]) -> None:
        """Add or replace metrics of a finished trial (the test score of a Pareto member).

        Raises:
            ConfigError: an unknown metric, or the trial is still running.
            DataError: no such trial.
        """
        values = _facts(metrics, "metric")
        with self._tx() as session:
            row = session.get(TrialRow, trial_id)
            if row is None:
                raise DataError(f"no trial with id {trial_id}")
            if row.status == "running":
                raise ConfigError(f"trial {trial_id} is still running; complete it first")
            names = [k for k, _ in values]
            if names:
                session.execute(
                    delete(MetricRow).where(
                        MetricRow.trial_id == trial_id, MetricRow.name.in_(names)
                    )
                )
                session.execute(
                    insert(MetricRow),
                    [{"trial_id": trial_id, "name": k, "value": v} for k, v in values],
                )

    def _records(self, session: Session, rows: Sequence[TrialRow]) -> list[TrialRecord]:
        """Trial rows with their facts, read in a few queries rather than one per trial."""
        ids = [row.id for row in rows]
        params: dict[int, dict[str, Any]] = {i: {} for i in ids}
        metrics: dict[int, dict[str, float]] = {i: {} for i in ids}
        predicted: dict[int, dict[str, float]] = {i: {} for i in ids}
        with_model: set[int] = set()
        for chunk in _chunks(ids):
            for p in session.execute(
                select(ParamRow.trial_id, ParamRow.name, ParamRow.value).where(
                    ParamRow.trial_id.in_(chunk)
                )
            ):
                params[p.trial_id][p.name] = json.loads(p.value)
            for table, into in ((MetricRow, metrics), (PredictionRow, predicted)):
                for m in session.execute(
                    select(table.trial_id, table.name, table.value).where(table.trial_id.in_(chunk))
                ):
                    into[m.trial_id][m.name] = m.value
            with_model.update(
                session.scalars(select(ModelRow.trial_id).where(ModelRow.trial_id.in_(chunk)))
            )
        return [
            TrialRecord(
                id=row.id,
                search_id=row.search_id,
                index=row.index,
                phase=row.phase,
                status=row.status,
                params=params[row.id],
                parent_index=row.parent_index,
                morph=row.morph,
                seed=row.seed,
                metrics=metrics[row.id],
                predicted=predicted[row.id],
                failure_reason=row.failure_reason,
                created_at=row.created_at,
                finished_at=row.finished_at,
                has_model=row.id in with_model,
            )
            for row in rows
        ]

    def get_trial(self, trial_id: int) -> TrialRecord:
        """One trial by id.

        Raises:
            DataError: there is no such trial.
        """
        with self._tx() as session:
            row = session.get(TrialRow, trial_id)
            if row is None:
                raise DataError(f"no trial with id {trial_id}")
            return self._records(session, [row])[0]

    def list_trials(
        self, search_id: int, status: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[TrialRecord]:
        """A search's trials, by index.

        Args:
            search_id: the search.
            status: only trials with this status.
            limit: at most this many (all when ``None``).
            offset: skip this many first.

        Raises:
            ConfigError: an unknown status or a negative limit or offset.
        """
        query = select(TrialRow).where(TrialRow.search_id == search_id).order_by(TrialRow.index)
        if status is not None:
            query = query.where(TrialRow.status == _status(status, TRIAL_STATUSES, "status"))
        if limit is not None:
            query = query.limit(_int(limit, "limit"))
        if offset:
            query = query.offset(_int(offset, "offset"))
        with self._tx() as session:
            return self._records(session, list(session.scalars(query)))

    def count_trials(self, search_id: int, status: str | None = None) -> int:
        """The number of a search's trials (with this status).

        Raises:
            ConfigError: an unknown status.
        """
        query = select(func.count()).select_from(TrialRow).where(TrialRow.search_id == search_id)
        if status is not None:
            query = query.where(TrialRow.status == _status(status, TRIAL_STATUSES, "status"))
        with self._tx() as session:
            return int(session.scalar(query) or 0)

    def delete_running_trials(self, search_id: int) -> list[int]:
        """Delete the trials still running, with their rows (a resume after a crash).

        Returns:
            The indices removed, ascending: they are proposed again.
        """
        with self._tx() as session:
            indices = list(
                session.scalars(
                    select(TrialRow.index)
                    .where(TrialRow.search_id == search_id, TrialRow.status == "running")
                    .order_by(TrialRow.index)
                )
            )
            if indices:
                session.execute(
                    delete(TrialRow).where(
                        TrialRow.search_id == search_id,
                        TrialRow.status == "running",
                        TrialRow.index.in_(indices),
                    )
                )
            return indices

    def get_model(self, trial_id: int) -> ModelRecord:
        """A trial's stored model.

        Raises:
            DataError: the trial has no stored model, or its bytes do not match their
                checksum.
        """
        with self._tx() as session:
            row = session.get(ModelRow, trial_id)
            if row is None:
                raise DataError(f"trial {trial_id} has no stored model")
            data = bytes(row.data)
            if hashlib.sha256(data).hexdigest() != row.sha256:
                raise DataError(f"the stored model of trial {trial_id} is corrupt (sha256)")
            return ModelRecord(row.trial_id, row.format, data, row.sha256, json.loads(row.meta))

    def model_trial_ids(self, search_id: int) -> list[int]:
        """Ids of the search's trials that have a stored model, ascending."""
        query = (
            select(ModelRow.trial_id)
            .join(TrialRow, TrialRow.id == ModelRow.trial_id)
            .where(TrialRow.search_id == search_id)
            .order_by(ModelRow.trial_id)
        )
        with self._tx() as session:
            return list(session.scalars(query))

    def history(self, trial_id: int) -> list[dict[str, Any]]:
        """A trial's history in the order it was given.

        Returns:
            One dict per entry with ``stage``, ``epoch``, ``loss``, ``val_accuracy``,
            ``sparsity`` and any extra keys that were given.

        Raises:
            DataError: there is no such trial.
        """
        with self._tx() as session:
            if session.get(TrialRow, trial_id) is None:
                raise DataError(f"no trial with id {trial_id}")
            rows = session.scalars(
                select(HistoryRow).where(HistoryRow.trial_id == trial_id).order_by(HistoryRow.step)
            )
            return [
                {
                    "stage": r.stage,
                    "epoch": r.epoch,
                    "loss": r.loss,
                    "val_accuracy": r.val_accuracy,
                    "sparsity": r.sparsity,
                    **(json.loads(r.extra) if r.extra else {}),
                }
                for r in rows
            ]
