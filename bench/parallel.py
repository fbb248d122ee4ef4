"""Trials per hour with 1 and 2 local worker processes, and with Ray on 2 CPUs.

A Sobol-only search (the arms do not depend on each other, so every executor sees the same
work) on the digits CNN: ``r1`` rounds of ``batch_size`` arms, one torch thread per trial.
Two figures per executor: the end-to-end wall time (start-up of the workers, reference point,
Ax, test scoring and export included) and the evaluation phase alone (first arm submitted to
last result in), which is what a long search converges to. Ray's local cluster is started
before the clock (``ray.init``), as a cluster would be.

    python bench/parallel.py [--rounds 3] [--batch-size 4] [--epochs 3] [--no-ray]

Writes results/bench/parallel.md.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

from sparsemod.config import TrainConfig
from sparsemod.problems import get_problem
from sparsemod.search import Search
from sparsemod.store import Store

ROOT = Path(__file__).resolve().parents[1]


def run(executor: str, workers: int, args: argparse.Namespace) -> tuple[float, float, int, list]:
    cfg = TrainConfig(
        name=f"{executor}_{workers}",
        root=str(ROOT / "results" / "bench" / "parallel"),
        r1=args.rounds,
        r2=0,
        r3=0,
        batch_size=args.batch_size,
        epochs1=args.epochs,
        device="cpu",
        prune_method="magnitude_layerwise",
        executor=executor,
        workers=workers,
    )
    start = time.perf_counter()
    out = Search(cfg, get_problem("digits_cnn"), out=io.StringIO(), store=Store("sqlite://")).run()
    wall = time.perf_counter() - start
    evaluating = sum(r["evaluate_seconds"] for r in out.rounds)
    return wall, evaluating, len(out.trials), [t.result.error for t in out.trials]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    runs = [("sequential", 1), ("processes", 1), ("processes", 2)]
    if not args.no_ray:
        runs.append(("ray", 2))
    rows, base, base_eval, errors = [], None, None, None
    for executor, workers in runs:
        if executor == "ray":
            import ray

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        wall, evaluating, n, errs = run(executor, workers, args)
        if executor == "ray":
            ray.shutdown()
        per_hour, eval_per_hour = n / wall * 3600, n / evaluating * 3600
        base, base_eval = base or per_hour, base_eval or eval_per_hour
        errors = errors or errs
        rows.append(
            (
                executor,
                workers,
                n,
                wall,
                per_hour,
                per_hour / base,
                evaluating,
                eval_per_hour,
                eval_per_hour / base_eval,
                errs == errors,
            )
        )
    lines = [
        "| executor | workers | trials | wall (s) | trials / hour | speed-up "
        "| evaluation phase (s) | trials / hour | speed-up | same results |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {e} | {w} | {n} | {wall:.1f} | {ph:.0f} | {x:.2f}x | {ev:.1f} | {eph:.0f} "
        f"| {ex:.2f}x | {same} |"
        for e, w, n, wall, ph, x, ev, eph, ex, same in rows
    ]
    table = "\n".join(lines)
    print(table)
    (ROOT / "results" / "bench").mkdir(parents=True, exist_ok=True)
    (ROOT / "results" / "bench" / "parallel.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
