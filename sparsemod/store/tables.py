"""The store's tables: SQLAlchemy declarative models, one row per fact.

* ``searches``: one row per search, the validated config as JSON text.
* ``trials``: one row per trial, unique ``(search_id, index)``.
* ``trial_params``, ``trial_metrics``, ``trial_predictions``: one row per parameter,
  measured metric and predicted cost, keyed by ``(trial_id, name)``. Parameter values are
  JSON text, so ``3``, ``3.0`` and ``"3"`` come back as they went in.
* ``models``: the deployed bytes of Pareto members only.
* ``histories``: one row per epoch / pruning stage.

The migrations (``sparsemod/migrations``) must create exactly these; a test compares them.
Datetimes are stored as naive UTC and come back aware (``tzinfo=UTC``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sparsemod.store.records import SEARCH_STATUSES, TRIAL_STATUSES

NAME_MAX = 255  # names and short texts: the length of their String columns


def utcnow() -> datetime:
    """The current time, aware, in UTC (what the datetime columns hold)."""
    return datetime.now(UTC)


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
    name: Mapped[str] = mapped_column(String(NAME_MAX), index=True)
    problem: Mapped[str] = mapped_column(String(NAME_MAX))
    config: Mapped[str] = mapped_column(Text)
    objectives: Mapped[str] = mapped_column(Text)
    ref_point: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    owner: Mapped[str | None] = mapped_column(String(NAME_MAX))
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
    duplicate_of: Mapped[int | None] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(BigInteger)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class _Fact:
    """Columns shared by the one-row-per-fact tables keyed by ``(trial_id, name)``."""

    trial_id: Mapped[int] = mapped_column(
        ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(NAME_MAX), primary_key=True)


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
    stage: Mapped[str] = mapped_column(String(NAME_MAX))
    epoch: Mapped[int] = mapped_column(Integer)
    loss: Mapped[float | None] = mapped_column(Float)
    val_accuracy: Mapped[float | None] = mapped_column(Float)
    sparsity: Mapped[float | None] = mapped_column(Float)
    extra: Mapped[str | None] = mapped_column(Text)
