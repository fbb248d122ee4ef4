"""The trial methods of :class:`~sparsemod.store.Store` that write: start, complete, amend.

Each call is one transaction: a round of trials is written whole or not at all, and a
completed trial has all its rows (metrics, history, model) or none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, exc, insert, select, update

from sparsemod.errors import ConfigError, DataError
from sparsemod.store import checks
from sparsemod.store.base import StoreBase
from sparsemod.store.records import NewTrial
from sparsemod.store.searches import search_row
from sparsemod.store.tables import (
    HistoryRow,
    MetricRow,
    ModelRow,
    ParamRow,
    PredictionRow,
    TrialRow,
    utcnow,
)


class TrialMethods(StoreBase):
    """Recording a search's trials (see :class:`~sparsemod.store.Store`)."""

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
        duplicate_of: int | None = None,
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
            duplicate_of: the index of the earlier trial of the same network, whose result
                this one takes without training.

        Returns:
            The trial's id.

        Raises:
            ConfigError: the index is taken in this search, or a bad argument.
            DataError: there is no such search.
        """
        new = NewTrial(index, phase, params, parent_index, morph, seed, predicted, duplicate_of)
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
            checks.integer(t.index, "trial index")
            checks.text(t.phase, "phase", max_len=32)
            if t.parent_index is not None:
                checks.integer(t.parent_index, "parent_index")
            if t.duplicate_of is not None:
                checks.integer(t.duplicate_of, "duplicate_of")
            checks.integer(t.seed, "seed", minimum=None)
            values = [
                (checks.text(k, "parameter name"), checks.dumps(v, f"parameter {k!r}"))
                for k, v in t.params.items()
            ]
            checked.append((t, values, checks.facts(t.predicted, "prediction")))
        drawn = None if sobol_drawn is None else checks.integer(sobol_drawn, "sobol_drawn")
        ids: list[int] = []
        try:
            with self._tx() as session:
                search = search_row(session, search_id)
                for t, param_values, predictions in checked:
                    row = TrialRow(
                        search_id=search_id,
                        index=t.index,
                        phase=t.phase,
                        status="running",
                        parent_index=t.parent_index,
                        morph=t.morph,
                        duplicate_of=t.duplicate_of,
                        seed=t.seed,
                        failure_reason=None,
                        created_at=utcnow(),
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
            status: ``completed``, ``failed`` or ``stopped`` (early stopping).
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
        checks.status(status, ("completed", "failed", "stopped"), "completed trial status")
        metric_values = checks.facts(metrics, "metric")
        history_rows = checks.history_rows(trial_id, history)
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
                "format": checks.text(fmt, "model format", max_len=32),
                "data": data,
                "sha256": hashlib.sha256(data).hexdigest(),
                "meta": checks.dumps(dict(meta), "model meta"),
                "size": len(data),
            }
        drop = sorted({checks.integer(i, "drop_models id", minimum=None) for i in drop_models})
        if trial_id in drop:
            raise ConfigError(f"drop_models holds the completed trial {trial_id} itself")
        with self._tx() as session:
            # Conditional on 'running': of two completions racing, one wins, one is refused.
            result = session.execute(
                update(TrialRow)
                .where(TrialRow.id == trial_id, TrialRow.status == "running")
                .values(status=status, finished_at=utcnow(), failure_reason=failure_reason),
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
            row = session.get(TrialRow, checks.integer(trial_id, "trial id"))
            if row is None:
                raise DataError(f"no trial with id {trial_id}")
            row.morph = morph

    def record_metrics(self, trial_id: int, metrics: Mapping[str, float | None]) -> None:
        """Add or replace metrics of a finished trial (the test score of a Pareto member).

        Raises:
            ConfigError: an unknown metric, or the trial is still running.
            DataError: no such trial.
        """
        values = checks.facts(metrics, "metric")
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
