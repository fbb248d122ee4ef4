"""GET /problems: the registered problems with their search spaces."""

from __future__ import annotations

import functools
import logging
from typing import Any

from fastapi import APIRouter

from server.schemas import ParamSpec, ProblemOut, ProblemsOut
from sparsemod.errors import SparsemodError
from sparsemod.problems import available, get_problem
from sparsemod.space import SearchSpace

router = APIRouter(prefix="/problems", tags=["problems"])
log = logging.getLogger(__name__)


def _params(space: SearchSpace) -> list[ParamSpec]:
    # The space's own JSON form (what a study stores), with its "kind" as the API's "type".
    out = []
    for raw in space.to_dict()["parameters"]:
        kind = raw.pop("kind")
        out.append(ParamSpec(type=kind, **raw))
    return out


@functools.lru_cache(maxsize=1)
def _problems() -> tuple[ProblemOut, ...]:
    # Registered problems do not change while the process runs.
    out = []
    for name in available():
        try:
            problem = get_problem(name)
        except (SparsemodError, ImportError) as exc:
            log.warning("problem %s cannot be loaded: %s", name, exc)
            continue
        out.append(
            ProblemOut(
                name=name,
                description=problem.description,
                parameters=_params(problem.space),
                reference=dict(problem.space.reference),
            )
        )
    return tuple(out)


def problem_names() -> list[str]:
    """The problems a search may name: registered, and loading."""
    return [p.name for p in _problems()]


@router.get("", response_model=ProblemsOut)
def list_problems() -> Any:
    """The problems a search may name, with the parameters of their search spaces."""
    data = list(_problems())
    return ProblemsOut(data=data, count=len(data))
