"""GET /problems: the registered problems with their search spaces."""

from __future__ import annotations

import functools
import logging
from typing import Any

from fastapi import APIRouter

from server.schemas import ParamSpec, ProblemOut, ProblemsOut
from sparsemod.errors import SparsemodError
from sparsemod.problems import available, get_problem
from sparsemod.space import ChoiceParam, FixedParam, FloatParam, IntParam, Param

router = APIRouter(prefix="/problems", tags=["problems"])
log = logging.getLogger(__name__)


def _param(p: Param) -> ParamSpec:
    if isinstance(p, IntParam | FloatParam):
        kind = "int" if isinstance(p, IntParam) else "float"
        return ParamSpec(name=p.name, type=kind, low=p.low, high=p.high, log=p.log)
    if isinstance(p, ChoiceParam):
        return ParamSpec(name=p.name, type="choice", values=list(p.values), ordered=p.ordered)
    if isinstance(p, FixedParam):
        return ParamSpec(name=p.name, type="fixed", value=p.value)
    raise TypeError(f"unknown parameter type {type(p).__name__}")


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
                parameters=[_param(p) for p in problem.space.parameters],
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
