"""sparsemod's own keys, each declared once: how its text is read, which values it takes,
its default and one line of help (:data:`SPECS`). Each pruning method declares its own keys
in its ``Options`` (:mod:`sparsemod.compress.options`); :mod:`sparsemod.candidate` joins
the two.

``config.ini``, ``--set`` and REST bodies are read through them (:mod:`sparsemod.config`);
the sections' dataclasses and the evaluator take their defaults from them (:func:`default`),
and the keys that decide how one candidate is trained, compressed and measured are one
dataclass, :class:`sparsemod.candidate.CandidateSettings` (:class:`CandidateCore` and the
methods' keys), that ``[TRAIN]``, ``[TEST]`` and the evaluator all extend; the evaluator and
the pruners check the values they are given with :func:`check_setting`, so a value one of
them accepts the others accept too. The config's docstring and README.md's key tables are
written from the declarations. The kinds of keys are in :mod:`sparsemod.spec`; the checks
that span several keys in :mod:`sparsemod.combinations` and in each method's ``Options``.
Nothing here imports torch or anything of sparsemod but its errors.

Adding a key: one entry in :data:`SPECS`, one field in the dataclass of the sections that
take it (:class:`CandidateCore` for a key of every candidate), and the code that uses it;
a pruning method's key is one field of its ``Options`` and the code that uses it. Then
``python -m sparsemod.config.docs README.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparsemod.core.vocabulary import OBJECTIVES
from sparsemod.errors import ConfigError
from sparsemod.spec import (
    NONE,
    REQUIRED,
    Spec,
    boolean,
    choice,
    did_you_mean,
    integer,
    is_int,
    is_real,
    optional,
    pattern,
    real,
    size,
)
from sparsemod.units import parse_duration, parse_flops, parse_size

if TYPE_CHECKING:
    from sparsemod.core.boards import Board

__all__ = [
    "COMPRESSIONS", "COST_SCALES", "EARLY_STOPPING", "DEPLOY_CHECKS", "DEPLOY_FORMATS",
    "EXECUTORS", "GENERATORS", "LATENCY_MODELS", "OBJECTIVES", "QUANT_SCHEMES", "RUNTIMES", "SPECS",
    "CandidateCore", "Spec", "check_setting", "default", "did_you_mean",
    "parse_duration", "parse_flops", "parse_objectives", "parse_size",
]  # fmt: skip

QUANT_SCHEMES = ("post", "dynamic", "both", "none")
COMPRESSIONS = ("none", "lut")  # lut: sparsemod.compress.cluster, TFLM's LUT tables
GENERATORS = ("pool", "ax")
COST_SCALES = ("linear", "log")
EARLY_STOPPING = ("none", "front")
EXECUTORS = ("sequential", "processes", "ray")
DEPLOY_FORMATS = ("tflite", "executorch", "onnx")  # sparsemod.deploy.<format> holds each
DEPLOY_CHECKS = ("none", *DEPLOY_FORMATS)  # deploy_check
# The cost models of the size and working-memory objectives (sparsemod.objectives.runtime).
RUNTIMES = ("tflm", "ideal", "executorch")
LATENCY_MODELS = ("flops", "ops")  # ops: per-op cycles on the board's core

_FUNCTION = r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*"  # package.module:function


def parse_objectives(text: str, key: str = "objectives") -> int:
    """The number of objectives, from ``"3"`` or SpArSeMod's list form ``"[0, 1, 2]"``.

    Raises:
        ConfigError: not 1 to 4, or a list other than ``[0, ..., n-1]`` with n in 1..4.
    """
    stripped = text.strip()
    try:
        if stripped.startswith("[") and stripped.endswith("]"):
            items = [int(item) for item in stripped[1:-1].split(",")]
            count = len(items) if items == list(range(len(items))) else 0
        else:
            count = int(stripped)
    except ValueError:
        count = 0
    if not 1 <= count <= len(OBJECTIVES):
        raise ConfigError(
            f"{key}: {text!r} is not a number of objectives "
            "(allowed: 1 to 4, or the list [0, ..., n-1] with n from 1 to 4)"
        )
    return count


def _parse_arm(text: str, _: str) -> int:
    # SpArSeMod names arms "<trial>_<arm>"; each of our trials has one arm.
    match = re.fullmatch(r"\s*(\d+)(?:_\d+)?\s*", text)
    if not match:
        raise ValueError(text)
    return int(match.group(1))


def _parse_ref_point(text: str, label: str) -> tuple[float, ...] | None:
    stripped = text.strip()
    if stripped.lower() in NONE:
        return None
    if stripped[:1] + stripped[-1:] in ("[]", "()"):
        stripped = stripped[1:-1]
    items = [item.strip() for item in stripped.split(",")]
    if len(items) > len(OBJECTIVES):
        raise ConfigError(f"{label}: {text!r} has {len(items)} values (allowed: 1 to 4)")
    parsers: list[Callable[[str, str], float]] = [_parse_float, parse_size, parse_size]
    parsers.append(parse_duration)
    point = []
    for i, item in enumerate(items):
        value = float(parsers[i](item, f"{label} value {i + 1} ({OBJECTIVES[i]})"))
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(
                f"{label}: {text!r} value {i + 1} is out of range (allowed: numbers > 0)"
            )
        point.append(value)
    return tuple(point)


def _parse_float(text: str, label: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{label}: {text!r} is not a number") from None


def _check_ref_point(v: Any) -> str | None:
    ok = v is None or (isinstance(v, tuple) and all(is_real(x) and x > 0 for x in v))
    return None if ok else "is not a reference point (allowed: numbers > 0, one per objective)"


def _parse_board(text: str, _: str) -> str | None:
    stripped = text.strip().lower()
    return None if stripped in NONE else stripped


def _check_board(v: Any) -> str | None:
    # A name is checked against the board table where the table is (it is data, not a
    # range); a board read from a [BOARD] section arrives as that table's record.
    if v is None or isinstance(v, str) or hasattr(v, "sram_bytes"):
        return None
    return "is not a board (allowed: a name from `sparsemod boards`, or none)"


SPECS: dict[str, Spec] = {
    # [DEFAULT]
    "train": boolean().declare(
        REQUIRED, "true: run a search ([TRAIN]); false: retrain and test one arm ([TEST])"
    ),
    # where results go, and what is searched
    "name": pattern(
        r"[A-Za-z0-9_][A-Za-z0-9._-]*",
        "is not a plain name (allowed: letters, digits, '_', '.', '-', no path separators)",
    ).declare("digits_cnn", "name of the search; results go to <root>/<name>/"),
    "root": pattern(r".*\S.*", "is empty (allowed: a folder path)").declare(
        "results", "folder holding the results"
    ),
    "problem": pattern(
        rf"[A-Za-z_][\w-]*|{_FUNCTION}",
        "is not a problem (allowed: a problem name such as digits_cnn, "
        "or 'package.module:function')",
    ).declare("digits_cnn", "a registered problem name or 'package.module:function'"),
    "arm": Spec(
        _parse_arm,
        lambda v: (
            None
            if is_int(v) and v >= 0
            else "is not a trial index (allowed: an integer >= 0, or SpArSeMod's 3_0 form)"
        ),
    ).declare(0, "[TEST]: trial index to retrain, e.g. 3 (SpArSeMod's 3_0 also works)"),
    # the budget
    "r1": integer(1).declare(2, "rounds of Sobol, >= 1"),
    "r2": integer(0).declare(4, "rounds of GP-based optimization, >= 0"),
    "r3": integer(0).declare(2, "rounds of morphisms ranked by the GP, >= 0"),
    "epochs1": integer(1).declare(3, "training epochs of a candidate in phase 1, >= 1"),
    "epochs2": integer(1).declare(4, "training epochs of a candidate in phase 2, >= 1"),
    "epochs3": integer(1).declare(4, "training epochs of a candidate in phase 3, >= 1"),
    "epochs": integer(1).declare(5, "[TEST]: training epochs before testing, >= 1"),
    "batch_size": integer(1).declare(2, "arms per round, chosen jointly in the GP phase, >= 1"),
    "objectives": Spec(
        lambda text, label: parse_objectives(text, label),
        lambda v: None if is_int(v) and 1 <= v <= 4 else "is out of range (allowed: 1 to 4)",
    ).declare(
        3, "1 error; 2 + model size; 3 + working memory; 4 + latency; or SpArSeMod's [0, 1, 2]"
    ),
    "morphisms": boolean().declare(True, "run the morphism phase at all"),
    # how a candidate is trained and compressed
    "train_batch_size": integer(1).declare(64, "SGD batch size, >= 1"),
    "pruning": boolean().declare(True, "prune the networks"),
    "prune_method": pattern(r"[A-Za-z_][\w-]*", "is not a pruning method name").declare(
        "magnitude",
        "magnitude (global), magnitude_layerwise (SpArSe), l1_structured, imp, snip or "
        "dynamic_sparse",
    ),
    "keep_ratio": real(0.0, 1.0, "a number in (0, 1]").declare(
        0.5, "share of weights kept, in (0, 1], when the space has no keep_ratio"
    ),
    "finetune_epochs": integer(0).declare(1, "epochs of training after pruning, >= 0"),
    "quant_scheme": choice(QUANT_SCHEMES).declare(
        "post",
        "post (static int8), dynamic (int8 weights of Linear/LSTM/GRU), both or none; "
        "runtime = tflm deploys post (or both)",
    ),
    "compression": choice(COMPRESSIONS).declare(
        "none",
        "none or lut: share each output channel's weights among 2^lut_bits values (after "
        "pruning), which TFLM stores as lut_bits-bit indices into per-channel tables where "
        "that makes the flatbuffer smaller (needs runtime = tflm)",
    ),
    "lut_bits": integer(1, 7).declare(
        4, "index bits of compression = lut, 1 to 7, when the space has no lut_bits"
    ),
    "splitter": boolean().declare(
        False, "the problem batches sequences of different lengths with its collate_fn"
    ),
    "seed": integer(0).declare(0, "seed of the search and of every trial, >= 0"),
    "device": pattern(
        r"auto|cpu|cuda(:\d+)?", "is not a device (allowed: auto, cpu, cuda, cuda:N)", lower=True
    ).declare("auto", "where candidates train: auto, cpu, cuda or cuda:N"),
    "debug": boolean().declare(False, "keep the traceback of a failed candidate"),
    # what the objectives count
    "runtime": choice(RUNTIMES).declare(
        "tflm",
        "whose counts model size and working memory are: tflm (the .tflite flatbuffer and "
        "the smallest arena TensorFlow Lite Micro runs it in), executorch (the Cortex-M .pte "
        "program and its planned memory, CMSIS-NN scratch included) or ideal (SpArSe's "
        "sparse storage and peak live activations)",
    ),
    "flops": Spec(
        parse_flops,
        lambda v: None if is_real(v) and v > 0 else "is out of range (allowed: a number > 0)",
    ).declare(1e8, "operations per second of the device, e.g. 100M: latency = FLOPs / this"),
    "latency_model": choice(LATENCY_MODELS).declare(
        "flops", "flops (FLOPs / flops) or ops (cycles per MAC per op type on the board's core)"
    ),
    "latency_hook": pattern(
        _FUNCTION, "is not a function (allowed: 'package.module:function', or none)", optional=True
    ).declare(
        None,
        "'package.module:function' given each trained candidate's .tflite artifact, "
        "returning seconds measured on the device: the trial's latency_s, the model's kept "
        "as latency_model_s (needs runtime = tflm and litert-torch; set ref_point's latency "
        "when the board is far from the model)",
    ),
    "board": Spec(_parse_board, _check_board).declare(
        None,
        "the device: a name from `sparsemod boards`, or a [BOARD] section; its SRAM - "
        "reserve_ram and flash - reserve_flash become the memory limits unless set lower",
    ),
    "reserve_ram": size().declare(0, "SRAM the application keeps for itself, e.g. 16KB"),
    "reserve_flash": size().declare(0, "flash the application keeps for itself, e.g. 128KB"),
    # hard limits, the stopper, the hypervolume
    "max_model_size": optional(parse_size, "a size in bytes", is_int).declare(
        None, "hard limit on model size, e.g. 64KB: candidates over it are never trained"
    ),
    "max_working_memory": optional(parse_size, "a size in bytes", is_int).declare(
        None, "hard limit on working memory, e.g. 8KB"
    ),
    "max_latency": optional(parse_duration, "a duration in seconds", is_real).declare(
        None, "hard limit on latency, e.g. 10ms"
    ),
    "tolerance": real(0.0, None, "a number >= 0; 0 disables the stopper").declare(
        0.0,
        "end the GP or morphism phase when the hypervolume gains less than this over "
        "`patience` rounds (Sobol always runs its r1 rounds); 0 disables",
    ),
    "patience": integer(1).declare(2, "rounds the tolerance is measured over, >= 1"),
    "early_stopping": choice(EARLY_STOPPING).declare(
        "none", "stop a candidate once its final error cannot join the front: none or front"
    ),
    "min_epochs": integer(1).declare(2, "early stopping: epochs of a stage before it checks"),
    "stop_confidence": real(0.5, 1.0, "a number in (0.5, 1]").declare(
        0.95, "early stopping: stop when the chance of joining the front is below 1 - this"
    ),
    "ref_point": Spec(_parse_ref_point, _check_ref_point).declare(
        None,
        "hypervolume reference, one value per objective, e.g. 1.0, 50KB, 8KB, 10ms (none: "
        "error 1, each cost its limit, else 1.1 x its largest over 64 Sobol points)",
    ),
    # how the GP chooses
    "generator": choice(GENERATORS).declare(
        "pool", "pool (the exact-cost candidate pool) or ax (Ax's own generator)"
    ),
    "num_candidates": integer(8).declare(256, "size of the GP phase's candidate pool, >= 8"),
    # log: on three problems sparsemod never saw, a log scale gave a better front in log
    # size / memory hypervolume and the same in linear (bench/RESULTS.md): the costs of
    # networks for a microcontroller span orders of magnitude.
    "cost_scale": choice(COST_SCALES).declare(
        "log",
        "how the pool's acquisition weighs the costs: linear (cost / reference) or log "
        "(log-cost over the space's range)",
    ),
    "deploy_check": choice(DEPLOY_CHECKS).declare(
        "none",
        "at the end, export each Pareto model to tflite, executorch or onnx, run the test "
        "split there and keep the runtime's figures (runtime_* columns)",
    ),
    # where trials run
    "executor": choice(EXECUTORS).declare(
        "sequential", "sequential, processes (a local pool) or ray"
    ),
    "workers": integer(1).declare(1, "trials evaluated at once by processes / ray, >= 1"),
    "asynchronous": boolean().declare(
        False, "a worker that finishes gets the next GP / morph arm at once, chosen with the "
        "running ones as pending, instead of waiting for its round (order-dependent)",
    ),  # fmt: skip
    "threads": integer(1).declare(
        1, "torch threads a trial trains with, >= 1, the same in every executor"
    ),
    "ray_address": pattern(
        r"auto|local|[\w.-]+:\d+", "is not a Ray address (allowed: auto, local, host:port)"
    ).declare("local", "auto (a running cluster), local (start one) or host:port"),
    "num_cpus": real(0.0, None, "a number >= 0").declare(1.0, "CPUs a trial asks Ray for"),
    "num_gpus": real(0.0, None, "a number >= 0").declare(
        0.0, "GPUs a trial asks Ray for; fractions share one"
    ),
}
"""Every key's one declaration: how it is read and checked, its default, one line of help."""


def default(key: str) -> Any:
    """The declared default of ``key``, for the dataclass fields that carry it."""
    return SPECS[key].default


@dataclass(frozen=True)
class CandidateCore:
    """sparsemod's own keys that decide how one candidate is trained, compressed and measured.

    :class:`sparsemod.candidate.CandidateSettings` adds each pruning method's own keys;
    ``[TRAIN]`` (:class:`~sparsemod.config.TrainConfig`), ``[TEST]``
    (:class:`~sparsemod.config.TestConfig`) and the evaluator
    (:class:`~sparsemod.eval_settings.EvalSettings`) all extend that, and take these keys
    under these names, with the defaults and meanings of :data:`SPECS`. A key added here
    reaches all three.
    """

    pruning: bool = default("pruning")
    prune_method: str = default("prune_method")
    keep_ratio: float = default("keep_ratio")
    finetune_epochs: int = default("finetune_epochs")
    quant_scheme: str = default("quant_scheme")
    compression: str = default("compression")
    lut_bits: int = default("lut_bits")
    runtime: str = default("runtime")
    latency_model: str = default("latency_model")
    latency_hook: str | None = default("latency_hook")
    board: Board | None = default("board")
    device: str = default("device")
    seed: int = default("seed")
    debug: bool = default("debug")


def check_setting(
    key: str, value: Any, section: str | None = None, specs: Mapping[str, Spec] = SPECS
) -> None:
    """Check one typed value against its key's declaration (the same check as a file's).

    Args:
        key: the key.
        value: its typed value.
        section: the config section, named in the message when given.
        specs: the declarations to check against (the config's add the pruner registry).

    Raises:
        ConfigError: the value is of the wrong kind or out of range; names the key.
    """
    problem = specs[key].check(value)
    if problem:
        where = f"[{section}] " if section else ""
        raise ConfigError(f"{where}{key}: {value!r} {problem}", section=section, key=key)
