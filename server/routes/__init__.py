"""The API's routers: everything under ``/api/v1``; all but health need the token, the
schema and its docs page included."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from server.deps import require_token
from server.routes import docs, health, problems, searches, trials, vocabulary
from server.schemas import error

API_PREFIX = "/api/v1"

api_router = APIRouter(prefix=API_PREFIX)
api_router.include_router(health.router)
api_router.include_router(
    searches.router,
    dependencies=[Depends(require_token)],
    responses={401: error("missing or wrong bearer token")},
)
api_router.include_router(
    trials.router,
    dependencies=[Depends(require_token)],
    responses={401: error("missing or wrong bearer token")},
)
api_router.include_router(
    problems.router,
    dependencies=[Depends(require_token)],
    responses={401: error("missing or wrong bearer token")},
)
api_router.include_router(
    vocabulary.router,
    dependencies=[Depends(require_token)],
    responses={401: error("missing or wrong bearer token")},
)
api_router.include_router(docs.router, dependencies=[Depends(require_token)])
