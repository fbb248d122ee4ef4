"""Request and response bodies of the API, apart from the store's tables and records.

Responses are built from the store's frozen records (:mod:`sparsemod.store`) by the
``from_*`` helpers here; numbers that JSON cannot carry (NaN, infinity) become ``null``.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from sparsemod.core.vocabulary import SEARCH_STATUSES, TRIAL_STATUSES
from sparsemod.store import SearchRecord, TrialRecord

# The statuses are the core's (sparsemod.core.vocabulary), as the schema's enums.
SearchStatus = Literal[SEARCH_STATUSES]  # type: ignore[valid-type]
TrialStatus = Literal[TRIAL_STATUSES]  # type: ignore[valid-type]
ParamValue = StrictBool | StrictInt | StrictFloat | StrictStr
ConfigScalar = StrictBool | StrictInt | StrictFloat | StrictStr | None
ConfigValue = ConfigScalar | list[StrictBool | StrictInt | StrictFloat | StrictStr]

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]*$"
PROBLEM_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
NAME_MAX = 128
MAX_PAGE = 500
MAX_ID = 2**62  # ids past this would overflow the database's integer before a lookup
MAX_OFFSET = 10**9

_EXAMPLE = {
    "name": "tiny",
    "problem": "digits_cnn",
    "config": {"r1": 1, "r2": 0, "r3": 0, "batch_size": 1, "epochs1": 1, "device": "cpu"},
}


class ErrorOut(BaseModel):
    """Every 4xx answer: what is wrong, and the field it is about when there is one."""

    detail: str = Field(description="one line: the field, the value given, what is allowed")
    field: str | None = Field(None, description="the request field at fault, e.g. config.r1")


ERROR_REF = "#/components/schemas/ErrorOut"


def error(description: str) -> dict[str, Any]:
    """An error answer for a route's ``responses``: JSON :class:`ErrorOut` whatever the
    route's own media type (FastAPI would document a ``model`` as CSV on a CSV route)."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }


class SearchCreate(BaseModel):
    """A search to queue: a registered problem and ``[TRAIN]`` values, never code."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    name: str = Field(
        pattern=NAME_PATTERN,
        min_length=1,
        max_length=NAME_MAX,
        description="the search's name: letters, digits, '_', '.', '-'",
    )
    problem: str = Field(
        pattern=PROBLEM_PATTERN,
        min_length=1,
        max_length=NAME_MAX,
        description="a registered problem (GET /api/v1/problems)",
    )
    config: dict[str, ConfigValue | dict[str, ConfigValue]] = Field(
        default_factory=dict,
        description="[TRAIN] keys of config.ini (r1, r2, r3, epochs1, batch_size, "
        "objectives, ...), flat or as {'TRAIN': {...}}; values as in the file or as JSON "
        "numbers and booleans. name, problem and root are not taken from here.",
    )


class SearchCreated(BaseModel):
    """The answer to a submission: the search is queued for a worker."""

    id: int
    name: str
    status: SearchStatus
    url: str = Field(description="where to poll it")


class SearchOut(BaseModel):
    """A search as listed."""

    id: int
    name: str
    problem: str
    status: SearchStatus
    error: str | None = Field(description="why it failed, for a failed search")
    objectives: list[str]
    trials_total: int = Field(description="the planned budget: (r1 + r2 + r3) * batch_size")
    created_at: datetime
    updated_at: datetime
    heartbeat_at: datetime | None

    @classmethod
    def from_record(cls, rec: SearchRecord) -> SearchOut:
        return cls(**search_fields(rec))


class TrialOut(BaseModel):
    """One trial: its parameters, its measured metrics and whether it is on the front."""

    id: int
    search_id: int
    index: int
    phase: str
    status: TrialStatus
    params: dict[str, ParamValue | None]
    parent_index: int | None
    morph: str | None
    duplicate_of: int | None = Field(
        default=None,
        description="the index of the earlier trial of the same network, whose result this "
        "one took without training",
    )
    seed: int
    metrics: dict[str, float | None]
    predicted: dict[str, float | None]
    failure_reason: str | None
    created_at: datetime
    finished_at: datetime | None
    is_pareto: bool
    model_url: str | None = Field(description="the deployed model, for Pareto members")

    @classmethod
    def from_record(cls, rec: TrialRecord, is_pareto: bool) -> TrialOut:
        return cls(
            id=rec.id,
            search_id=rec.search_id,
            index=rec.index,
            phase=rec.phase,
            status=rec.status,
            params=dict(rec.params),
            parent_index=rec.parent_index,
            morph=rec.morph,
            duplicate_of=rec.duplicate_of,
            seed=rec.seed,
            metrics=_finite(rec.metrics),
            predicted=_finite(rec.predicted),
            failure_reason=rec.failure_reason,
            created_at=rec.created_at,
            finished_at=rec.finished_at,
            is_pareto=is_pareto,
            model_url=f"/api/v1/trials/{rec.id}/model" if rec.has_model else None,
        )


class ModelInfo(BaseModel):
    """A stored deployed model: how to load the bytes of ``url``."""

    format: str = Field(
        description="exported (torch.export of an int8 model), state_dict or rnn_int8"
    )
    sha256: str
    size: int
    meta: dict[str, Any] = Field(description="params, input_shape, num_classes, ...")
    url: str


class TrialDetail(TrialOut):
    """One trial with its model's description."""

    model: ModelInfo | None


class SearchDetail(SearchOut):
    """One search with its progress and best result so far."""

    config: dict[str, Any] = Field(description="the validated [TRAIN] values")
    ref_point: list[float] | None = Field(description="hypervolume reference, once known")
    phase: str | None = Field(description="sobol, gp or morph: the newest trial's phase")
    trials_done: int = Field(description="trials finished: completed, failed or stopped")
    trials_completed: int
    trials_failed: int
    trials_stopped: int = Field(description="stopped early: they could not join the front")
    trials_running: int
    hypervolume: float | None = Field(description="normalised by ref_point, in [0, 1]")
    pareto_size: int
    best: TrialOut | None = Field(description="the completed trial with the lowest error")


class SearchesPage(BaseModel):
    data: list[SearchOut]
    count: int = Field(description="searches matching the filter, all pages")
    limit: int
    offset: int


class TrialsPage(BaseModel):
    data: list[TrialOut]
    count: int = Field(description="trials matching the filter, all pages")
    limit: int
    offset: int


class ParetoOut(BaseModel):
    data: list[TrialOut]
    count: int
    hypervolume: float | None


class ParamSpec(BaseModel):
    """One parameter of a problem's search space."""

    name: str
    type: Literal["int", "float", "choice", "fixed"]
    low: float | None = None
    high: float | None = None
    log: bool | None = None
    values: list[ParamValue] | None = None
    ordered: bool | None = None
    value: ParamValue | None = None
    active_if: dict[str, list[ParamValue]] | None = Field(
        default=None,
        description="the parameter matters only when each named parameter has one of its "
        "values; absent: always",
    )


class ProblemOut(BaseModel):
    name: str
    description: str
    parameters: list[ParamSpec]
    reference: dict[str, ParamValue]


class ProblemsOut(BaseModel):
    data: list[ProblemOut]
    count: int


class MetricOut(BaseModel):
    name: str
    unit: str = Field(description="1 for a ratio, B, s, FLOPs")
    description: str
    objective: bool = Field(description="one of the objectives a search may minimise")


class VocabularyOut(BaseModel):
    """The names a client shows, so that it keeps no copy of them."""

    metrics: list[MetricOut]
    search_statuses: list[str]
    finished_statuses: list[str] = Field(description="the statuses a search does not leave")
    trial_statuses: list[str]
    deploy_formats: list[str] = Field(description="the values of a model download's ?format=")


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    read_only: bool = Field(
        default=False, description="the server refuses submissions and cancellations"
    )


class HypervolumePoint(BaseModel):
    """The hypervolume once one more trial had completed."""

    index: int = Field(description="the trial that completed")
    phase: str
    hypervolume: float


class HypervolumeOut(BaseModel):
    """A search's hypervolume after each completed trial, in the order they completed."""

    data: list[HypervolumePoint]
    count: int
    ref_point: list[float] | None = Field(description="empty data while it is unknown")


class HistoryRow(BaseModel):
    """One step of a trial's training: an epoch, a pruning stage, the quantization."""

    model_config = ConfigDict(extra="allow")

    stage: str = Field(description="train, prune stages (e.g. prune, finetune), quantize:...")
    epoch: int
    loss: float | None
    val_accuracy: float | None
    sparsity: float | None


class HistoryOut(BaseModel):
    data: list[HistoryRow]
    count: int


def _finite(values: dict[str, float]) -> dict[str, float | None]:
    return {k: (v if math.isfinite(v) else None) for k, v in values.items()}


def planned_trials(config: dict[str, Any]) -> int:
    """``(r1 + r2 + r3) * batch_size`` of a stored config (r3 only with morphisms); an
    ask/tell study's rounds are in its ``plan``."""
    plan = config.get("plan")
    if isinstance(plan, dict):
        rounds = sum(plan.get(p, 0) for p in ("sobol", "gp", "morph"))
        return rounds * plan.get("batch_size", 1)
    r3 = config.get("r3", 0) if config.get("morphisms", True) else 0
    return (config.get("r1", 0) + config.get("r2", 0) + r3) * config.get("batch_size", 1)


def public_config(config: dict[str, Any]) -> dict[str, Any]:
    """The stored config without the server's own folder."""
    return {k: v for k, v in config.items() if k != "root"}


def search_fields(rec: SearchRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "name": rec.name,
        "problem": rec.problem,
        "status": rec.status,
        "error": rec.error,
        "objectives": list(rec.objectives),
        "trials_total": planned_trials(rec.config),
        "created_at": rec.created_at,
        "updated_at": rec.updated_at,
        "heartbeat_at": rec.heartbeat_at,
    }
