"""A submitted search body to a validated ``TrainConfig`` within the server's budgets.

The body's ``config`` goes through :func:`sparsemod.config.load_config`, exactly as a
``config.ini`` would, so the API accepts what the command line accepts and says what is
wrong the same way. The server decides what touches its machine: the problem must be a
registered name (never ``module:function``), no ``latency_hook`` is imported, the results
folder is its own, and the budget is bounded by its settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.errors import ApiError
from server.schemas import SearchCreate
from server.settings import Settings
from sparsemod.config import TrainConfig, load_config
from sparsemod.problems import available, get_problem

_SERVER_KEYS = {
    "name": "give it as the top-level field 'name'",
    "problem": "give it as the top-level field 'problem'",
    "root": "the server decides where results go",
}
# How trials are executed is the machine's business, not a request's: a request must not
# make the worker connect to a Ray cluster of its choosing or start a pool of its size.
_EXECUTION = ("executor", "workers", "threads", "ray_address", "num_cpus", "num_gpus")
_SERVER_KEYS |= {k: "the server decides how trials are executed" for k in _EXECUTION}
# A latency hook is code the worker would import and run: never a request's to name.
_SERVER_KEYS["latency_hook"] = "a request cannot name code for the server to run"
_EPOCH_KEYS = ("epochs1", "epochs2", "epochs3", "finetune_epochs")
MAX_SEED = 2**32 - 1  # what every seeded library accepts


def _invalid(detail: str, field: str | None) -> ApiError:
    return ApiError(422, detail, field)


def train_values(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[TRAIN]`` keys of a body's config, flat or as ``{"TRAIN": {...}}``.

    Raises:
        ApiError: 422, a section other than TRAIN, both forms at once, or a key the
            server sets itself.
    """
    sections = [k for k, v in config.items() if isinstance(v, Mapping)]
    if sections:
        if len(config) != 1 or sections[0].upper() != "TRAIN":
            bad = next((k for k in sections if k.upper() != "TRAIN"), sections[0])
            raise _invalid(
                f"config.{bad}: only one section, TRAIN, may be given (as "
                "{'TRAIN': {...}}), or the [TRAIN] keys directly",
                f"config.{bad}",
            )
        values = dict(config[sections[0]])
    else:
        values = dict(config)
    for key in values:
        why = _SERVER_KEYS.get(str(key).strip().lower())
        if why:
            raise _invalid(f"config.{key}: not allowed here ({why})", f"config.{key}")
    return values


def validate(body: SearchCreate, settings: Settings) -> TrainConfig:
    """The search a body asks for, checked like a config file and against the budgets.

    Raises:
        ApiError: 422 naming the field: an unknown problem, a budget over the server's
            limits, a key the server sets itself.
        ConfigError: a value ``load_config`` or the evaluator refuses (422 too).
    """
    if body.problem not in available():
        raise _invalid(
            f"problem: {body.problem!r} is not a registered problem "
            f"(available: {', '.join(available())})",
            "problem",
        )
    values = train_values(body.config)
    values.update(name=body.name, problem=body.problem, root=settings.results_root)
    cfg = load_config(data={"DEFAULT": {"train": "true"}, "TRAIN": values}).train_config
    _check_budget(cfg, settings)
    cfg.eval_settings(cfg.epochs1)  # the evaluator's own checks (pruner, quant scheme)
    get_problem(cfg.problem)  # a registered problem that fails to load is refused now
    return cfg


def _check_budget(cfg: TrainConfig, settings: Settings) -> None:
    r3 = cfg.r3 if cfg.morphisms else 0
    trials = (cfg.r1 + cfg.r2 + r3) * cfg.batch_size
    if trials > settings.max_trials:
        raise _invalid(
            f"config: (r1 + r2 + r3) * batch_size = ({cfg.r1} + {cfg.r2} + {r3}) * "
            f"{cfg.batch_size} = {trials} trials is over this server's limit of "
            f"{settings.max_trials} trials per search",
            "config.batch_size",
        )
    # A phase with no rounds trains nothing: its epochs do not count.
    used = {"epochs1": True, "epochs2": cfg.r2 > 0, "epochs3": r3 > 0, "finetune_epochs": True}
    for key in _EPOCH_KEYS:
        value = getattr(cfg, key)
        if used[key] and value > settings.max_epochs:
            raise _invalid(
                f"config.{key}: {value} is over this server's limit of "
                f"{settings.max_epochs} epochs",
                f"config.{key}",
            )
    if cfg.num_candidates > settings.max_candidates:
        raise _invalid(
            f"config.num_candidates: {cfg.num_candidates} is over this server's limit of "
            f"{settings.max_candidates}",
            "config.num_candidates",
        )
    if cfg.seed > MAX_SEED:
        raise _invalid(
            f"config.seed: {cfg.seed} is out of range (allowed: 0 to {MAX_SEED})", "config.seed"
        )
