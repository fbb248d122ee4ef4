"""What a resumed search may change against the config it was started with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields, is_dataclass
from typing import TYPE_CHECKING, Any

from sparsemod.errors import ConfigError

if TYPE_CHECKING:
    from sparsemod.config import TrainConfig


# The [TRAIN] keys a resumed search may change: how much more to search, how arms are
# chosen, how to stop, where to run and where results go. None of them changes what an
# already measured trial means; every other key does (the objectives, the problem, the
# epochs, the compression, the seed, the batch per round, the limits, the reference point).
RESUMABLE_KEYS = frozenset(
    {"name", "root", "r1", "r2", "r3", "morphisms", "tolerance", "patience", "debug"}
    | {"generator", "num_candidates", "cost_scale", "deploy_check"}
    | {"early_stopping", "min_epochs", "stop_confidence"}
    | {"executor", "workers", "asynchronous", "threads", "ray_address", "num_cpus", "num_gpus"}
)


# What a search stored before a key existed measured: the objectives were SpArSe's counts
# until `runtime` came (and with it TFLM's, the new default).
_BEFORE_STORED = {"runtime": "ideal"}


def resume_changes(stored: Mapping[str, Any], current: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """What a resume changes against the config a search was started with.

    Args:
        stored: the search's stored config (JSON values; a key it lacks, from an older
            sparsemod, counts as that key's default).
        current: the config given now.

    Returns:
        ``{key: (stored value, new value)}`` for the keys that differ, all in
        :data:`RESUMABLE_KEYS`.

    Raises:
        ConfigError: a key outside :data:`RESUMABLE_KEYS` differs; the message names each
            one with both values.
    """
    changed: dict[str, tuple[Any, Any]] = {}
    from sparsemod.config import TrainConfig

    for f in fields(TrainConfig):
        new = getattr(current, f.name)
        old = stored.get(f.name, _BEFORE_STORED.get(f.name, f.default))
        as_json = list(new) if isinstance(new, tuple) else new
        as_json = asdict(new) if is_dataclass(new) else as_json
        if old != as_json:
            changed[f.name] = (old, as_json)
    refused = [k for k in changed if k not in RESUMABLE_KEYS]
    if refused:
        listed = "; ".join(f"{k} {changed[k][0]!r} -> {changed[k][1]!r}" for k in refused)
        raise ConfigError(
            f"[TRAIN] cannot resume with this config: it changes what the stored trials "
            f"measured ({listed}). Resume with the values the search started with, or "
            f"start a new search under another name. A resume may change only "
            f"{', '.join(sorted(RESUMABLE_KEYS))}",
            section="TRAIN",
            key=refused[0],
        )
    return changed
