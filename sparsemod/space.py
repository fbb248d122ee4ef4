"""Search spaces: typed parameters, a reference point, validation of a parameter dict.

A space is plain data. The search package turns it into Ax parameters; the evaluator
only needs :meth:`SearchSpace.validate`, which gives one clear error per bad value.

A parameter may be *conditional*: ``IntParam("ch3", 4, 64, active_if={"n_conv": [3]})``
matters only when ``n_conv`` is 3 (and every parameter its condition names is active).
A point still gives every parameter a value; :meth:`SearchSpace.canonical` maps the
inactive ones to one fixed value, so that two points of the same network look the same to
the search (its encoding, its duplicate check and its morphs).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sparsemod.errors import ConfigError

Value = int | float | str | bool
Conditions = Any
"""``active_if``: ``{parameter: allowed values}``; stored as sorted ``(name, values)``
pairs, ``None`` for a parameter that is always active."""


@dataclass(frozen=True)
class IntParam:
    """An integer in ``[low, high]``, optionally searched on a log scale."""

    name: str
    low: int
    high: int
    log: bool = False
    active_if: Conditions = None

    def __post_init__(self) -> None:
        _check_range(self, numbers.Integral)
        _set_conditions(self)

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise ConfigError(f"parameter {self.name!r}: {value!r} is not an integer")
        if not self.low <= value <= self.high:
            raise ConfigError(
                f"parameter {self.name!r}: {value!r} is outside [{self.low}, {self.high}]"
            )
        return int(value)


@dataclass(frozen=True)
class FloatParam:
    """A real number in ``[low, high]``, optionally searched on a log scale."""

    name: str
    low: float
    high: float
    log: bool = False
    active_if: Conditions = None

    def __post_init__(self) -> None:
        _check_range(self, numbers.Real)
        _set_conditions(self)

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ConfigError(f"parameter {self.name!r}: {value!r} is not a number")
        if not self.low <= value <= self.high:
            raise ConfigError(
                f"parameter {self.name!r}: {value!r} is outside [{self.low}, {self.high}]"
            )
        return float(value)


@dataclass(frozen=True)
class ChoiceParam:
    """One of a list of values; ``ordered`` says whether their order means something."""

    name: str
    values: tuple[Value, ...]
    ordered: bool = False
    active_if: Conditions = None

    def __post_init__(self) -> None:
        _set_conditions(self)
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"parameter name {self.name!r} is not a non-empty string")
        if not self.values:
            raise ConfigError(f"parameter {self.name!r}: a choice needs at least one value")
        bad = [v for v in self.values if not isinstance(v, (numbers.Real, str))]
        if bad:
            raise ConfigError(f"parameter {self.name!r}: values {bad} are not numbers or text")

    def check(self, value: Any) -> Value:
        for allowed in self.values:
            if value == allowed and type(value) is type(allowed):
                return allowed
        # Numbers coming back from JSON or Ax may be float where the space holds ints.
        for allowed in self.values:
            if not isinstance(allowed, (bool, str)) and not isinstance(value, (bool, str)):
                if value == allowed:
                    return allowed
        raise ConfigError(f"parameter {self.name!r}: {value!r} is not one of {list(self.values)}")


@dataclass(frozen=True)
class FixedParam:
    """A value that is part of the space but never searched."""

    name: str
    value: Value
    active_if: Conditions = None

    def __post_init__(self) -> None:
        _set_conditions(self)

    def check(self, value: Any) -> Value:
        if value != self.value:
            raise ConfigError(f"parameter {self.name!r} is fixed to {self.value!r}, got {value!r}")
        return self.value


def _check_range(p: IntParam | FloatParam, kind: type) -> None:
    """A range parameter's bounds: numbers of its kind, low < high, low > 0 on a log scale."""
    if not isinstance(p.name, str) or not p.name:
        raise ConfigError(f"parameter name {p.name!r} is not a non-empty string")
    for bound in (p.low, p.high):
        if isinstance(bound, bool) or not isinstance(bound, kind) or not math.isfinite(bound):
            raise ConfigError(
                f"parameter {p.name!r}: bound {bound!r} is not a finite {_kind(kind)}"
            )
    if p.low >= p.high:
        raise ConfigError(
            f"parameter {p.name!r}: low {p.low!r} must be below high {p.high!r} "
            "(one value is a FixedParam)"
        )
    if p.log and p.low <= 0:
        raise ConfigError(f"parameter {p.name!r}: a log scale needs low > 0, got {p.low!r}")


def _set_conditions(p: Any) -> None:
    """Normalise ``p.active_if`` to sorted ``(name, values)`` pairs (hashable, comparable)."""
    raw = p.active_if
    if raw is None:
        return
    pairs = raw.items() if isinstance(raw, Mapping) else raw
    try:
        conditions = tuple(sorted((str(k), _values(v)) for k, v in pairs))
    except (TypeError, ValueError):
        raise ConfigError(
            f"parameter {p.name!r}: active_if {raw!r} is not a dict of parameter -> values"
        ) from None
    empty = [k for k, v in conditions if not v]
    if not conditions or empty:
        raise ConfigError(
            f"parameter {p.name!r}: active_if {raw!r} needs at least one parameter, each "
            "with at least one value"
        )
    object.__setattr__(p, "active_if", conditions)


def _values(v: Any) -> tuple[Value, ...]:
    if isinstance(v, (str, bytes)) or not isinstance(v, Iterable):
        return (v,)  # one value for a list of one
    return tuple(v)


def _kind(kind: type) -> str:
    return "integer" if kind is numbers.Integral else "number"


Param = IntParam | FloatParam | ChoiceParam | FixedParam
_KINDS: dict[type, str] = {
    IntParam: "int",
    FloatParam: "float",
    ChoiceParam: "choice",
    FixedParam: "fixed",
}


@dataclass(frozen=True)
class SearchSpace:
    """The parameters of a problem and one known-good point in it.

    Args:
        parameters: the parameters, names unique.
        reference: a complete, valid parameter dict (a sensible default network). Used as
            the starting arm in tests and as the documented example of the space.
    """

    parameters: tuple[Param, ...]
    reference: Mapping[str, Value] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [p.name for p in self.parameters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"search space: parameter names repeated: {dupes}")
        self._check_conditions()
        if self.reference:
            self.validate(self.reference)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def __getitem__(self, name: str) -> Param:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def _check_conditions(self) -> None:
        by_name = {p.name: p for p in self.parameters}
        for p in self.parameters:
            for name, values in p.active_if or ():
                what = f"parameter {p.name!r}: active_if names {name!r}"
                if name == p.name:
                    raise ConfigError(f"{what}, itself")
                if name not in by_name:
                    raise ConfigError(f"{what}, which is not in the space ({self.names})")
                if isinstance(by_name[name], FloatParam):
                    raise ConfigError(f"{what}, a real-valued parameter; name a discrete one")
                for v in values:
                    try:
                        by_name[name].check(v)
                    except ConfigError as exc:
                        raise ConfigError(f"parameter {p.name!r}: active_if: {exc}") from None
        for p in self.parameters:  # a condition may name a conditional parameter: no loops
            _no_loop(by_name, [p.name])

    def is_active(self, name: str, params: Mapping[str, Any]) -> bool:
        """Whether parameter ``name`` matters at the point ``params``: every condition of
        its ``active_if`` holds, and the parameters those conditions name are active."""
        cond = self[name].active_if
        if cond is None:
            return True
        return all(
            params.get(other) in values and self.is_active(other, params) for other, values in cond
        )

    def canonical(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` with every inactive parameter at one fixed value (its low end, its
        first choice): two points of one network give the same dict."""
        out = dict(params)
        for p in self.parameters:
            if p.active_if is not None and not self.is_active(p.name, params):
                out[p.name] = _inactive_value(p)
        return out

    def validate(self, params: Mapping[str, Any]) -> dict[str, Value]:
        """Check a parameter dict against the space.

        Fixed parameters may be left out; they are filled in.

        Returns:
            A new dict with every parameter of the space, values coerced to their type.

        Raises:
            ConfigError: naming the first unknown, missing or out-of-range parameter.
        """
        unknown = sorted(set(params) - set(self.names))
        if unknown:
            raise ConfigError(f"unknown parameter(s) {unknown}; the space has {self.names}")
        out: dict[str, Value] = {}
        for p in self.parameters:
            if p.name not in params:
                if isinstance(p, FixedParam):
                    out[p.name] = p.value
                    continue
                raise ConfigError(f"parameter {p.name!r} is missing")
            out[p.name] = p.check(params[p.name])
        return out

    def coerce(self, raw: Mapping[str, Any]) -> dict[str, Value]:
        """Values read back from text (a CSV cell, JSON, numpy scalars) in the space's types.

        Raises:
            ConfigError: as :meth:`validate`, or a value that cannot be read as its type.
        """
        out: dict[str, Any] = {}
        for name, value in raw.items():
            p = next((q for q in self.parameters if q.name == name), None)
            if p is None or value is None:
                out[name] = value
                continue
            try:
                if isinstance(p, IntParam):
                    value = int(float(value))
                elif isinstance(p, FloatParam):
                    value = float(value)
                elif isinstance(p, ChoiceParam):
                    value = next((v for v in p.values if str(v) == str(value)), value)
            except (TypeError, ValueError):
                raise ConfigError(f"parameter {name!r}: cannot read {value!r}") from None
            out[name] = value
        return self.validate(out)

    def to_dict(self) -> dict[str, Any]:
        """The space as JSON data (:meth:`from_dict` reads it back): a study stores it."""
        return {
            "parameters": [_param_dict(p) for p in self.parameters],
            "reference": dict(self.reference),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        """The space :meth:`to_dict` wrote.

        Raises:
            ConfigError: a parameter of unknown kind or with missing fields.
        """
        by_kind = {kind: c for c, kind in _KINDS.items()}
        params = []
        for raw in data.get("parameters", []):
            raw = dict(raw)
            kind = raw.pop("kind", None)
            if kind not in by_kind:
                raise ConfigError(
                    f"search space: parameter kind {kind!r} is not one of {list(by_kind)}"
                )
            if kind == "choice":
                raw["values"] = tuple(raw.get("values", ()))
            try:
                params.append(by_kind[kind](**raw))
            except TypeError as exc:
                raise ConfigError(f"search space: parameter {raw.get('name')!r}: {exc}") from None
        return cls(tuple(params), dict(data.get("reference") or {}))

    def with_parameters(self, extra: Iterable[Param]) -> SearchSpace:
        """A copy of this space with more parameters (for example a keep ratio)."""
        extra = tuple(extra)
        ref = dict(self.reference)
        for p in extra:
            ref.setdefault(p.name, _default_of(p))
        return SearchSpace(self.parameters + extra, ref)


def _no_loop(by_name: Mapping[str, Param], chain: list[str]) -> None:
    for name, _ in by_name[chain[-1]].active_if or ():
        if name in chain:
            raise ConfigError(
                f"search space: active_if conditions form a loop: {' -> '.join([*chain, name])}"
            )
        _no_loop(by_name, [*chain, name])


def _param_dict(p: Param) -> dict[str, Any]:
    out = {"kind": _KINDS[type(p)], **asdict(p)}
    if p.active_if is None:
        del out["active_if"]  # what a space without conditions stored before they existed
    else:
        out["active_if"] = {name: list(values) for name, values in p.active_if}
    return out


def _inactive_value(p: Param) -> Value:
    if isinstance(p, FixedParam):
        return p.value
    if isinstance(p, ChoiceParam):
        return p.values[0]
    return p.low


def _default_of(p: Param) -> Value:
    if isinstance(p, FixedParam):
        return p.value
    if isinstance(p, ChoiceParam):
        return p.values[0]
    if isinstance(p, IntParam):
        return p.high
    return p.high


def choice(
    name: str,
    values: Sequence[Value],
    ordered: bool | None = None,
    active_if: Conditions = None,
) -> ChoiceParam:
    """A choice parameter; numbers are ordered by default, strings are not."""
    values = tuple(values)
    if ordered is None:
        ordered = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return ChoiceParam(name, values, ordered, active_if)
