"""The read methods of :class:`~sparsemod.store.Store`: trials, their models and histories.

Trials come back with all their facts, read in a few queries per call (ids in chunks)
rather than one query per trial.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sparsemod.errors import DataError
from sparsemod.store import checks
from sparsemod.store.base import StoreBase
from sparsemod.store.records import TRIAL_STATUSES, ModelRecord, TrialRecord
from sparsemod.store.tables import (
    HistoryRow,
    MetricRow,
    ModelRow,
    ParamRow,
    PredictionRow,
    TrialRow,
)

_IN_CHUNK = 500  # ids per IN (...) list, far below every backend's parameter limit


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), _IN_CHUNK):
        yield ids[start : start + _IN_CHUNK]


def trial_records(session: Session, rows: Sequence[TrialRow]) -> list[TrialRecord]:
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
            duplicate_of=row.duplicate_of,
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


class QueryMethods(StoreBase):
    """Reading a search's trials, models and histories (see :class:`~sparsemod.store.Store`)."""

    def get_trial(self, trial_id: int) -> TrialRecord:
        """One trial by id.

        Raises:
            DataError: there is no such trial.
        """
        with self._tx() as session:
            row = session.get(TrialRow, trial_id)
            if row is None:
                raise DataError(f"no trial with id {trial_id}")
            return trial_records(session, [row])[0]

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
            query = query.where(TrialRow.status == checks.status(status, TRIAL_STATUSES, "status"))
        if limit is not None:
            query = query.limit(checks.integer(limit, "limit"))
        if offset:
            query = query.offset(checks.integer(offset, "offset"))
        with self._tx() as session:
            return trial_records(session, list(session.scalars(query)))

    def count_trials(self, search_id: int, status: str | None = None) -> int:
        """The number of a search's trials (with this status).

        Raises:
            ConfigError: an unknown status.
        """
        query = select(func.count()).select_from(TrialRow).where(TrialRow.search_id == search_id)
        if status is not None:
            query = query.where(TrialRow.status == checks.status(status, TRIAL_STATUSES, "status"))
        with self._tx() as session:
            return int(session.scalar(query) or 0)

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
