"""A search's progress from its stored trials: counts, phase, Pareto set, hypervolume, best.

Reading every trial of a long search and computing its hypervolume takes milliseconds to
tens of milliseconds, and clients poll. The result is cached per search and recomputed
only when the search's row (status, update time, heartbeat) or its trial count changes:
a trial is added when it starts, and the runner heartbeats right after completing one.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from sparsemod.results.pareto import HypervolumeTrace, hypervolume, pareto_mask
from sparsemod.store import SearchRecord, Store, TrialRecord

_CACHE_SIZE = 256


@dataclass(frozen=True)
class Progress:
    """What a poll of one search needs beyond its row.

    Attributes:
        total: trials stored (running ones included).
        completed: trials completed.
        failed: trials failed.
        stopped: trials stopped early (they could not join the front).
        running: trials being evaluated now.
        phase: the newest trial's phase, ``None`` before the first trial.
        hypervolume: of the completed trials, normalised by the reference point;
            ``None`` while the reference point is unknown.
        pareto: the completed trials on the front, by index (duplicates left out).
        best: the completed trial with the lowest error (ties: the next objectives).
    """

    total: int
    completed: int
    failed: int
    stopped: int
    running: int
    phase: str | None
    hypervolume: float | None
    pareto: tuple[TrialRecord, ...]
    best: TrialRecord | None

    @property
    def pareto_ids(self) -> frozenset[int]:
        return frozenset(t.id for t in self.pareto)


_cache: OrderedDict[tuple[str, int], tuple[Hashable, Progress]] = OrderedDict()
_lock = threading.Lock()


def progress(store: Store, search: SearchRecord) -> Progress:
    """The progress of ``search`` (cached until its row or trial count changes)."""
    count = store.count_trials(search.id)
    slot = (store.url, search.id)
    version = (search.status, search.updated_at, search.heartbeat_at, search.ref_point, count)
    with _lock:
        hit = _cache.get(slot)
        if hit is not None and hit[0] == version:
            _cache.move_to_end(slot)
            return hit[1]
    value = compute(search, store.list_trials(search.id))
    with _lock:
        _cache[slot] = (version, value)
        _cache.move_to_end(slot)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return value


def compute(search: SearchRecord, trials: list[TrialRecord]) -> Progress:
    """The progress of a search from all its trials (no cache)."""
    completed = [t for t in trials if t.status == "completed"]
    # A duplicate repeats its original's point: the front and its volume count it once.
    done = [t for t in completed if t.duplicate_of is None]
    objectives = list(search.objectives)
    values = np.array(
        [[t.metrics.get(o, math.nan) for o in objectives] for t in done], dtype=float
    ).reshape(len(done), len(objectives))
    mask = pareto_mask(values) if done else np.zeros(0, dtype=bool)
    pareto = tuple(t for t, m in zip(done, mask) if m)
    hv = None
    if search.ref_point:
        hv = hypervolume(values, search.ref_point) if done else 0.0
    best = None
    scored = [(tuple(_nan_last(v) for v in row), t.index, t) for row, t in zip(values, done)]
    if scored:
        best = min(scored, key=lambda s: (s[0], s[1]))[2]
    return Progress(
        total=len(trials),
        completed=len(completed),
        failed=sum(t.status == "failed" for t in trials),
        stopped=sum(t.status == "stopped" for t in trials),
        running=sum(t.status == "running" for t in trials),
        phase=trials[-1].phase if trials else None,
        hypervolume=hv,
        pareto=pareto,
        best=best,
    )


def _nan_last(v: float) -> float:
    return math.inf if math.isnan(v) else float(v)


@dataclass
class _History:
    ids: list[int]  # completed trials taken, in completion order
    trace: HypervolumeTrace
    points: list[tuple[int, str, float]]  # (index, phase, hypervolume)


_histories: OrderedDict[tuple[str, int], _History] = OrderedDict()


def hypervolume_history(store: Store, search: SearchRecord) -> list[tuple[int, str, float]]:
    """``(index, phase, hypervolume)`` after each completed trial (duplicates left out), in
    the order they completed; empty while the reference point is unknown.

    Kept per search: a later call adds only the trials completed since, so a poll of a
    running search costs one exact hypervolume per new front member, not the whole trace.
    """
    if not search.ref_point:
        return []
    done = [t for t in store.list_trials(search.id, "completed") if t.duplicate_of is None]
    done.sort(key=lambda t: (t.finished_at or t.created_at, t.index))
    ids = [t.id for t in done]
    slot = (store.url, search.id)
    with _lock:
        kept = _histories.get(slot)
        if kept is None or kept.ids != ids[: len(kept.ids)] or list(kept.trace.ref) != list(
            search.ref_point
        ):
            kept = _History([], HypervolumeTrace(search.ref_point), [])
        _histories[slot] = kept
        _histories.move_to_end(slot)
        while len(_histories) > _CACHE_SIZE:
            _histories.popitem(last=False)
        new = done[len(kept.ids) :]
        values = np.array(
            [[t.metrics.get(o, math.nan) for o in search.objectives] for t in new], dtype=float
        ).reshape(len(new), len(search.objectives))
        hv = kept.trace.extend(values)
        kept.ids.extend(t.id for t in new)
        kept.points.extend((t.index, t.phase, v) for t, v in zip(new, hv))
        return list(kept.points)
