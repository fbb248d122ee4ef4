"""Numbers with units, read from a config's text: sizes, durations, rates and clocks.

``parse_size("1.5MB", key)`` is exactly 1,572,864 bytes (Decimal arithmetic, KB = KiB =
1024 as in SpArSe); every parser says which key and value it could not read, and what is
allowed. Nothing here imports anything of sparsemod but its errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from sparsemod.errors import ConfigError

_NUMBER = r"\s*((?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*"
_UNIT_RE = re.compile(_NUMBER + r"([^\s\d.+-]*)\s*", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "kb": 1024, "kib": 1024, "mb": 1024**2, "mib": 1024**2}
_SIZE_UNITS |= {"gb": 1024**3, "gib": 1024**3}
_TIME_UNITS = {"": 1, "s": 1, "ms": 10**3, "us": 10**6, "µs": 10**6, "μs": 10**6, "ns": 10**9}
_FLOPS_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_CLOCK_UNITS = {"": 1, "hz": 1, "khz": 10**3, "mhz": 10**6, "ghz": 10**9}


def _number_with_unit(text: str, units: Mapping[str, int]) -> tuple[Decimal, int] | None:
    # Decimal, so that "1.5MB" is exactly 1572864 bytes and "100M" exactly 1e8.
    match = _UNIT_RE.fullmatch(text)
    if not match or match.group(2).lower() not in units:
        return None
    try:
        return Decimal(match.group(1)), units[match.group(2).lower()]
    except InvalidOperation:
        return None


def parse_size(text: str, key: str) -> int:
    """Bytes from ``"4096"``, ``"512B"``, ``"2KB"``, ``"2 KiB"``, ``"1.5MB"``, ``"1GiB"``.

    KB and KiB are both 1024 bytes (as in SpArSe); units are case-insensitive.

    Raises:
        ConfigError: not a size, or not a whole number of bytes (``key`` and value named).
    """
    parsed = _number_with_unit(text, _SIZE_UNITS)
    if parsed is None:
        raise ConfigError(
            f"{key}: {text!r} is not a size (allowed: bytes with an optional unit "
            "B, KB, KiB, MB, MiB, GB, GiB, e.g. 512B, 2KB, 1.5MB)"
        )
    size = parsed[0] * parsed[1]
    if size != size.to_integral_value():
        raise ConfigError(f"{key}: {text!r} is not a whole number of bytes ({size} bytes)")
    return int(size)


def parse_duration(text: str, key: str) -> float:
    """Seconds from ``"0.01"``, ``"1s"``, ``"10ms"``, ``"250us"``, ``"250µs"``, ``"5ns"``.

    Raises:
        ConfigError: not a duration (``key`` and value named).
    """
    parsed = _number_with_unit(text, _TIME_UNITS)
    if parsed is None:
        raise ConfigError(
            f"{key}: {text!r} is not a duration (allowed: seconds with an optional unit "
            "s, ms, us, µs, ns, e.g. 10ms)"
        )
    return float(parsed[0] / parsed[1])


def parse_flops(text: str, key: str) -> float:
    """Operations per second from ``"1e8"``, ``"100M"``, ``"1.2G"``, ``"64k"`` (SI, 1000).

    Raises:
        ConfigError: not a positive number of operations per second.
    """
    parsed = _number_with_unit(text, _FLOPS_UNITS)
    if parsed is None or not parsed[0] * parsed[1] > 0:
        raise ConfigError(
            f"{key}: {text!r} is not a number of operations per second "
            "(allowed: a number > 0 with an optional unit k, M, G, T, e.g. 100M or 1e8)"
        )
    return float(parsed[0] * parsed[1])


def parse_clock(text: str, key: str) -> int:
    """Hz from ``"64000000"``, ``"64MHz"``, ``"80 MHz"``, ``"1.2GHz"``, ``"32.768kHz"``.

    Raises:
        ConfigError: not a clock rate, not a whole number of Hz, or not above 0.
    """
    parsed = _number_with_unit(text, _CLOCK_UNITS)
    hz = parsed[0] * parsed[1] if parsed is not None else None
    if hz is None or hz <= 0 or hz != hz.to_integral_value():
        raise ConfigError(
            f"{key}: {text!r} is not a clock rate (allowed: a whole number of Hz above 0 "
            "with an optional unit Hz, kHz, MHz, GHz, e.g. 64MHz)"
        )
    return int(hz)
