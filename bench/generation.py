"""GP-phase candidate generation: sparsemod's exact-cost pool against Ax's default.

Runs the default config.ini search (Sobol, then GP rounds; no morphism phase, so only the
generator differs) with ``generator = pool`` and ``generator = ax`` on the same seeds, and
prints, per run: seconds to propose one GP round (median), the search's wall time, the share
of it spent choosing arms, and the hypervolume after the GP phase (same reference point for
both: the limits in config.ini).

    python bench/generation.py [--seeds 0 1] [--config config.ini]

Writes results/bench/generation.md.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from pathlib import Path

from sparsemod.config import load_config
from sparsemod.search import Search

ROOT = Path(__file__).resolve().parents[1]


def run(config: Path, generator: str, seed: int, out_root: Path) -> dict:
    cfg = load_config(
        config,
        [
            f"TRAIN.generator={generator}",
            f"TRAIN.seed={seed}",
            "TRAIN.r3=0",
            f"TRAIN.root={out_root}",
            f"TRAIN.name={generator}_{seed}",
        ],
    ).train_config
    outcome = Search(cfg, out=io.StringIO()).run()
    gp = [r["propose_seconds"] for r in outcome.rounds if r["phase"] == "gp"]
    return {
        "generator": generator,
        "seed": seed,
        "gp_round_s": statistics.median(gp) if gp else float("nan"),
        "gp_round_mean_s": statistics.mean(gp) if gp else float("nan"),
        "wall_s": outcome.wall_seconds,
        "choose_share": sum(r["propose_seconds"] for r in outcome.rounds) / outcome.wall_seconds,
        "hv": outcome.hypervolume,
        "trials": len(outcome.trials),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--config", type=Path, default=ROOT / "config.ini")
    args = ap.parse_args()
    out_root = ROOT / "results" / "bench" / "generation"
    rows = []
    for seed in args.seeds:
        for generator in ("pool", "ax"):
            row = run(args.config, generator, seed, out_root)
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    lines = [
        "| generator | seed | GP round (s, median) | GP round (s, mean) | wall (s) "
        "| choosing arms | HV | trials |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['generator']} | {r['seed']} | {r['gp_round_s']:.2f} | "
            f"{r['gp_round_mean_s']:.2f} | {r['wall_s']:.0f} | "
            f"{100 * r['choose_share']:.0f} % | {r['hv']:.4f} | {r['trials']} |"
        )
    for g in ("pool", "ax"):
        sel = [r for r in rows if r["generator"] == g]
        lines.append(
            f"| **{g} median** | | {statistics.median(r['gp_round_s'] for r in sel):.2f} | "
            f"{statistics.median(r['gp_round_mean_s'] for r in sel):.2f} | "
            f"{statistics.median(r['wall_s'] for r in sel):.0f} | | "
            f"{statistics.median(r['hv'] for r in sel):.4f} | |"
        )
    table = "\n".join(lines)
    print(table)
    (ROOT / "results" / "bench").mkdir(parents=True, exist_ok=True)
    (ROOT / "results" / "bench" / "generation.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
