"""Every key's declaration: how its text is read and which values it takes.

The one place a range is written. ``config.ini``, ``--set`` and REST bodies are read through
it (:mod:`sparsemod.config`), and the evaluator and the pruners check the values they are
given with :func:`check_setting`, so a value one of them accepts the others accept too.
The checks that span several keys are in :mod:`sparsemod.combinations`. Nothing here
imports torch or anything of sparsemod but its errors.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sparsemod.errors import ConfigError
from sparsemod.units import parse_duration, parse_flops, parse_size

OBJECTIVES = ("error", "model_size_bytes", "working_memory_bytes", "latency_s")
QUANT_SCHEMES = ("post", "dynamic", "both", "none")
GENERATORS = ("pool", "ax")
COST_SCALES = ("linear", "log")
EXECUTORS = ("sequential", "processes", "ray")
DEPLOY_FORMATS = ("tflite", "executorch", "onnx")  # sparsemod.deploy.<format> holds each
DEPLOY_CHECKS = ("none", *DEPLOY_FORMATS)  # deploy_check
# The cost models of the size and working-memory objectives (sparsemod.objectives.runtime).
RUNTIMES = ("tflm", "ideal")
LATENCY_MODELS = ("flops", "ops")  # ops: per-op cycles on the board's core

_FUNCTION = r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*"  # package.module:function
_BOOLS = {"true": True, "yes": True, "on": True, "1": True}
_BOOLS |= {"false": False, "no": False, "off": False, "0": False}
_NONE = ("", "none")


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


@dataclass(frozen=True)
class Spec:
    """How one key is read from text and checked once typed."""

    # (text, label) -> value; raises ValueError when the text is not of the right kind,
    # or ConfigError when it has a more precise message to give.
    parse: Callable[[str, str], Any]
    # value -> what is wrong with it ("is out of range (allowed: ...)"), or None.
    check: Callable[[Any], str | None]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _integer(lo: int) -> Spec:
    allowed = f"(allowed: an integer >= {lo})"

    def check(v: Any) -> str | None:
        if not _is_int(v):
            return f"is not an integer {allowed}"
        return None if v >= lo else f"is out of range {allowed}"

    return Spec(lambda text, _: int(text), check)


def _real(lo: float, hi: float | None, allowed: str) -> Spec:
    # keep_ratio is (0, 1] and tolerance [0, inf): hi given means the low end is open.
    def check(v: Any) -> str | None:
        if not _is_real(v):
            return f"is not a number (allowed: {allowed})"
        ok = lo < v <= hi if hi is not None else v >= lo
        return None if ok else f"is out of range (allowed: {allowed})"

    return Spec(lambda text, _: float(text), check)


def _share(*, zero: bool, optional: bool = False) -> Spec:
    # A share strictly below 1: imp_rate (0, 1), dst_drop_fraction [0, 1). Pruning all
    # remaining weights in one round, or dropping every active weight, leaves no network.
    allowed = ("[0, 1)" if zero else "(0, 1)") + (", or none" if optional else "")

    def check(v: Any) -> str | None:
        if optional and v is None:
            return None
        if not _is_real(v):
            return f"is not a number (allowed: a number in {allowed})"
        ok = (0.0 <= v if zero else 0.0 < v) and v < 1.0
        return None if ok else f"is out of range (allowed: a number in {allowed})"

    def parse(text: str, label: str) -> float | None:
        return None if optional and text.strip().lower() in _NONE else float(text)

    return Spec(parse, check)


def _boolean() -> Spec:
    def parse(text: str, _: str) -> bool:
        return _BOOLS[text.strip().lower()]  # KeyError is reported by check

    def check(v: Any) -> str | None:
        ok = isinstance(v, bool)
        return None if ok else "is not a boolean (allowed: true, false, yes, no, on, off, 1, 0)"

    return Spec(parse, check)


def _choice(options: Sequence[str]) -> Spec:
    def check(v: Any) -> str | None:
        return None if v in options else f"is not one of {', '.join(options)}"

    return Spec(lambda text, _: text.strip().lower(), check)


def _pattern(regex: str, problem: str, *, lower: bool = False, optional: bool = False) -> Spec:
    compiled = re.compile(regex)

    def check(v: Any) -> str | None:
        ok = (optional and v is None) or (isinstance(v, str) and compiled.fullmatch(v))
        return None if ok else problem

    def parse(text: str, _: str) -> str | None:
        if optional and text.strip().lower() in _NONE:
            return None
        return text.strip().lower() if lower else text.strip()

    return Spec(parse, check)


def _optional(parse: Callable[[str, str], Any], kind: str, check_type: Callable) -> Spec:
    def check(v: Any) -> str | None:
        if v is None:
            return None
        if not check_type(v):
            return f"is not {kind} (allowed: {kind} > 0, or none)"
        return None if v > 0 else f"is out of range (allowed: {kind} > 0, or none)"

    return Spec(
        lambda text, label: None if text.strip().lower() in _NONE else parse(text, label), check
    )


def _parse_arm(text: str, _: str) -> int:
    # SpArSeMod names arms "<trial>_<arm>"; each of our trials has one arm.
    match = re.fullmatch(r"\s*(\d+)(?:_\d+)?\s*", text)
    if not match:
        raise ValueError(text)
    return int(match.group(1))


def _parse_ref_point(text: str, label: str) -> tuple[float, ...] | None:
    stripped = text.strip()
    if stripped.lower() in _NONE:
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
    ok = v is None or (isinstance(v, tuple) and all(_is_real(x) and x > 0 for x in v))
    return None if ok else "is not a reference point (allowed: numbers > 0, one per objective)"


def _parse_board(text: str, _: str) -> str | None:
    stripped = text.strip().lower()
    return None if stripped in _NONE else stripped


def _check_board(v: Any) -> str | None:
    # A name is checked against the board table where the table is (it is data, not a
    # range); a board read from a [BOARD] section arrives as that table's record.
    if v is None or isinstance(v, str) or hasattr(v, "sram_bytes"):
        return None
    return "is not a board (allowed: a name from `sparsemod boards`, or none)"


def _integer_size() -> Spec:
    def check(v: Any) -> str | None:
        ok = _is_int(v) and v >= 0
        return None if ok else "is out of range (allowed: a size in bytes >= 0, e.g. 8KB)"

    return Spec(parse_size, check)


SPECS: dict[str, Spec] = {
    "train": _boolean(),
    "name": _pattern(
        r"[A-Za-z0-9_][A-Za-z0-9._-]*",
        "is not a plain name (allowed: letters, digits, '_', '.', '-', no path separators)",
    ),
    "root": _pattern(r".*\S.*", "is empty (allowed: a folder path)"),
    "problem": _pattern(
        rf"[A-Za-z_][\w-]*|{_FUNCTION}",
        "is not a problem (allowed: a problem name such as digits_cnn, "
        "or 'package.module:function')",
    ),
    "r1": _integer(1),
    "r2": _integer(0),
    "r3": _integer(0),
    "epochs1": _integer(1),
    "epochs2": _integer(1),
    "epochs3": _integer(1),
    "epochs": _integer(1),
    "batch_size": _integer(1),
    "objectives": Spec(
        lambda text, label: parse_objectives(text, label),
        lambda v: None if _is_int(v) and 1 <= v <= 4 else "is out of range (allowed: 1 to 4)",
    ),
    "debug": _boolean(),
    "flops": Spec(
        parse_flops,
        lambda v: None if _is_real(v) and v > 0 else "is out of range (allowed: a number > 0)",
    ),
    "quant_scheme": _choice(QUANT_SCHEMES),
    "morphisms": _boolean(),
    "pruning": _boolean(),
    "prune_method": _pattern(r"[A-Za-z_][\w-]*", "is not a pruning method name"),
    "keep_ratio": _real(0.0, 1.0, "a number in (0, 1]"),
    "finetune_epochs": _integer(0),
    "train_batch_size": _integer(1),
    "splitter": _boolean(),
    "seed": _integer(0),
    "device": _pattern(
        r"auto|cpu|cuda(:\d+)?", "is not a device (allowed: auto, cpu, cuda, cuda:N)", lower=True
    ),
    "max_model_size": _optional(parse_size, "a size in bytes", _is_int),
    "max_working_memory": _optional(parse_size, "a size in bytes", _is_int),
    "max_latency": _optional(parse_duration, "a duration in seconds", _is_real),
    "tolerance": _real(0.0, None, "a number >= 0; 0 disables the stopper"),
    "patience": _integer(1),
    "ref_point": Spec(_parse_ref_point, _check_ref_point),
    "generator": _choice(GENERATORS),
    "num_candidates": _integer(8),
    "cost_scale": _choice(COST_SCALES),
    "imp_rate": _share(zero=False, optional=True),
    "imp_rounds": _integer(0),
    "rewind_epoch": _integer(0),
    "snip_batches": _integer(1),
    "dst_interval": _integer(0),
    "dst_drop_fraction": _share(zero=True),
    "dst_regrow": _choice(("random", "gradient")),
    "executor": _choice(EXECUTORS),
    "deploy_check": _choice(DEPLOY_CHECKS),
    "runtime": _choice(RUNTIMES),
    "latency_model": _choice(LATENCY_MODELS),
    "board": Spec(_parse_board, _check_board),
    "latency_hook": _pattern(
        _FUNCTION, "is not a function (allowed: 'package.module:function', or none)", optional=True
    ),
    "reserve_ram": _integer_size(),
    "reserve_flash": _integer_size(),
    "workers": _integer(1),
    "threads": _integer(1),
    "ray_address": _pattern(
        r"auto|local|[\w.-]+:\d+", "is not a Ray address (allowed: auto, local, host:port)"
    ),
    "num_cpus": _real(0.0, None, "a number >= 0"),
    "num_gpus": _real(0.0, None, "a number >= 0"),
    "arm": Spec(
        _parse_arm,
        lambda v: (
            None
            if _is_int(v) and v >= 0
            else "is not a trial index (allowed: an integer >= 0, or SpArSeMod's 3_0 form)"
        ),
    ),
}


def did_you_mean(word: str, options: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``options``, or ``""``."""
    close = difflib.get_close_matches(word, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


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
