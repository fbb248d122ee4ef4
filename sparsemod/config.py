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
  train_batch_size, flops, device, seed, debug
                    as in [TRAIN]
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from sparsemod.errors import ConfigError
from sparsemod.settings import (
    OBJECTIVES,
    SPECS,
    Spec,
    check_pruning,
    check_setting,
    did_you_mean,
)

if TYPE_CHECKING:
    from sparsemod.evaluate import EvalSettings

SECTIONS = ("DEFAULT", "TRAIN", "TEST")


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


def _eval_settings(config: Any, epochs: int, score_test: bool) -> EvalSettings:
    # Imported here: config sits below evaluate (and torch) in the dependency order.
    from sparsemod.evaluate import EvalSettings

    same = ("pruning", "prune_method", "keep_ratio", "finetune_epochs", "quant_scheme")
    same += ("device", "seed", "debug", "imp_rate", "imp_rounds", "rewind_epoch")
    same += ("snip_batches", "dst_interval", "dst_drop_fraction", "dst_regrow")
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

    @property
    def objective_names(self) -> list[str]:
        """The names of the objectives searched, in SpArSeMod's cumulative order."""
        return list(OBJECTIVES[: self.objectives])

    @property
    def constraints(self) -> dict[str, float]:
        """Hard limits by objective name, only those set (bytes and seconds)."""
        limits = {
            "model_size_bytes": self.max_model_size,
            "working_memory_bytes": self.max_working_memory,
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


# The [TRAIN] keys a resumed search may change: how much more to search, how arms are
# chosen, how to stop, where to run and where results go. None of them changes what an
# already measured trial means; every other key does (the objectives, the problem, the
# epochs, the compression, the seed, the batch per round, the limits, the reference point).
RESUMABLE_KEYS = frozenset(
    {"name", "root", "r1", "r2", "r3", "morphisms", "tolerance", "patience", "debug"}
    | {"generator", "num_candidates", "cost_scale", "deploy_check"}
    | {"executor", "workers", "threads", "ray_address", "num_cpus", "num_gpus"}
)


def resume_changes(stored: Mapping[str, Any], current: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """What a resume changes against the config a search was started with.

    Args:
        stored: the search's stored config (JSON values; a key it lacks, from an older
            sparsemod, counts as that key's default).
        current: the config given now.

    Returns:
        ``{key: (stored value, new value)}`` for the keys that differ, all in
        :data:`RESUMABLE_KEYS`.

    Raises:
        ConfigError: a key outside :data:`RESUMABLE_KEYS` differs; the message names each
            one with both values.
    """
    changed: dict[str, tuple[Any, Any]] = {}
    for f in fields(TrainConfig):
        new = getattr(current, f.name)
        old = stored.get(f.name, f.default)
        as_json = list(new) if isinstance(new, tuple) else new
        if old != as_json:
            changed[f.name] = (old, as_json)
    refused = [k for k in changed if k not in RESUMABLE_KEYS]
    if refused:
        listed = "; ".join(f"{k} {changed[k][0]!r} -> {changed[k][1]!r}" for k in refused)
        raise ConfigError(
            f"[TRAIN] cannot resume with this config: it changes what the stored trials "
            f"measured ({listed}). Resume with the values the search started with, or "
            f"start a new search under another name. A resume may change only "
            f"{', '.join(sorted(RESUMABLE_KEYS))}",
            section="TRAIN",
            key=refused[0],
        )
    return changed


_KEYS: dict[str, tuple[str, ...]] = {
    "DEFAULT": ("train",),
    "TRAIN": tuple(f.name for f in fields(TrainConfig)),
    "TEST": tuple(f.name for f in fields(TestConfig)),
}


def _unknown_key(section: str, key: str) -> str:
    known = _KEYS[section]
    hint = did_you_mean(key, known)
    if section == "DEFAULT":
        # configparser's habit is to share keys through [DEFAULT]; we read only `train` there.
        homes = [s for s in ("TRAIN", "TEST") if key in _KEYS[s]]
        if homes:
            hint += f"; put it in {' or '.join(f'[{s}]' for s in homes)}"
    return f"unknown key {key!r} (known keys: {', '.join(known)}{hint})"


def _section_name(name: str, where: str) -> str:
    if name.upper() in SECTIONS:
        return name.upper()
    hint = did_you_mean(name.upper(), SECTIONS)
    raise ConfigError(
        f"{where}: unknown section [{name}] (known sections: {', '.join(SECTIONS)}{hint})",
        section=name,
    )


def _as_text(value: Any, label: str) -> str:
    # The REST service passes JSON values; the parsers read text, as from a file.
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_as_text(v, label) for v in value) + "]"
    raise ConfigError(
        f"{label}: {value!r} is a {type(value).__name__} (allowed: a string, number or boolean)"
    )


def _read_file(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    source = os.fspath(path)
    parser = configparser.ConfigParser(
        interpolation=None,
        inline_comment_prefixes=(";", "#"),
        # A section name nobody writes: [DEFAULT] becomes an ordinary section whose keys
        # do not leak into [TRAIN] and [TEST].
        default_section="\x00no default section",
    )
    try:
        with open(source, encoding="utf-8") as f:
            parser.read_file(f, source=source)
    except FileNotFoundError:
        raise ConfigError(f"config file {source!r} not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"config file {source!r} cannot be read ({exc.strerror})") from None
    except configparser.Error as exc:
        reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise ConfigError(f"{source}: not a valid INI file ({reason})") from None
    sections: dict[str, dict[str, str]] = {}
    for name in parser.sections():
        canonical = _section_name(name, source)
        if canonical in sections:
            raise ConfigError(f"{source}: section [{canonical}] given twice", section=canonical)
        sections[canonical] = dict(parser[name])
    return sections


def _read_data(data: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    for name, body in data.items():
        canonical = _section_name(str(name), "<dict>")
        if not isinstance(body, Mapping):
            raise ConfigError(
                f"<dict>: section [{name}] is not a mapping of keys to values", section=canonical
            )
        if canonical in sections:
            raise ConfigError(f"<dict>: section [{canonical}] given twice", section=canonical)
        section: dict[str, str] = {}
        for key, value in body.items():
            lowered = str(key).strip().lower()  # keys are case-insensitive, as in a file
            if lowered in section:
                raise ConfigError(
                    f"[{canonical}] {lowered}: given twice", section=canonical, key=lowered
                )
            try:
                section[lowered] = _as_text(value, f"[{canonical}] {lowered}")
            except ConfigError as exc:
                raise ConfigError(str(exc), section=canonical, key=lowered) from None
        sections[canonical] = section
    return sections


def _apply_override(sections: dict[str, dict[str, str]], item: str) -> None:
    target, eq, value = item.partition("=")
    if not eq:
        raise ConfigError(f"--set {item!r} has no '=' (write SECTION.key=value)")
    name, dot, key = target.strip().partition(".")
    if not dot or not name or not key.strip():
        raise ConfigError(f"--set {item!r} has no SECTION.key before '=' (write SECTION.key=value)")
    section = _section_name(name, f"--set {item}")
    key = key.strip().lower()
    if key not in _KEYS[section]:
        raise ConfigError(f"--set {item}: {_unknown_key(section, key)}", section=section, key=key)
    sections.setdefault(section, {})[key] = value.strip()


def _build(cls: type, section: str, raw: Mapping[str, str]) -> Any:
    values: dict[str, Any] = {}
    for key, text in raw.items():
        if key not in _KEYS[section]:
            raise ConfigError(f"[{section}] {_unknown_key(section, key)}", section=section, key=key)
        values[key] = _convert(section, key, text)
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
        sections = _read_file(path)
    else:
        source = "<dict>"
        sections = _read_data(data or {})
    for item in overrides:
        _apply_override(sections, item)

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
    train_config = _build(TrainConfig, "TRAIN", sections["TRAIN"]) if "TRAIN" in sections else None
    test_config = _build(TestConfig, "TEST", sections["TEST"]) if "TEST" in sections else None
    return RunConfig(train, train_config, test_config, source)
