"""Problems: a search space, a network builder and the data, found by name.

A problem is what a user brings. Built-in ones cover the embedded digits dataset with each
built-in builder; a user's own come from the entry-point group ``sparsemod.problems`` or
from a ``package.module:function`` path, the function returning a :class:`Problem`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from sparsemod.builders import Builder, build_cnn, build_mlp, build_rnn
from sparsemod.builders.cnn import cnn_space
from sparsemod.builders.mlp import mlp_space
from sparsemod.builders.rnn import rnn_space
from sparsemod.data import (
    Splits,
    as_splits,
    load_digits,
    load_digits_sequences,
    load_digits_varlen,
    pad_left_collate,
)
from sparsemod.errors import ConfigError
from sparsemod.hooks import import_object
from sparsemod.space import SearchSpace

ENTRY_POINT_GROUP = "sparsemod.problems"


@dataclass(frozen=True)
class Problem:
    """What a search runs on.

    Args:
        name: a short name, stored with every search.
        space: the search space (its ``reference`` is a known-good point).
        build: ``build(params, input_shape, num_classes) -> nn.Module``.
        data: ``data(seed) -> Splits`` or ``[train, val, test]`` (datasets), loaded lazily.
        collate_fn: batching for datasets of variable-length samples.
        description: one line for listings.
    """

    name: str
    space: SearchSpace
    build: Builder
    data: Callable[[int], Splits | Sequence[Any]]
    collate_fn: Callable | None = None
    description: str = ""

    def load(self, seed: int = 0) -> Splits:
        """The problem's data as :class:`Splits`."""
        return as_splits(self.data(seed), self.collate_fn, name=self.name)


def digits_cnn() -> Problem:
    """The default: a SpArSe-style CNN on scikit-learn's 8x8 digits."""
    return Problem(
        "digits_cnn",
        cnn_space(),
        build_cnn,
        lambda seed: load_digits(seed),
        description="SpArSe-style CNN on the embedded 8x8 digits",
    )


def digits_mlp() -> Problem:
    """An MLP on the 8x8 digits."""
    return Problem(
        "digits_mlp",
        mlp_space(),
        build_mlp,
        lambda seed: load_digits(seed),
        description="MLP on the embedded 8x8 digits",
    )


def digits_rnn() -> Problem:
    """An LSTM / GRU reading each digit row by row as a sequence of 8 steps."""
    return Problem(
        "digits_rnn",
        rnn_space(),
        build_rnn,
        lambda seed: load_digits_sequences(seed),
        description="LSTM / GRU over the rows of the embedded 8x8 digits",
    )


def digits_rnn_varlen() -> Problem:
    """The RNN on digit rows with blank rows cut off: sequences of 4 to 8 steps.

    The example of a problem whose samples have different lengths: its data come with a
    ``collate_fn`` that pads each batch (``splitter = true`` in config.ini).
    """
    return Problem(
        "digits_rnn_varlen",
        rnn_space(),
        build_rnn,
        lambda seed: load_digits_varlen(seed),
        collate_fn=pad_left_collate,
        description="LSTM / GRU over variable-length digit rows (padded batches)",
    )


BUILTIN: dict[str, Callable[[], Problem]] = {
    "digits_cnn": digits_cnn,
    "digits_mlp": digits_mlp,
    "digits_rnn": digits_rnn,
    "digits_rnn_varlen": digits_rnn_varlen,
}


def available() -> list[str]:
    """Names of the built-in problems and those registered through entry points."""
    names = set(BUILTIN)
    names.update(ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def get_problem(name: str) -> Problem:
    """The problem called ``name``: built in, an entry point, or ``module:function``.

    Raises:
        ConfigError: nothing has that name, or the function does not give a Problem.
    """
    if name in BUILTIN:
        return BUILTIN[name]()
    factory: Any = None
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            factory = ep.load()
            break
    if factory is None and ":" in name:
        factory = import_object(name, "problem")
    if factory is None:
        raise ConfigError(
            f"problem: {name!r} is not a known problem ({available()}) "
            "nor a 'package.module:function' path",
            key="problem",
        )
    problem = factory() if callable(factory) and not isinstance(factory, Problem) else factory
    if not isinstance(problem, Problem):
        raise ConfigError(
            f"problem: {name!r} gave {type(problem).__name__}, not a Problem", key="problem"
        )
    return problem
