"""A pruning method's own keys: its ``Options`` (a :class:`PrunerOptions`), each declared
by :func:`option`.

A method declares its keys where it uses them, in its module::

    class DynamicSparse(Pruner):
        @dataclass(frozen=True)
        class Options(PrunerOptions):
            dst_end: float = option(
                real(0.0, 1.0, "a number in (0, 1]").declare(0.75, "dynamic_sparse: ...")
            )

That declaration is the key's only one: the config reads it from ``[TRAIN]``, ``[TEST]``,
``--set`` and REST bodies, checks it and writes it into README.md's key table
(:mod:`sparsemod.candidate` gathers every method's options from the registry), and the
evaluator hands the chosen method an instance of its ``Options`` in
:attr:`PruneContext.options <sparsemod.compress.context.PruneContext.options>`.

Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from sparsemod.errors import ConfigError
from sparsemod.settings import check_setting
from sparsemod.spec import Spec


def option(spec: Spec) -> Any:
    """A field of a :class:`PrunerOptions`: its default and its check come from ``spec``."""
    return field(default=spec.default, metadata={"spec": spec})


@dataclass(frozen=True)
class PrunerOptions:
    """The keys of one pruning method (none for the one-shot methods).

    A subclass declares each key as a field made by :func:`option`, and overrides
    :meth:`check` for the checks that span several of them. Building one checks every
    value against its declaration, then :meth:`check` without the epochs.

    Raises:
        ConfigError: a value outside its declaration, or values that do not go together;
            names the key.
    """

    def __post_init__(self) -> None:
        specs = self.specs()
        for name, spec in specs.items():
            check_setting(name, getattr(self, name), specs={name: spec})
        self.check(None)

    @classmethod
    def specs(cls) -> dict[str, Spec]:
        """Each key's declaration, in the order of the fields."""
        return {f.name: f.metadata["spec"] for f in fields(cls)}

    @classmethod
    def of(cls, values: Mapping[str, Any] | Any) -> PrunerOptions:
        """The options from a mapping, or from any object with the keys as attributes
        (a config section, the evaluator's settings); keys it lacks take their default."""
        get = values.get if isinstance(values, Mapping) else lambda k, d: getattr(values, k, d)
        return cls(**{f.name: get(f.name, f.default) for f in fields(cls)})

    def check(self, epochs: int | None) -> None:
        """The checks that span several of these keys.

        Args:
            epochs: the fewest epochs a candidate trains before pruning, when the method is
                the one chosen (``None``: not known, or another method is chosen).

        Raises:
            ConfigError: values that do not go together; names the key.
        """


def gather(options: Mapping[str, type[PrunerOptions]]) -> dict[str, Spec]:
    """Every method's declarations, by key, in the order given.

    Args:
        options: each method's ``Options`` class, by method name.

    Raises:
        ConfigError: two methods declare the same key differently.
    """
    specs: dict[str, Spec] = {}
    owner: dict[str, str] = {}
    for method, cls in options.items():
        for key, spec in cls.specs().items():
            if key in specs and specs[key] is not spec:
                raise ConfigError(
                    f"pruner option {key!r} is declared by both {owner[key]!r} and {method!r}"
                )
            specs[key], owner[key] = spec, method
    return specs
