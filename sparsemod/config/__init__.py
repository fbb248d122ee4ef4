"""The run configuration: ``config.ini`` (or a dict of sections) to validated, typed settings.

The keys are SpArSeMod's, plus a few of ours. Every key is optional within its section
except ``[DEFAULT] train``. Booleans accept true/false, yes/no, on/off, 1/0. Sizes take
B, KB = KiB = 1024, MB = MiB, GB = GiB; durations s, ms, us (µs), ns; FLOPs k, M, G, T.

[DEFAULT]
  train             true: run a search ([TRAIN]); false: retrain and test one arm ([TEST])

[TRAIN]
  name              name of the search; results go to <root>/<name>/ (default digits_cnn)
  root              folder holding the results (default results)
  problem           a problem name or 'package.module:function' (default digits_cnn)
  r1                rounds of Sobol, >= 1 (default 2)
  r2                rounds of GP-based optimization, >= 0 (default 4)
  r3                rounds of morphisms ranked by the GP, >= 0 (default 2)
  epochs1           training epochs in phase 1, >= 1 (default 3)
  epochs2           training epochs in phase 2, >= 1 (default 4)
  epochs3           training epochs in phase 3, >= 1 (default 4)
  batch_size        arms per round, >= 1 (default 2)
  objectives        1 error; 2 + model size; 3 + working memory; 4 + latency (default 3)
  debug             keep the traceback of a failed candidate (default false)
  flops             operations per second of the target device, e.g. 100M (default 1e8)
  quant_scheme      post, dynamic, both or none (default post)
  morphisms         run the morphism phase at all (default true)
  pruning           prune the networks (default true)
  prune_method      the pruner's name (default magnitude)
  keep_ratio        share of weights kept, in (0, 1], when the space has none (default 0.5)
  finetune_epochs   epochs of training after pruning, >= 0 (default 1)
  train_batch_size  SGD batch size, >= 1 (default 64)
  imp_rate          imp: share of the remaining weights pruned a round, in (0, 1) (default 0.2)
  imp_rounds        imp: rounds to reach keep_ratio, 0 = as the rate needs (default 0)
  rewind_epoch      imp: epoch the survivors rewind to, 0 = initialisation (default 0)
  snip_batches      snip: batches the connection sensitivity is summed over (default 4)
  dst_interval      dynamic_sparse: steps between updates, 0 = once an epoch (default 0)
  dst_drop_fraction dynamic_sparse: share dropped and regrown an update, in [0, 1) (default 0.3)
  dst_regrow        dynamic_sparse: random (SET) or gradient (RigL) (default random)
  splitter          the problem splits sequences (default false)
  seed              seed of the search and of every trial, >= 0 (default 0)
  device            auto, cpu, cuda or cuda:N (default auto)
  max_model_size    hard limit on model size, e.g. 2KB (default none)
  max_working_memory  hard limit on working memory, e.g. 8KiB (default none)
  max_latency       hard limit on latency, e.g. 10ms (default none)
  tolerance         end the GP or morphism phase when the hypervolume gains less than
                    this over `patience` rounds (Sobol always runs r1 rounds); 0 disables
                    (default 0)
  patience          rounds the tolerance is measured over, >= 1 (default 2)
  ref_point         hypervolume reference, one value per objective, e.g. 1.0, 50KB, 8KB, 10ms
  generator         pool (exact-cost candidate pool) or ax (Ax's generator) (default pool)
  num_candidates    size of the GP phase's candidate pool, >= 8 (default 256)
  cost_scale        how the pool's acquisition weighs the costs: linear (cost / reference)
                    or log (log-cost over the space's range) (default linear)
  runtime           whose counts size and working memory are: tflm (the .tflite flatbuffer
                    and the arena TensorFlow Lite Micro needs) or ideal (SpArSe's sparse
                    storage and peak live activations) (default tflm)
  latency_model     flops (FLOPs / flops) or ops (cycles per op on the board's core)
                    (default flops)
  latency_hook      'package.module:function' given the exported .tflite artifact, returning
                    seconds measured on the device: latency_s, the model's kept as
                    latency_model_s (needs runtime = tflm and litert-torch) (default none)
  board             the device: a name from `sparsemod boards`, or a [BOARD] section; its
                    SRAM and flash become max_working_memory and max_model_size (default none)
  reserve_ram       SRAM the application keeps for itself, e.g. 16KB (default 0)
  reserve_flash     flash the application keeps for itself, e.g. 128KB (default 0)
  deploy_check      check each Pareto model in tflite, executorch or onnx (default none)
  executor          sequential, processes (a local pool) or ray (default sequential)
  workers           trials evaluated at once by processes / ray, >= 1 (default 1)
  threads           torch threads a trial trains with, >= 1; the same in every executor,
                    so a seed gives the same network wherever it ran (default 1)
  ray_address       auto (a running cluster), local (start one) or host:port (default local)
  num_cpus          CPUs a trial asks Ray for, >= 0 (default 1)
  num_gpus          GPUs a trial asks Ray for, fractions share one (default 0)

[TEST]
  name, root        the finished search to read (defaults as in [TRAIN])
  arm               trial index to retrain, e.g. 3 (SpArSeMod's 3_0 also works) (default 0)
  epochs            training epochs before testing, >= 1 (default 5)
  pruning, quant_scheme, objectives, splitter, prune_method, keep_ratio, finetune_epochs,
  train_batch_size, flops, runtime, latency_model, latency_hook, board, device, seed,
  debug             as in [TRAIN]

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

from sparsemod.combinations import check_pruning, check_runtime
from sparsemod.config.budgets import board_budgets, board_value
from sparsemod.config.reading import SECTIONS, apply_override, read_data, read_file
from sparsemod.config.resume import RESUMABLE_KEYS, resume_changes
from sparsemod.core.boards import BOARD_KEYS, Board, custom_board
from sparsemod.errors import ConfigError
from sparsemod.hooks import check_latency_hook
from sparsemod.settings import OBJECTIVES, SPECS, Spec, check_setting, did_you_mean

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
        # The registry is the one list of pruners; it imports torch, so only when checking.
        from sparsemod.compress.registry import PRUNERS

        if v in PRUNERS:
            return None
        hint = did_you_mean(str(v), sorted(PRUNERS))
        return f"is not a pruning method (allowed: {', '.join(sorted(PRUNERS))}{hint})"

    return Spec(lambda text, _: text.strip(), check)


# The config checks prune_method against the registry of pruners (it imports torch, so
# only when a value is checked); the evaluator does the same with get_pruner.
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
    check_pruning(
        config.prune_method,
        config.imp_rate,
        config.imp_rounds,
        config.rewind_epoch,
        min(getattr(config, k) for k in epoch_keys),
        section,
    )
    check_runtime(config.runtime, config.quant_scheme, config.latency_model, config.board, section)
    check_latency_hook(config.latency_hook, config.runtime, section)  # imports it: said now


def _eval_settings(config: Any, epochs: int, score_test: bool) -> EvalSettings:
    # Imported here: config sits below evaluate (and torch) in the dependency order.
    from sparsemod.evaluate import EvalSettings

    same = ("pruning", "prune_method", "keep_ratio", "finetune_epochs", "quant_scheme")
    same += ("device", "seed", "debug", "imp_rate", "imp_rounds", "rewind_epoch")
    same += ("snip_batches", "dst_interval", "dst_drop_fraction", "dst_regrow")
    same += ("runtime", "latency_model", "latency_hook", "board")
    return EvalSettings(
        epochs=epochs,
        batch_size=config.train_batch_size,
        target_flops=config.flops,
        score_test=score_test,
        **{name: getattr(config, name) for name in same},
    )


@dataclass(frozen=True)
class TrainConfig:
    """The ``[TRAIN]`` section: one search. See the module docstring for each key."""

    name: str = "digits_cnn"
    root: str = "results"
    problem: str = "digits_cnn"
    r1: int = 2
    r2: int = 4
    r3: int = 2
    epochs1: int = 3
    epochs2: int = 4
    epochs3: int = 4
    batch_size: int = 2
    objectives: int = 3
    debug: bool = False
    flops: float = 1e8
    quant_scheme: str = "post"
    morphisms: bool = True
    pruning: bool = True
    prune_method: str = "magnitude"
    keep_ratio: float = 0.5
    finetune_epochs: int = 1
    train_batch_size: int = 64
    imp_rate: float | None = None
    imp_rounds: int = 0
    rewind_epoch: int = 0
    snip_batches: int = 4
    dst_interval: int = 0
    dst_drop_fraction: float = 0.3
    dst_regrow: str = "random"
    splitter: bool = False
    seed: int = 0
    device: str = "auto"
    max_model_size: int | None = None
    max_working_memory: int | None = None
    max_latency: float | None = None
    tolerance: float = 0.0
    patience: int = 2
    ref_point: tuple[float, ...] | None = None
    generator: str = "pool"
    num_candidates: int = 256
    cost_scale: str = "linear"
    runtime: str = "tflm"
    latency_model: str = "flops"
    latency_hook: str | None = None
    board: Board | None = None
    reserve_ram: int = 0
    reserve_flash: int = 0
    deploy_check: str = "none"
    executor: str = "sequential"
    workers: int = 1
    threads: int = 1
    ray_address: str = "local"
    num_cpus: float = 1.0
    num_gpus: float = 0.0

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
class TestConfig:
    """The ``[TEST]`` section: retrain one arm of a finished search and score it on test."""

    __test__ = False  # not a pytest test class, whatever its name says

    name: str = "digits_cnn"
    root: str = "results"
    arm: int = 0
    epochs: int = 5
    pruning: bool = True
    quant_scheme: str = "post"
    objectives: int = 3
    splitter: bool = False
    prune_method: str = "magnitude"
    keep_ratio: float = 0.5
    finetune_epochs: int = 1
    train_batch_size: int = 64
    imp_rate: float | None = None
    imp_rounds: int = 0
    rewind_epoch: int = 0
    snip_batches: int = 4
    dst_interval: int = 0
    dst_drop_fraction: float = 0.3
    dst_regrow: str = "random"
    flops: float = 1e8
    runtime: str = "tflm"
    latency_model: str = "flops"
    latency_hook: str | None = None
    board: Board | None = None
    device: str = "auto"
    seed: int = 0
    debug: bool = False

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


_KEYS: dict[str, tuple[str, ...]] = {
    "DEFAULT": ("train",),
    "TRAIN": tuple(f.name for f in fields(TrainConfig)),
    "TEST": tuple(f.name for f in fields(TestConfig)),
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
