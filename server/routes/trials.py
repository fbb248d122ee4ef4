"""Trials by id: one trial, and the deployed model of a Pareto member."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response, status

from server import links
from server import progress as progress_mod
from server.deps import StoreDep
from server.errors import ApiError
from server.schemas import MAX_ID, HistoryOut, HistoryRow, ModelInfo, TrialDetail, TrialOut, error
from sparsemod.deploy import RUNTIMES
from sparsemod.errors import DataError

router = APIRouter(prefix="/trials", tags=["trials"])

TrialId = Annotated[int, Path(ge=1, le=MAX_ID, description="the trial's id")]
FORMATS = tuple(sorted(RUNTIMES))
Format = Annotated[
    Literal[FORMATS] | None,  # type: ignore[valid-type]
    Query(
        description="export to a microcontroller runtime's format instead of the stored "
        "model (int8, converted on request)",
    ),
]
_SUFFIX = {"exported": ".pt2", "state_dict": ".pt", "rnn_int8": ".pt"}
_NOT_FOUND = {404: error("no such trial, or no stored model")}
_INVALID = {422: error("a parameter is not valid")}


class ModelResponse(Response):
    media_type = "application/octet-stream"


@router.get(
    "/{trial_id}",
    response_model=TrialDetail,
    responses=_NOT_FOUND
    | _INVALID
    | {
        200: links.response(
            "the trial",
            links.to_trial("/id", exclude=("get_trial",))
            | links.to_search("/search_id", prefix="Search"),
        )
    },
)
def get_trial(trial_id: TrialId, store: StoreDep) -> Any:
    """One trial, with how to load its model when it has one."""
    trial = store.get_trial(trial_id)
    p = progress_mod.progress(store, store.get_search(trial.search_id))
    model = None
    if trial.has_model:
        try:
            rec = store.get_model(trial_id)
        except DataError:
            rec = None  # it left the front since the trial was read
        if rec is not None:
            model = ModelInfo(
                format=rec.format,
                sha256=rec.sha256,
                size=len(rec.data),
                meta=rec.meta,
                url=f"/api/v1/trials/{trial_id}/model",
            )
    out = TrialOut.from_record(trial, trial.id in p.pareto_ids)
    return TrialDetail(**out.model_dump(), model=model)


@router.get("/{trial_id}/history", response_model=HistoryOut, responses=_NOT_FOUND | _INVALID)
def get_history(trial_id: TrialId, store: StoreDep) -> Any:
    """How the trial was trained: one row per epoch, pruning stage and quantization, in
    order (loss, validation accuracy, sparsity, and each stage's own figures)."""
    rows = [HistoryRow(**_finite_row(r)) for r in store.history(trial_id)]
    return HistoryOut(data=rows, count=len(rows))


def _finite_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


@router.get(
    "/{trial_id}/model",
    response_class=ModelResponse,
    responses=_NOT_FOUND
    | _INVALID
    | {
        200: {
            "description": "the model's bytes; X-Sparsemod-Format says how to load them: "
            "'exported' with torch.export.load(io.BytesIO(data)).module(); with ?format=, "
            "the runtime's artifact (.tflite flatbuffer, .pte program, .onnx)",
        },
        503: error("the runtime of that format is not installed on the server"),
    },
)
def download_model(trial_id: TrialId, store: StoreDep, format: Format = None) -> ModelResponse:
    """The deployed model of a Pareto member (only Pareto members' models are kept).

    With ``format``, the model exported to that runtime (as ``sparsemod deploy`` does,
    without the check), converted on request.
    """
    trial = store.get_trial(trial_id)
    try:
        rec = store.get_model(trial_id)
    except DataError as exc:
        if store.get_trial(trial_id).has_model:  # the row is there: its bytes are corrupt
            raise ApiError(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc)) from exc
        raise ApiError(
            status.HTTP_404_NOT_FOUND,
            f"trial {trial_id} (index {trial.index} of search {trial.search_id}) has no "
            "stored model: only the models of the search's Pareto members are kept",
        ) from None
    if format is not None:
        return _exported(store, trial_id, format)
    # The file name is made of the id alone: nothing from a request reaches a path.
    name = f"trial_{trial_id}{_SUFFIX.get(rec.format, '.bin')}"
    return ModelResponse(
        rec.data,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Sparsemod-Format": rec.format,
            "X-Sparsemod-Sha256": rec.sha256,
        },
    )


def _exported(store: Any, trial_id: int, format: str) -> ModelResponse:
    from sparsemod.deploy.api import export_stored
    from sparsemod.deploy.base import DeployError, RuntimeMissing

    try:
        artifact = export_stored(store, trial_id, format)
    except RuntimeMissing as exc:
        raise ApiError(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), field="format") from None
    except DeployError as exc:
        raise ApiError(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc), field="format") from None
    return ModelResponse(
        artifact.data,
        headers={
            "Content-Disposition": f'attachment; filename="trial_{trial_id}{artifact.suffix}"',
            "X-Sparsemod-Format": artifact.format,
        },
    )
