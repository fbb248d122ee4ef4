"""Where the default search's time goes: evaluating candidates, choosing them, the rest.

Runs ``config.ini`` as ``python main.py`` would (in this process, results under
results/bench/overhead/) and splits the wall time, imports included, into:

* candidate evaluation: training, pruning, fine-tuning, quantizing and measuring the arms;
* model fitting / candidate generation: Sobol draws, costing the candidate pool, fitting the
  GP, optimising the acquisition, ranking morphisms;
* everything else, itemised: imports, data, reference point, Ax start-up, scoring the
  Pareto set on the test split, writing the store exports, and what is left (the store's
  writes per trial, progress lines).

    python bench/overhead.py [--config config.ini] [--set TRAIN.seed=1 ...]

Writes results/bench/overhead.md.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402 - the clock starts before the imports it measures
import io  # noqa: E402
import multiprocessing as mp  # noqa: E402
import platform  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402

from sparsemod.config import load_config  # noqa: E402
from sparsemod.search import Search, record  # noqa: E402
from sparsemod.search.ax_backend import AxBackend  # noqa: E402
from sparsemod.search.costs import Costs  # noqa: E402

IMPORTS = time.perf_counter() - START
ROOT = Path(__file__).resolve().parents[1]


class Clock:
    """Seconds spent inside some functions, found by wrapping them for one run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, owner: object, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0

        setattr(owner, name, timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "config.ini")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.key=value")
    args = ap.parse_args()
    out_root = ROOT / "results" / "bench" / "overhead"
    cfg = load_config(args.config, [*args.set, f"TRAIN.root={out_root}"]).train_config
    clock = Clock()
    clock.wrap(Costs, "reference_point", "reference point (64 costed Sobol points)")
    clock.wrap(AxBackend, "__init__", "Ax start-up")
    clock.wrap(record, "score_test", "scoring the Pareto set on the test split")
    clock.wrap(record, "export_search", "export (CSV, summary, models, plot)")
    search = Search(cfg, out=io.StringIO())
    clock.wrap(type(search.problem), "load", "data (load and split)")
    t0 = time.perf_counter()
    outcome = search.run()
    run_s = time.perf_counter() - t0
    total = time.perf_counter() - START
    evaluating = sum(r["evaluate_seconds"] for r in outcome.rounds)
    choosing = sum(r["propose_seconds"] for r in outcome.rounds)
    items = {"imports (torch, Ax, BoTorch, sparsemod)": IMPORTS, **clock.seconds}
    rest = total - evaluating - choosing - sum(items.values())
    rows = [
        ("candidate evaluation", evaluating),
        ("model fitting / candidate generation", choosing),
        *[(f"other: {k}", v) for k, v in items.items()],
        ("other: the rest (store writes, progress, scheduling)", rest),
    ]
    lines = [
        f"## Overhead of the default search, {date.today().isoformat()}",
        "",
        f"Machine: {mp.cpu_count()} cores, Python {platform.python_version()}. "
        f"`{args.config.name}`: rounds {cfg.r1}/{cfg.r2}/{cfg.r3} x {cfg.batch_size}, epochs "
        f"{cfg.epochs1}/{cfg.epochs2}/{cfg.epochs3}, executor {cfg.executor}; "
        f"{len(outcome.trials)} trials, HV {outcome.hypervolume:.4f}.",
        "Command: `python bench/overhead.py`",
        "",
        "| part | seconds | share |",
        "|---|---|---|",
        *[f"| {name} | {s:.1f} | {100 * s / total:.1f} % |" for name, s in rows],
        f"| **total (process wall, imports included)** | **{total:.1f}** | 100 % |",
        "",
        "Per phase (seconds; choosing = fitting and generation):",
        "",
        "| phase | rounds | evaluating | choosing | choosing per round |",
        "|---|---|---|---|---|",
    ]
    for phase in ("sobol", "gp", "morph"):
        sel = [r for r in outcome.rounds if r["phase"] == phase]
        if sel:
            ev = sum(r["evaluate_seconds"] for r in sel)
            ch = sum(r["propose_seconds"] for r in sel)
            lines.append(f"| {phase} | {len(sel)} | {ev:.1f} | {ch:.1f} | {ch / len(sel):.2f} |")
    lines.append(f"\nSearch.run wall: {run_s:.1f} s.")
    text = "\n".join(lines)
    print(text)
    (ROOT / "results" / "bench").mkdir(parents=True, exist_ok=True)
    (ROOT / "results" / "bench" / "overhead.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
