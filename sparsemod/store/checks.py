"""Checks of the values a store writes: each returns the value to store or raises.

A bad argument is the caller's error, so each raises :class:`~sparsemod.errors.ConfigError`
naming what it checked and the value given, before any transaction starts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sparsemod.errors import ConfigError
from sparsemod.store.records import HISTORY_KEYS, METRICS
from sparsemod.store.tables import NAME_MAX


def _json_default(value: Any) -> Any:
    # NumPy scalars (Ax hands some out) are not JSON types but know their Python value.
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any, what: str) -> str:
    """``value`` as compact JSON text (NumPy scalars as their Python values)."""
    try:
        return json.dumps(value, separators=(",", ":"), default=_json_default)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what} must be JSON data (numbers, strings, lists, dicts): {e}") from e


def text(value: Any, what: str, *, max_len: int = NAME_MAX, empty: bool = False) -> str:
    """A string of at most ``max_len`` characters, empty only when ``empty``."""
    if not isinstance(value, str) or (not value and not empty) or len(value) > max_len:
        raise ConfigError(
            f"{what} must be a {'' if empty else 'non-empty '}string of at most {max_len} "
            f"characters, got {value!r}"
        )
    return value


def integer(value: Any, what: str, *, minimum: int | None = 0) -> int:
    """An ``int`` (not a ``bool``) of at least ``minimum`` (no bound when ``None``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{what} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{what} must be >= {minimum}, got {value}")
    return value


def status(value: str, allowed: tuple[str, ...], what: str) -> str:
    """One of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def facts(values: Mapping[str, Any] | None, what: str) -> list[tuple[str, float]]:
    """Metric-like values to ``(name, float)`` pairs, leaving out the unmeasured ones.

    ``None`` and NaN mean "not measured": SQLite would store NaN as NULL anyway.
    """
    pairs = []
    for name, value in (values or {}).items():
        if name not in METRICS:
            raise ConfigError(f"{what} {name!r} is not one of {', '.join(METRICS)}")
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{what} {name!r} must be a number, got {value!r}") from e
        if not math.isnan(number):
            pairs.append((name, number))
    return pairs


def optional_float(value: Any, what: str) -> float | None:
    """A float, or ``None`` for ``None`` and NaN."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what} must be a number or None, got {value!r}") from e
    return None if math.isnan(number) else number


def history_rows(trial_id: int, history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ``histories`` rows of a trial's history, one per entry, in order."""
    rows = []
    for step, entry in enumerate(history):
        if "stage" not in entry or "epoch" not in entry:
            raise ConfigError(f"history entry {step} needs 'stage' and 'epoch': {dict(entry)!r}")
        extra = {k: v for k, v in entry.items() if k not in HISTORY_KEYS}
        rows.append(
            {
                "trial_id": trial_id,
                "step": step,
                "stage": text(entry["stage"], f"history entry {step} stage"),
                "epoch": integer(entry["epoch"], f"history entry {step} epoch", minimum=None),
                "loss": optional_float(entry.get("loss"), f"history entry {step} loss"),
                "val_accuracy": optional_float(
                    entry.get("val_accuracy"), f"history entry {step} val_accuracy"
                ),
                "sparsity": optional_float(entry.get("sparsity"), f"history entry {step} sparsity"),
                "extra": dumps(extra, f"history entry {step}") if extra else None,
            }
        )
    return rows


def ref_point(values: Sequence[float], n: int) -> list[float]:
    """A hypervolume reference point: ``n`` finite numbers, one per objective."""
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError) as e:
        raise ConfigError(f"ref_point must be numbers, got {values!r}") from e
    if len(numbers) != n or not all(math.isfinite(v) for v in numbers):
        raise ConfigError(
            f"ref_point must hold {n} finite numbers (one per objective), got {values!r}"
        )
    return numbers
