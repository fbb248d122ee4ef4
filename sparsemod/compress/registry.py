"""Every pruning method by the name ``prune_method`` gives it."""

from __future__ import annotations

from sparsemod.compress.base import Pruner
from sparsemod.compress.dynamic_sparse import DynamicSparse
from sparsemod.compress.lottery import LotteryTicket
from sparsemod.compress.magnitude import GlobalMagnitude, LayerwiseMagnitude
from sparsemod.compress.snip import Snip
from sparsemod.compress.structured import L1Structured
from sparsemod.errors import ConfigError

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
