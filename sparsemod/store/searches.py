"""The search methods of :class:`~sparsemod.store.Store`: create, read, update and claim."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from sparsemod.errors import ConfigError, DataError
from sparsemod.store import checks
from sparsemod.store.base import StoreBase
from sparsemod.store.records import SEARCH_STATUSES, SearchRecord
from sparsemod.store.tables import SearchRow, utcnow

_CLAIM_ATTEMPTS = 100


def search_row(session: Session, search_id: int) -> SearchRow:
    """The row of a search.

    Raises:
        DataError: there is no such search.
    """
    row = session.get(SearchRow, search_id)
    if row is None:
        raise DataError(f"no search with id {search_id}")
    return row


def search_record(row: SearchRow) -> SearchRecord:
    """A search row as its frozen record."""
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


class SearchMethods(StoreBase):
    """A store's searches (see :class:`~sparsemod.store.Store`)."""

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
        checks.text(name, "search name")
        checks.text(problem, "problem")
        checks.status(status, SEARCH_STATUSES, "search status")
        if owner is not None:
            checks.text(owner, "owner")
        objectives = list(objectives)
        if not objectives or not all(isinstance(o, str) and o for o in objectives):
            raise ConfigError(f"objectives must be a non-empty list of names, got {objectives!r}")
        ref_json = None
        if ref_point is not None:
            ref_json = checks.dumps(checks.ref_point(ref_point, len(objectives)), "ref_point")
        now = utcnow()
        row = SearchRow(
            name=name,
            problem=problem,
            config=checks.dumps(dict(config), "config"),
            objectives=checks.dumps(objectives, "objectives"),
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

    def get_search(self, search_id: int) -> SearchRecord:
        """One search by id.

        Raises:
            DataError: there is no such search.
        """
        with self._tx() as session:
            return search_record(search_row(session, search_id))

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
            return None if row is None else search_record(row)

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
            query = query.where(
                SearchRow.status == checks.status(status, SEARCH_STATUSES, "status")
            )
        query = query.limit(checks.integer(limit, "limit")).offset(checks.integer(offset, "offset"))
        with self._tx() as session:
            return [search_record(row) for row in session.scalars(query)]

    def count_searches(self, status: str | None = None) -> int:
        """The number of searches (with this status).

        Raises:
            ConfigError: an unknown status.
        """
        query = select(func.count()).select_from(SearchRow)
        if status is not None:
            query = query.where(
                SearchRow.status == checks.status(status, SEARCH_STATUSES, "status")
            )
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
        checks.status(status, SEARCH_STATUSES, "search status")
        self._update_search(search_id, status=status, error=error, updated_at=utcnow())

    def set_reference_point(self, search_id: int, ref_point: Sequence[float]) -> None:
        """Fix the hypervolume reference point (once the Sobol phase has seen the costs).

        Raises:
            ConfigError: not one finite number per objective.
            DataError: there is no such search.
        """
        n = len(self.get_search(search_id).objectives)
        values = checks.ref_point(ref_point, n)
        self._update_search(
            search_id, ref_point=checks.dumps(values, "ref_point"), updated_at=utcnow()
        )

    def set_search_config(self, search_id: int, config: Mapping[str, Any]) -> None:
        """Replace a search's stored config (a resume that changed what it may change).

        Raises:
            ConfigError: the config is not JSON data.
            DataError: there is no such search.
        """
        self._update_search(
            search_id, config=checks.dumps(dict(config), "config"), updated_at=utcnow()
        )

    def set_sobol_drawn(self, search_id: int, n: int) -> None:
        """Record how many Sobol points were drawn, so a resume continues the sequence.

        Raises:
            ConfigError: ``n`` is not a non-negative integer.
            DataError: there is no such search.
        """
        self._update_search(search_id, sobol_drawn=checks.integer(n, "sobol_drawn"))

    def heartbeat(self, search_id: int) -> None:
        """Say the search's runner is alive (a worker calls this every few seconds).

        Raises:
            DataError: there is no such search.
        """
        self._update_search(search_id, heartbeat_at=utcnow())

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
        checks.text(worker, "worker")
        if not stale_after_s >= 0:
            raise ConfigError(f"stale_after_s must be >= 0, got {stale_after_s!r}")
        for _ in range(_CLAIM_ATTEMPTS):
            now = utcnow()
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
                    return search_record(search_row(session, search_id))
            # Lost the race for this one: another worker took it; look again.
        return None
