"""The run configuration: ``config.ini`` (or a dict of sections) to validated, typed settings.

The keys are SpArSeMod's, plus a few of ours. Every key is optional within its section
except ``[DEFAULT] train``. Booleans accept true/false, yes/no, on/off, 1/0. Sizes take
B, KB = KiB = 1024, MB = MiB, GB = GiB; durations s, ms, us (µs), ns; FLOPs k, M, G, T.

Each key of [DEFAULT], [TRAIN] and [TEST], its meaning and its default, as declared once in
:data:`sparsemod.settings.SPECS` or in a pruning method's ``Options``
(:data:`sparsemod.candidate.SPECS` has both), is listed at the end of this docstring (``python -c
"import sparsemod.config; help(sparsemod.config)"``) and in README.md's key table, both
written from those declarations (:func:`key_table`, :func:`markdown_table`).

[BOARD]             your own board, instead of board = NAME
  name              its name (default custom)
  core              cortex-m0+, cortex-m4, cortex-m7, ... (`sparsemod boards` lists them)
  clock             core clock, e.g. 64MHz
  sram, flash       its memories, e.g. 256KB, 1MB
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from sparsemod.candidate import SPECS, CandidateSettings
from sparsemod.combinations import check_runtime
from sparsemod.compress.registry import PRUNERS, check_pruner_options
from sparsemod.config.budgets import board_budgets, board_value
from sparsemod.config.reading import SECTIONS, apply_override, read_data, read_file
from sparsemod.config.resume import RESUMABLE_KEYS, resume_changes
from sparsemod.core.boards import BOARD_KEYS, Board, custom_board
from sparsemod.errors import ConfigError
from sparsemod.hooks import check_latency_hook
from sparsemod.settings import OBJECTIVES, Spec, check_setting, default, did_you_mean
from sparsemod.spec import key_table

if TYPE_CHECKING:
    from sparsemod.evaluate import EvalSettings

__all__ = [
    "RESUMABLE_KEYS",
    "SECTIONS",
    "RunConfig",
    "TestConfig",
    "TrainConfig",
    "load_config",
    "resume_changes",
]


def _pruner() -> Spec:
    def check(v: Any) -> str | None:
        if v in PRUNERS:
            return None
        hint = did_you_mean(str(v), sorted(PRUNERS))
        return f"is not a pruning method (allowed: {', '.join(sorted(PRUNERS))}{hint})"

    return Spec(lambda text, _: text.strip(), check)


# The config checks prune_method against the registry of pruners; the evaluator does the
# same with get_pruner.
_SPECS: dict[str, Spec] = {**SPECS, "prune_method": _pruner()}


def _ref_point_problem(ref_point: tuple[float, ...] | None, objectives: int) -> str | None:
    if ref_point is None or len(ref_point) == objectives:
        return None
    return (
        f"has {len(ref_point)} values (allowed: one per objective, "
        f"{objectives} because objectives = {objectives})"
    )


def _validate(config: Any, section: str, epoch_keys: Sequence[str]) -> None:
    # Also run on direct construction, so a config built in Python is as safe as a file.
    try:
        object.__setattr__(config, "board", board_value(config.board))
    except ConfigError as exc:
        raise ConfigError(f"[{section}] {exc}", section=section, key="board") from None
    for f in fields(config):
        check_setting(f.name, getattr(config, f.name), section, _SPECS)
    try:
        epochs = min(getattr(config, k) for k in epoch_keys)
        check_pruner_options(config, config.prune_method, epochs)
    except ConfigError as exc:
        raise ConfigError(f"[{section}] {exc}", section=section, key=exc.key) from None
    check_runtime(
        config.runtime, config.quant_scheme, config.latency_model, config.board, section,
        compression=config.compression,
    )
    check_latency_hook(config.latency_hook, config.runtime, section)  # imports it: said now


def _eval_settings(config: Any, epochs: int, score_test: bool) -> EvalSettings:
    # Imported here: config sits below evaluate (and torch) in the dependency order.
    from sparsemod.evaluate import EvalSettings

    return EvalSettings(
        epochs=epochs,
        batch_size=config.train_batch_size,
        target_flops=config.flops,
        score_test=score_test,
        **{f.name: getattr(config, f.name) for f in fields(CandidateSettings)},
    )


@dataclass(frozen=True)
class TrainConfig(CandidateSettings):
    """The ``[TRAIN]`` section: one search. Each key's meaning and default: ``SPECS``."""

    name: str = default("name")
    root: str = default("root")
    problem: str = default("problem")
    r1: int = default("r1")
    r2: int = default("r2")
    r3: int = default("r3")
    epochs1: int = default("epochs1")
    epochs2: int = default("epochs2")
    epochs3: int = default("epochs3")
    batch_size: int = default("batch_size")
    objectives: int = default("objectives")
    morphisms: bool = default("morphisms")
    train_batch_size: int = default("train_batch_size")
    splitter: bool = default("splitter")
    flops: float = default("flops")
    reserve_ram: int = default("reserve_ram")
    reserve_flash: int = default("reserve_flash")
    max_model_size: int | None = default("max_model_size")
    max_working_memory: int | None = default("max_working_memory")
    max_latency: float | None = default("max_latency")
    tolerance: float = default("tolerance")
    patience: int = default("patience")
    early_stopping: str = default("early_stopping")
    min_epochs: int = default("min_epochs")
    stop_confidence: float = default("stop_confidence")
    ref_point: tuple[float, ...] | None = default("ref_point")
    generator: str = default("generator")
    num_candidates: int = default("num_candidates")
    cost_scale: str = default("cost_scale")
    deploy_check: str = default("deploy_check")
    executor: str = default("executor")
    workers: int = default("workers")
    asynchronous: bool = default("asynchronous")
    threads: int = default("threads")
    ray_address: str = default("ray_address")
    num_cpus: float = default("num_cpus")
    num_gpus: float = default("num_gpus")

    def __post_init__(self) -> None:
        _validate(self, "TRAIN", ("epochs1", "epochs2", "epochs3"))
        problem = _ref_point_problem(self.ref_point, self.objectives)
        if problem:
            raise ConfigError(
                f"[TRAIN] ref_point: {self.ref_point!r} {problem}", section="TRAIN", key="ref_point"
            )
        board_budgets(self)

    @property
    def objective_names(self) -> list[str]:
        """The names of the objectives searched, in SpArSeMod's cumulative order."""
        return list(OBJECTIVES[: self.objectives])

    @property
    def constraints(self) -> dict[str, float]:
        """Hard limits by objective name, only those set (bytes and seconds).

        With a board, the memory limits are its budgets (SRAM - ``reserve_ram``, flash -
        ``reserve_flash``) unless the config sets lower ones.
        """
        budgets = board_budgets(self)
        limits = {
            "model_size_bytes": budgets.get("max_model_size", self.max_model_size),
            "working_memory_bytes": budgets.get("max_working_memory", self.max_working_memory),
            "latency_s": self.max_latency,
        }
        return {name: float(v) for name, v in limits.items() if v is not None}

    def eval_settings(self, phase_epochs: int, *, score_test: bool = False) -> EvalSettings:
        """How each candidate of a phase training ``phase_epochs`` epochs is evaluated.

        Raises:
            ConfigError: a value the evaluator does not support (e.g. quant_scheme both).
        """
        return _eval_settings(self, phase_epochs, score_test)


@dataclass(frozen=True)
class TestConfig(CandidateSettings):
    """The ``[TEST]`` section: retrain one arm of a finished search and score it on test."""

    __test__ = False  # not a pytest test class, whatever its name says

    name: str = default("name")
    root: str = default("root")
    arm: int = default("arm")
    epochs: int = default("epochs")
    objectives: int = default("objectives")
    splitter: bool = default("splitter")
    train_batch_size: int = default("train_batch_size")
    flops: float = default("flops")

    def __post_init__(self) -> None:
        _validate(self, "TEST", ("epochs",))

    def eval_settings(self) -> EvalSettings:
        """How the arm is retrained; the test split is scored.

        Raises:
            ConfigError: a value the evaluator does not support (e.g. quant_scheme both).
        """
        return _eval_settings(self, self.epochs, True)


@dataclass(frozen=True)
class RunConfig:
    """A whole configuration: which mode, and the sections that were given."""

    train: bool
    train_config: TrainConfig | None
    test_config: TestConfig | None
    source: str


def _in_declared_order(cls: type) -> tuple[str, ...]:
    names = {f.name for f in fields(cls)}
    return tuple(k for k in SPECS if k in names)


_KEYS: dict[str, tuple[str, ...]] = {
    "DEFAULT": ("train",),
    "TRAIN": _in_declared_order(TrainConfig),
    "TEST": _in_declared_order(TestConfig),
    "BOARD": BOARD_KEYS,
}


def _unknown(section: str, key: str) -> str | None:
    return None if key in _KEYS[section] else _unknown_key(section, key)


def _unknown_key(section: str, key: str) -> str:
    known = _KEYS[section]
    hint = did_you_mean(key, known)
    if section == "DEFAULT":
        # configparser's habit is to share keys through [DEFAULT]; we read only `train` there.
        homes = [s for s in ("TRAIN", "TEST") if key in _KEYS[s]]
        if homes:
            hint += f"; put it in {' or '.join(f'[{s}]' for s in homes)}"
    return f"unknown key {key!r} (known keys: {', '.join(known)}{hint})"


def _build(cls: type, section: str, raw: Mapping[str, str], board: Board | None) -> Any:
    values: dict[str, Any] = {}
    for key, text in raw.items():
        if key not in _KEYS[section]:
            raise ConfigError(f"[{section}] {_unknown_key(section, key)}", section=section, key=key)
        values[key] = _convert(section, key, text)
    if values.get("board") == "custom" and board is None:
        raise ConfigError(
            f"[{section}] board: 'custom' names the board of a [BOARD] section, and there is "
            "none (give core, clock, sram and flash there)",
            section=section,
            key="board",
        )
    if board is not None:
        if values.get("board") not in (None, "custom"):
            raise ConfigError(
                f"[{section}] board: {values['board']!r} and a [BOARD] section both name the "
                "board; keep one",
                section=section,
                key="board",
            )
        values["board"] = board
    if "ref_point" in raw:
        objectives = values.get("objectives", cls.objectives)
        problem = _ref_point_problem(values["ref_point"], objectives)
        if problem:
            raise ConfigError(
                f"[{section}] ref_point: {raw['ref_point']!r} {problem}",
                section=section,
                key="ref_point",
            )
    return cls(**values)


def _convert(section: str, key: str, text: str) -> Any:
    label = f"[{section}] {key}"
    spec = _SPECS[key]
    try:
        value = spec.parse(text, label)
    except ConfigError as exc:
        raise ConfigError(str(exc), section=section, key=key) from None
    except (ValueError, KeyError):
        value = text  # not of the right kind: check() says so, naming what is allowed
    problem = spec.check(value)
    if problem:
        raise ConfigError(f"{label}: {text!r} {problem}", section=section, key=key)
    return value


def load_config(
    path: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    *,
    data: Mapping[str, Mapping[str, Any]] | None = None,
) -> RunConfig:
    """Read, override and validate a configuration. Nothing is written.

    Args:
        path: an INI file (``;`` and ``#`` comments, keys case-insensitive, no interpolation).
        overrides: ``"SECTION.key=value"`` items applied over the file, e.g. ``"TRAIN.r1=3"``.
        data: sections as a mapping instead of a file (what the REST service passes); values
            may be strings or JSON scalars. With neither ``path`` nor ``data``, the overrides
            alone make the configuration.

    Returns:
        The validated configuration; a section's config is ``None`` when it was not given.

    Raises:
        ConfigError: one problem, on one line: the section, the key, the value given and
            what is allowed (or the file and configparser's reason).
    """
    if path is not None and data is not None:
        raise ConfigError("load_config: give a config file or data, not both")
    if path is not None:
        source = os.fspath(path)
        sections = read_file(path)
    else:
        source = "<dict>"
        sections = read_data(data or {})
    for item in overrides:
        apply_override(sections, item, _unknown)

    default = sections.get("DEFAULT", {})
    for key in default:
        if key not in _KEYS["DEFAULT"]:
            raise ConfigError(
                f"[DEFAULT] {_unknown_key('DEFAULT', key)}", section="DEFAULT", key=key
            )
    if "train" not in default:
        raise ConfigError(
            f"{source}: no [DEFAULT] train (allowed: true to search with [TRAIN], "
            "false to test one arm with [TEST])",
            section="DEFAULT",
            key="train",
        )
    train = _convert("DEFAULT", "train", default["train"])
    needed = "TRAIN" if train else "TEST"
    if needed not in sections:
        raise ConfigError(
            f"{source}: no [{needed}] section "
            f"(needed because [DEFAULT] train = {str(train).lower()})",
            section=needed,
        )
    board = custom_board(sections["BOARD"]) if "BOARD" in sections else None
    train_config = test_config = None
    if "TRAIN" in sections:
        train_config = _build(TrainConfig, "TRAIN", sections["TRAIN"], board)
    if "TEST" in sections:
        test_config = _build(TestConfig, "TEST", sections["TEST"], board)
    return RunConfig(train, train_config, test_config, source)


def section_keys(section: str) -> tuple[str, ...]:
    """The keys ``section`` takes (``DEFAULT``, ``TRAIN``, ``TEST`` or ``BOARD``), in the
    order of their declarations."""
    return _KEYS[section]


if __doc__ is not None:  # python -OO drops docstrings
    __doc__ += "\n" + "\n\n".join(
        key_table(f"[{s}]", _KEYS[s], SPECS) for s in ("DEFAULT", "TRAIN", "TEST")
    )
