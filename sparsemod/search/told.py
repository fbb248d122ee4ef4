"""What a study is given, checked: its arguments, and the values a trial is told.

Each check names what is wrong and runs before anything is written, so a bad call to
:class:`~sparsemod.search.study.Study` or ``tell`` leaves the store as it was.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from sparsemod.core.vocabulary import METRICS, OBJECTIVES
from sparsemod.errors import ConfigError
from sparsemod.evaluate import COMPLETED, FAILED, TrialResult
from sparsemod.search.phases import Plan
from sparsemod.search.state import Trial
from sparsemod.settings import SPECS
from sparsemod.store import Store

STUDY = "study"  # the problem name a study over a user's space is stored under
PHASE_TRIALS = {"sobol": 8, "gp": 16}  # a study's default budgets, in trials
# what tell() takes besides the objectives: the result's measured numbers
TOLD = tuple(m for m in METRICS if m in {f.name for f in fields(TrialResult)})


def open_store(store: str | Store) -> Store:
    """A :class:`Store` from a URL (or the store itself)."""
    if isinstance(store, Store):
        return store
    if not isinstance(store, str):
        raise ConfigError(
            f"store must be a URL such as sqlite:///study.db or a Store, got {store!r}"
        )
    return Store(store)


def study_plan(
    objectives: Sequence[str],
    exact: bool,
    phases: Mapping[str, int] | None,
    constraints: Mapping[str, float] | None,
    *,
    generator: str | None,
    batch_size: int,
    **keys: Any,
) -> tuple[list[str], Plan, dict[str, float]]:
    """A study's objectives, plan and limits from its arguments.

    ``keys`` are checked by the ``[TRAIN]`` declarations of the same names; a study's
    generator is ``pool`` when its costs are known (``exact``), else ``ax``.
    """
    names = [objectives] if isinstance(objectives, str) else list(objectives)
    if not names or names[0] != "error" or len(set(names)) != len(names):
        raise ConfigError(
            f"objectives must start with 'error' and name each objective once, got {names!r}"
        )
    wrong = [n for n in names if n not in OBJECTIVES]
    if wrong:
        raise ConfigError(f"objectives {wrong} are not among {', '.join(OBJECTIVES)}")
    budgets = {**PHASE_TRIALS, **(phases or {})}
    unknown = sorted(set(budgets) - set(PHASE_TRIALS))
    if unknown:
        raise ConfigError(
            f"phases: {unknown} are not phases of a study (sobol, gp; the morphisms need a "
            "problem's builder: run it as a search)"
        )
    for phase, trials in budgets.items():
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 0:
            raise ConfigError(f"phases: {phase} must be a number of trials >= 0, got {trials!r}")
    generator = generator or ("pool" if exact else "ax")
    if generator == "pool" and not exact:
        raise ConfigError(
            "generator 'pool' chooses among exactly costed candidates: give costs=, "
            "or use generator='ax'"
        )
    keys = {"batch_size": batch_size, "generator": generator, **keys}
    for key, value in keys.items():
        problem = SPECS[key].check(value)
        if problem:
            raise ConfigError(f"{key} = {value!r} {problem}", key=key)
    rounds = {p: math.ceil(t / batch_size) for p, t in budgets.items()}
    plan = Plan(sobol=rounds["sobol"], gp=rounds["gp"], morph=0, **keys)
    return names, plan, _limits(constraints, names)


def _limits(constraints: Mapping[str, float] | None, objectives: Sequence[str]) -> dict:
    limits = {}
    for name, value in (constraints or {}).items():
        if name not in objectives or name == "error":
            raise ConfigError(f"constraints: {name!r} is not a cost objective of this study")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ConfigError(f"constraints: {name} = {value!r} must be a number > 0")
        limits[name] = float(value)
    return limits


def told_result(
    trial: Trial,
    values: Mapping[str, float] | None,
    failed: str | None,
    objectives: Sequence[str],
    seed: int,
) -> TrialResult:
    """The result ``tell`` records: ``values`` (the predicted costs fill the gaps), or a
    failure with its reason."""
    i = trial.index
    if (values is None) == (failed is None):
        raise ConfigError(f"tell trial {i}: give its values or failed='reason', one of them")
    if failed is not None:
        return TrialResult(FAILED, trial.params, seed, failure_reason=str(failed))
    if not isinstance(values, Mapping):
        raise ConfigError(f"tell trial {i}: values must be a dict by objective, got {values!r}")
    unknown = sorted(set(values) - set(TOLD) - set(objectives))
    if unknown:
        raise ConfigError(
            f"tell trial {i}: {unknown} are not objectives or metrics "
            f"(objectives: {', '.join(objectives)}; metrics: {', '.join(TOLD)})"
        )
    merged = {**trial.predicted, **values}
    missing = [o for o in objectives if o not in merged]
    if missing:
        raise ConfigError(f"tell trial {i}: no value for {', '.join(missing)}")
    found = {}
    for name, value in merged.items():
        if name not in TOLD:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise ConfigError(f"tell trial {i}: {name} = {value!r} is not a finite number")
        found[name] = value
    return TrialResult(COMPLETED, trial.params, seed, **found)


def same_study(
    found: Any, given: Mapping[str, Any], objectives: Sequence[str], load: bool, url: str
) -> None:
    """Whether the stored study ``found`` may be taken up by ``Study(..., load_if_exists)``."""
    name = found.name
    if not load:
        raise ConfigError(
            f"a study named {name!r} is already in {url}: load it (Study.load, or "
            "load_if_exists=True), or give another name"
        )
    if found.problem != STUDY:
        raise ConfigError(f"{name!r} in {url} is a search of problem {found.problem!r}")
    given = json.loads(json.dumps(given))
    changed = [k for k in given if found.config.get(k) != given[k]]
    changed += ["objectives"] if list(found.objectives) != list(objectives) else []
    if changed:
        raise ConfigError(
            f"study {name!r} in {url} was created with other {', '.join(changed)}; load it "
            "with Study.load, or give another name"
        )
