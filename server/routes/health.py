"""GET /health: is the API process up (no token, no database)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

import sparsemod
from server.deps import SettingsDep
from server.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health(settings: SettingsDep) -> Any:
    """The service is up (and whether it is read-only)."""
    return Health(status="ok", version=sparsemod.__version__, read_only=settings.read_only)
