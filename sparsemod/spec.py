"""How a key's text is read and checked: :class:`Spec`, and the kinds of keys there are.

A :class:`Spec` is a key's parser (text to value) and check (value to what is wrong with
it), with its default and one line of help once :meth:`Spec.declare` gives them. The
declarations themselves, one per key, are in :mod:`sparsemod.settings`. Nothing here
imports anything of sparsemod but its errors and its unit parsers.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sparsemod.units import parse_size

_BOOLS = {"true": True, "yes": True, "on": True, "1": True}
_BOOLS |= {"false": False, "no": False, "off": False, "0": False}
NONE = ("", "none")  # the texts that mean "not set" where a key may be unset


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()
"""The default of a key every section that has it must give (``[DEFAULT] train``)."""


@dataclass(frozen=True)
class Spec:
    """How one key is read from text and checked once typed; its default and help.

    ``parse(text, label)`` gives the value, raising ValueError when the text is not of the
    right kind (``check`` then says what is allowed) or ConfigError when it has a more
    precise message to give; ``check(value)`` says what is wrong with a typed value
    (``"is out of range (allowed: ...)"``), or None. ``default`` is :data:`REQUIRED` for a key
    every section must give.
    """

    parse: Callable[[str, str], Any]
    check: Callable[[Any], str | None]
    default: Any = REQUIRED
    help: str = ""

    def declare(self, default: Any, help: str) -> Spec:
        """This kind of key with its default and one line of help."""
        return replace(self, default=default, help=help)


def is_int(v: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_real(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def integer(lo: int, hi: int | None = None) -> Spec:
    allowed = f"(allowed: an integer >= {lo})" if hi is None else f"(allowed: {lo} to {hi})"

    def check(v: Any) -> str | None:
        if not is_int(v):
            return f"is not an integer {allowed}"
        return None if lo <= v and (hi is None or v <= hi) else f"is out of range {allowed}"

    return Spec(lambda text, _: int(text), check)


def real(lo: float, hi: float | None, allowed: str) -> Spec:
    # keep_ratio is (0, 1] and tolerance [0, inf): hi given means the low end is open.
    def check(v: Any) -> str | None:
        if not is_real(v):
            return f"is not a number (allowed: {allowed})"
        ok = lo < v <= hi if hi is not None else v >= lo
        return None if ok else f"is out of range (allowed: {allowed})"

    return Spec(lambda text, _: float(text), check)


def share(*, zero: bool, optional: bool = False) -> Spec:
    # A share strictly below 1: imp_rate (0, 1), dst_drop_fraction [0, 1). Pruning all
    # remaining weights in one round, or dropping every active weight, leaves no network.
    allowed = ("[0, 1)" if zero else "(0, 1)") + (", or none" if optional else "")

    def check(v: Any) -> str | None:
        if optional and v is None:
            return None
        if not is_real(v):
            return f"is not a number (allowed: a number in {allowed})"
        ok = (0.0 <= v if zero else 0.0 < v) and v < 1.0
        return None if ok else f"is out of range (allowed: a number in {allowed})"

    def parse(text: str, label: str) -> float | None:
        return None if optional and text.strip().lower() in NONE else float(text)

    return Spec(parse, check)


def boolean() -> Spec:
    def parse(text: str, _: str) -> bool:
        return _BOOLS[text.strip().lower()]  # KeyError is reported by check

    def check(v: Any) -> str | None:
        ok = isinstance(v, bool)
        return None if ok else "is not a boolean (allowed: true, false, yes, no, on, off, 1, 0)"

    return Spec(parse, check)


def choice(options: Sequence[str]) -> Spec:
    def check(v: Any) -> str | None:
        return None if v in options else f"is not one of {', '.join(options)}"

    return Spec(lambda text, _: text.strip().lower(), check)


def pattern(regex: str, problem: str, *, lower: bool = False, optional: bool = False) -> Spec:
    compiled = re.compile(regex)

    def check(v: Any) -> str | None:
        ok = (optional and v is None) or (isinstance(v, str) and compiled.fullmatch(v))
        return None if ok else problem

    def parse(text: str, _: str) -> str | None:
        if optional and text.strip().lower() in NONE:
            return None
        return text.strip().lower() if lower else text.strip()

    return Spec(parse, check)


def optional(parse: Callable[[str, str], Any], kind: str, check_type: Callable) -> Spec:
    def check(v: Any) -> str | None:
        if v is None:
            return None
        if not check_type(v):
            return f"is not {kind} (allowed: {kind} > 0, or none)"
        return None if v > 0 else f"is out of range (allowed: {kind} > 0, or none)"

    return Spec(
        lambda text, label: None if text.strip().lower() in NONE else parse(text, label), check
    )


def size() -> Spec:
    def check(v: Any) -> str | None:
        ok = is_int(v) and v >= 0
        return None if ok else "is out of range (allowed: a size in bytes >= 0, e.g. 8KB)"

    return Spec(parse_size, check)


def did_you_mean(word: str, options: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``options``, or ``""``."""
    close = difflib.get_close_matches(word, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def shown(value: Any) -> str:
    """A default as a config file writes it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        millions = value / 1e6
        return f"{millions:g}M" if value >= 1e6 and millions.is_integer() else f"{value:g}"
    return str(value)


def key_table(title: str, keys: Sequence[str], specs: Mapping[str, Spec], width: int = 92) -> str:
    """``keys`` as a plain-text table under ``title``: key, help and default."""
    lines = [title]
    for key in keys:
        spec = specs[key]
        text = (
            spec.help
            if spec.default is REQUIRED
            else f"{spec.help} (default {shown(spec.default)})"
        )
        row = f"  {key:<18}"
        for word in text.split():
            if len(row) + 1 + len(word) > width and row.strip():
                lines.append(row.rstrip())
                row = " " * 20
            row += ("" if row.endswith(" ") else " ") + word
        lines.append(row.rstrip())
    return "\n".join(lines)


def markdown_table(keys: Sequence[str], specs: Mapping[str, Spec]) -> str:
    """``keys`` as a markdown table: key, meaning, default."""
    rows = ["| key | meaning | default |", "|---|---|---|"]
    for key in keys:
        spec = specs[key]
        value = "required" if spec.default is REQUIRED else f"`{shown(spec.default)}`"
        text = spec.help.replace("|", "/").replace("<", "&lt;")
        rows.append(f"| `{key}` | {text} | {value} |")
    return "\n".join(rows)
