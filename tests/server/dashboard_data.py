"""A search of many trials written straight through a real store, for the dashboard's tests
and bench: sobol, gp and morph phases, a few failures, a duplicate, morph lineage, training
histories. The metrics are drawn from a seeded generator, not trained: these tests are
about what the page and the API show of a store, not about the search."""

from __future__ import annotations

import numpy as np

from sparsemod.results.pareto import pareto_mask
from sparsemod.store import Store

OBJECTIVES = ["error", "model_size_bytes", "working_memory_bytes"]
REF_POINT = [1.0, 60_000.0, 8_000.0]


def seed_search(store: Store, n: int, *, seed: int = 0, name: str = "many") -> int:
    """Write a done search of ``n`` trials; returns its id.

    Every 11th trial failed; trial 5 (when ``n > 5``) repeats trial 1's network; the last
    fifth are morphs of earlier completed trials; every fourth completed one has a stored
    model (bytes that are not a network).
    """
    rng = np.random.default_rng(seed)
    config = {"r1": n, "r2": 0, "r3": 0, "batch_size": 1, "objectives": 3, "morphisms": True}
    sid = store.create_search(
        name, "digits_cnn", config, OBJECTIVES, ref_point=REF_POINT, status="running"
    )
    done: list[int] = []
    for i in range(n):
        phase = "sobol" if i < n // 3 else "gp" if i < n - n // 5 else "morph"
        params = {
            "num_blocks": int(rng.integers(1, 4)),
            "b1_channels": int(rng.integers(4, 64)),
            "lr": round(float(rng.uniform(1e-3, 1e-1)), 5),
            "pool": ["max", "avg"][int(rng.integers(0, 2))],
        }
        parent = int(rng.choice(done)) if phase == "morph" and done else None
        size = float(rng.uniform(1_000, 50_000))
        memory = float(rng.uniform(200, 6_000))
        costs = {"model_size_bytes": round(size), "working_memory_bytes": round(memory)}
        duplicate = 1 if i == 5 and n > 5 else None
        tid = store.add_trial(
            sid,
            i,
            phase,
            params,
            parent_index=parent,
            morph=f"grow b1_channels of trial {parent}" if parent is not None else None,
            seed=i,
            predicted=costs,
            duplicate_of=duplicate,
        )
        if i % 11 == 10:
            store.complete_trial(tid, "failed", {}, failure_reason="BuildError: too small")
            continue
        error = float(np.clip(0.9 - 0.15 * np.log(size / 900) + rng.normal(0, 0.05), 0.02, 0.95))
        history = [
            {
                "stage": "train",
                "epoch": e,
                "loss": 2.0 / e,
                "val_accuracy": 1 - error - 0.1 / e,
                "sparsity": 0.0,
            }
            for e in (1, 2, 3)
        ] + [
            {
                "stage": "prune",
                "epoch": 0,
                "loss": None,
                "val_accuracy": 1 - error - 0.05,
                "sparsity": 0.5,
                "method": "magnitude",
            },
            {
                "stage": "quantize:static_int8",
                "epoch": 0,
                "loss": None,
                "val_accuracy": 1 - error,
                "sparsity": 0.5,
            },
        ]
        # Every fourth keeps a (stand-in) model, for the downloads.
        model = ("state_dict", f"model of trial {i}".encode(), {"params": params})
        store.complete_trial(
            tid,
            "completed",
            {"error": error, "accuracy_val": 1 - error, **costs},
            history=history,
            model=model if i % 4 == 0 else None,
        )
        if duplicate is None:
            done.append(i)
    store.set_search_status(sid, "done")
    return sid


def pareto_indices(store: Store, search_id: int) -> set[int]:
    """The Pareto members by a count of the test's own: completed, not duplicates."""
    trials = [t for t in store.list_trials(search_id, "completed") if t.duplicate_of is None]
    values = np.array([[t.metrics[o] for o in OBJECTIVES] for t in trials])
    return {t.index for t, m in zip(trials, pareto_mask(values)) if m}
