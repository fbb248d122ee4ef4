"""Searches: submit, list, get, cancel; their trials, Pareto set and CSV exports."""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response, status

from server import links, submission, tables
from server import progress as progress_mod
from server.deps import SettingsDep, StoreDep, require_writable
from server.errors import ApiError
from server.schemas import (
    MAX_ID,
    MAX_OFFSET,
    MAX_PAGE,
    HypervolumeOut,
    HypervolumePoint,
    ParetoOut,
    SearchCreate,
    SearchCreated,
    SearchDetail,
    SearchesPage,
    SearchOut,
    SearchStatus,
    TrialOut,
    TrialsPage,
    TrialStatus,
    error,
    public_config,
    search_fields,
)
from sparsemod.core.vocabulary import FINISHED, METRICS
from sparsemod.store import SearchRecord, Store

router = APIRouter(prefix="/searches", tags=["searches"])

SearchId = Annotated[int, Path(ge=1, le=MAX_ID, description="the search's id")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="page size")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]

_NOT_FOUND = {404: error("no search with this id")}
_INVALID = {422: error("a parameter is not valid")}
_FINISHED = FINISHED
SortKey = Literal[("index", *METRICS)]  # type: ignore[valid-type]


class CSVResponse(Response):
    media_type = "text/csv"


@router.post(
    "",
    dependencies=[Depends(require_writable)],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SearchCreated,
    responses={
        202: links.response("queued; Location says where to poll it", links.to_search("/id")),
        403: error("the server is read-only"),
        400: error("the body is not UTF-8 JSON text"),
        413: error("the body is over the server's size limit"),
        422: error("a field is not valid or over a budget"),
    },
)
def submit_search(
    body: SearchCreate, store: StoreDep, settings: SettingsDep, response: Response
) -> Any:
    """Queue a search for a worker. The config is checked as a config.ini would be."""
    cfg = submission.validate(body, settings)
    search_id = store.create_search(
        cfg.name,
        cfg.problem,
        asdict(cfg),
        cfg.objective_names,
        ref_point=list(cfg.ref_point) if cfg.ref_point else None,
        status="queued",
    )
    url = f"/api/v1/searches/{search_id}"
    response.headers["Location"] = url
    return SearchCreated(id=search_id, name=cfg.name, status="queued", url=url)


@router.get(
    "",
    response_model=SearchesPage,
    responses=_INVALID | {200: links.response("a page of searches", links.to_search("/data/0/id"))},
)
def list_searches(
    store: StoreDep,
    status: Annotated[SearchStatus | None, Query(description="only this status")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """Searches, newest first."""
    rows = store.list_searches(status, limit, offset)
    return SearchesPage(
        data=[SearchOut.from_record(r) for r in rows],
        count=store.count_searches(status),
        limit=limit,
        offset=offset,
    )


@router.get(
    "/{search_id}",
    response_model=SearchDetail,
    responses=_NOT_FOUND
    | _INVALID
    | {
        200: links.response(
            "the search",
            links.to_search("/id", exclude=("get_search",))
            | links.to_trial("/best/id", prefix="Best"),
        )
    },
)
def get_search(search_id: SearchId, store: StoreDep) -> Any:
    """A search: status, phase, trials done of planned, hypervolume, best so far, error."""
    rec = store.get_search(search_id)
    p = progress_mod.progress(store, rec)
    pareto = p.pareto_ids
    return SearchDetail(
        **search_fields(rec),
        config=public_config(rec.config),
        ref_point=rec.ref_point,
        phase=p.phase,
        trials_done=p.completed + p.failed + p.stopped,
        trials_completed=p.completed,
        trials_failed=p.failed,
        trials_stopped=p.stopped,
        trials_running=p.running,
        hypervolume=p.hypervolume,
        pareto_size=len(pareto),
        best=None if p.best is None else TrialOut.from_record(p.best, p.best.id in pareto),
    )


def _stale(rec: SearchRecord, after_s: float) -> bool:
    beat = rec.heartbeat_at
    return beat is None or datetime.now(UTC) - beat > timedelta(seconds=after_s)


@router.post(
    "/{search_id}/cancel",
    dependencies=[Depends(require_writable)],
    response_model=SearchOut,
    responses=_NOT_FOUND
    | _INVALID
    | {
        200: links.response("cancelled, or cancelling", links.to_search("/id")),
        403: error("the server is read-only"),
        409: error("the search has finished"),
    },
)
def cancel_search(search_id: SearchId, store: StoreDep, settings: SettingsDep) -> Any:
    """Cancel a search: a queued one at once; a running one stops after its current trial
    (status ``cancelling``, then ``cancelled``)."""
    rec = store.get_search(search_id)
    if rec.status in _FINISHED:
        raise ApiError(
            status.HTTP_409_CONFLICT,
            f"search {search_id} has status {rec.status}: only a queued or running search can be "
            "cancelled",
            "status",
        )
    if rec.status == "queued":
        store.set_search_status(search_id, "cancelled")
    elif rec.status == "running":
        store.set_search_status(search_id, "cancelling")
    elif _stale(rec, settings.stale_after_s):
        # Cancelling, and its worker died: nobody is left to finish the cancellation.
        store.set_search_status(search_id, "cancelled")
    return SearchOut.from_record(store.get_search(search_id))


def _trials_of(store: Store, rec: SearchRecord, records: list) -> list[TrialOut]:
    pareto = progress_mod.progress(store, rec).pareto_ids
    return [TrialOut.from_record(t, t.id in pareto) for t in records]


@router.get(
    "/{search_id}/trials",
    response_model=TrialsPage,
    responses=_NOT_FOUND
    | _INVALID
    | {200: links.response("a page of trials", links.to_trial("/data/0/id"))},
)
def list_trials(
    search_id: SearchId,
    store: StoreDep,
    status: Annotated[TrialStatus | None, Query(description="only this status")] = None,
    phase: Annotated[
        str | None,
        Query(pattern=r"^[a-z_]+$", max_length=32, description="only this phase (sobol, gp...)"),
    ] = None,
    sort: Annotated[
        SortKey, Query(description="order by the index or by a metric (no value: last)")
    ] = "index",
    order: Annotated[Literal["asc", "desc"], Query(description="ascending or not")] = "asc",
    limit: Limit = 100,
    offset: Offset = 0,
) -> Any:
    """A search's trials, by index or by a metric, filtered by status and phase."""
    rec = store.get_search(search_id)
    if phase is None and sort == "index" and order == "asc":
        rows = store.list_trials(search_id, status, limit, offset)
        count = store.count_trials(search_id, status)
    else:
        # Filtered and sorted here: a search has at most thousands of trials.
        every = store.list_trials(search_id, status)
        if phase is not None:
            every = [t for t in every if t.phase == phase]
        every.sort(key=lambda t: t.index, reverse=order == "desc")
        if sort != "index":
            known = [t for t in every if _finite(t.metrics.get(sort))]
            known.sort(key=lambda t: t.metrics[sort], reverse=order == "desc")
            every = known + [t for t in every if not _finite(t.metrics.get(sort))]
        rows, count = every[offset : offset + limit], len(every)
    return TrialsPage(data=_trials_of(store, rec, rows), count=count, limit=limit, offset=offset)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


@router.get(
    "/{search_id}/hypervolume",
    response_model=HypervolumeOut,
    responses=_NOT_FOUND | _INVALID,
)
def hypervolume_history(search_id: SearchId, store: StoreDep) -> Any:
    """The hypervolume after each completed trial, in the order the trials completed."""
    rec = store.get_search(search_id)
    data = [
        HypervolumePoint(index=index, phase=phase, hypervolume=hv)
        for index, phase, hv in progress_mod.hypervolume_history(store, rec)
    ]
    return HypervolumeOut(data=data, count=len(data), ref_point=rec.ref_point)


@router.get(
    "/{search_id}/pareto",
    response_model=ParetoOut,
    responses=_NOT_FOUND
    | _INVALID
    | {200: links.response("the Pareto members", links.to_trial("/data/0/id"))},
)
def pareto(search_id: SearchId, store: StoreDep) -> Any:
    """The completed trials no other completed trial dominates, by index."""
    rec = store.get_search(search_id)
    p = progress_mod.progress(store, rec)
    data = [TrialOut.from_record(t, True) for t in p.pareto]
    return ParetoOut(data=data, count=len(data), hypervolume=p.hypervolume)


def _csv(text: str, search_id: int, what: str) -> CSVResponse:
    return CSVResponse(
        text,
        headers={"Content-Disposition": f'attachment; filename="search_{search_id}_{what}.csv"'},
    )


@router.get(
    "/{search_id}/trials.csv",
    response_class=CSVResponse,
    responses=_NOT_FOUND | _INVALID | {200: {"description": "trials.csv, as sparsemod export"}},
)
def trials_csv(search_id: SearchId, store: StoreDep) -> CSVResponse:
    """Every trial as CSV, the columns of ``trials.csv``."""
    return _csv(tables.trials_csv(store, store.get_search(search_id)), search_id, "trials")


@router.get(
    "/{search_id}/pareto.csv",
    response_class=CSVResponse,
    responses=_NOT_FOUND | _INVALID | {200: {"description": "pareto.csv, as sparsemod export"}},
)
def pareto_csv(search_id: SearchId, store: StoreDep) -> CSVResponse:
    """The Pareto members as CSV, with their test error."""
    return _csv(tables.pareto_csv(store, store.get_search(search_id)), search_id, "pareto")
