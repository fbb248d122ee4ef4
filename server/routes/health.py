"""GET /health: is the API process up (no token, no database)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

import sparsemod
from server.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health() -> Any:
    """The service is up."""
    return Health(status="ok", version=sparsemod.__version__)
