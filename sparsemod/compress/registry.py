"""Every pruning method by the name ``prune_method`` gives it, and every method's own keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sparsemod.compress.base import Pruner
from sparsemod.compress.dynamic_sparse import DynamicSparse
from sparsemod.compress.lottery import LotteryTicket
from sparsemod.compress.magnitude import GlobalMagnitude, LayerwiseMagnitude
from sparsemod.compress.options import PrunerOptions, gather
from sparsemod.compress.snip import Snip
from sparsemod.compress.structured import L1Structured
from sparsemod.errors import ConfigError
from sparsemod.spec import Spec

PRUNERS: dict[str, type[Pruner]] = {
    cls.name: cls
    for cls in (
        GlobalMagnitude,
        LayerwiseMagnitude,
        L1Structured,
        LotteryTicket,
        Snip,
        DynamicSparse,
    )
}


def get_pruner(name: str) -> Pruner:
    """The pruner registered under ``name``.

    Raises:
        ConfigError: no pruner has that name; the message lists those that exist.
    """
    try:
        return PRUNERS[name]()
    except KeyError:
        raise ConfigError(
            f"prune_method: {name!r} is not one of {sorted(PRUNERS)}", key="prune_method"
        ) from None


OPTIONS: dict[str, Spec] = gather({name: cls.Options for name, cls in PRUNERS.items()})
"""Every method's own keys (each declared in its ``Options``), in the registry's order."""


def pruner_options(prune_method: str, values: Mapping[str, Any] | Any) -> PrunerOptions:
    """The options ``prune_method`` runs with, read from ``values`` (a mapping, or an
    object with the keys as attributes: a config, the evaluator's settings).

    Raises:
        ConfigError: an unknown method, or options it refuses.
    """
    return type(get_pruner(prune_method)).Options.of(values)


def check_pruner_options(values: Mapping[str, Any] | Any, prune_method: str, epochs: int) -> None:
    """Check every method's options in ``values``, and the chosen one's against the epochs.

    Every method's, so a config is refused for a value it holds whichever method it runs,
    as a file's unknown key is.

    Args:
        values: the keys, as for :func:`pruner_options`.
        prune_method: the method chosen.
        epochs: the fewest epochs a candidate trains before pruning.

    Raises:
        ConfigError: values a method refuses; names the key.
    """
    for name, cls in PRUNERS.items():
        options = cls.Options.of(values)
        if name == prune_method:
            options.check(epochs)
