"""GET /vocabulary: the names a client shows: metrics with units, statuses, deploy formats.

The dashboard reads them from here instead of keeping its own copies.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server.routes.trials import FORMATS
from server.schemas import MetricOut, VocabularyOut
from sparsemod.core.vocabulary import (
    FINISHED,
    METRIC_INFO,
    OBJECTIVES,
    SEARCH_STATUSES,
    TRIAL_STATUSES,
)

router = APIRouter(prefix="/vocabulary", tags=["vocabulary"])


@router.get("", response_model=VocabularyOut)
async def vocabulary() -> Any:
    """Metrics (the objectives first, all minimised), statuses and deploy formats."""
    metrics = [
        MetricOut(
            name=m.name, unit=m.unit, description=m.description, objective=m.name in OBJECTIVES
        )
        for m in METRIC_INFO.values()
    ]
    return VocabularyOut(
        metrics=metrics,
        search_statuses=list(SEARCH_STATUSES),
        finished_statuses=[str(s) for s in FINISHED],
        trial_statuses=list(TRIAL_STATUSES),
        deploy_formats=list(FORMATS),
    )
