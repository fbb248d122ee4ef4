"""Bytes per trial: sparsemod's store against Ax's JSON of the same experiment.

Builds a 100-trial search on the digits CNN space without training (the arms come from
Ax's Sobol; every trial gets the same metrics, 5 epochs of history and its predicted
costs), writes it to the SQLite store and lets Ax save its own experiment as JSON, then
prints both sizes. No models are stored (the store keeps only Pareto models anyway).

    python bench/store_size.py [--trials 100]
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from sparsemod.problems import get_problem
from sparsemod.search.ax_backend import AxBackend
from sparsemod.store import Store

OBJECTIVES = ["error", "model_size_bytes", "working_memory_bytes"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100)
    args = ap.parse_args()
    problem = get_problem("digits_cnn")
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        ax = AxBackend(problem.space, OBJECTIVES, {}, seed=0, init_budget=10**6)
        store = Store(f"sqlite:///{Path(tmp) / 'sparsemod.db'}")
        sid = store.create_search("bench", problem.name, {"r1": 50}, OBJECTIVES, [1.0, 3e4, 4e3])
        for index, (ax_index, params) in enumerate(ax.generate(args.trials)):
            metrics = {
                "error": rng.random(),
                "accuracy_val": rng.random(),
                "model_size_bytes": rng.randrange(400, 30000),
                "working_memory_bytes": rng.randrange(300, 4000),
                "flops": rng.randrange(10**4, 10**6),
                "latency_s": rng.random() / 100,
                "train_seconds": rng.random() * 5,
                "total_seconds": rng.random() * 6,
            }
            predicted = {
                k: metrics[k]
                for k in ("model_size_bytes", "working_memory_bytes", "flops", "latency_s")
            }
            tid = store.add_trial(sid, index, "sobol", params, predicted=predicted)
            history = [
                {
                    "stage": "train",
                    "epoch": e,
                    "loss": rng.random(),
                    "val_accuracy": rng.random(),
                    "sparsity": 0.0,
                }
                for e in range(1, 6)
            ]
            store.complete_trial(tid, "completed", metrics, history=history)
            ax.complete(ax_index, {k: float(metrics[k]) for k in OBJECTIVES})
        store.vacuum()
        db_bytes = (Path(tmp) / "sparsemod.db").stat().st_size
        ax_path = Path(tmp) / "ax.json"
        ax.client.save_to_json_file(str(ax_path))
        ax_bytes = ax_path.stat().st_size
    n = args.trials
    print("| record | bytes | bytes per trial |")
    print("|---|---|---|")
    print(f"| sparsemod SQLite store (vacuumed) | {db_bytes} | {db_bytes / n:.0f} |")
    print(f"| Ax JSON (Client.save_to_json_file) | {ax_bytes} | {ax_bytes / n:.0f} |")
    print(f"\nAx / sparsemod: {ax_bytes / db_bytes:.1f}x")


if __name__ == "__main__":
    main()
