"""Scale: GP rounds of 2, 8 and 16 arms at 100, 300 and 1,000 completed trials.

Training 1,000 networks per point would take hours, so the trials are synthetic: a
:class:`sparsemod.Study` with exact costs (the cost function below, four objectives:
error, model size, working memory, latency) and a cheap error function with noise. The
search itself (Ax, the store, the pool, the GP, the acquisition) is the real one. Nothing
was tuned on these problems.

``rounds``: for each batch size and each number of completed trials, a study is filled
with that many Sobol trials, then two GP rounds are asked and told; it prints the seconds
per GP round (asking and telling), the seconds to fill (Ax and the store, per trial), the
peak RSS of the process so far, resuming the study from its SQLite file (``Study.load``,
then the first new arm), and at the largest size the API's first page of trials.

``quality``: hypervolume against the number of trials for batch sizes 2, 8 and 16 (and 2
with the greedy batch instead of the joint qLogEHVI), on both problems, several seeds:
bigger batches should cost at most a few % of HV at equal trials.

    python bench/scale.py rounds                 # the table of seconds and RSS
    python bench/scale.py quality --seeds 0 1 2  # HV against trials
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from sparsemod import SearchSpace, Study
from sparsemod.results.pareto import hypervolume
from sparsemod.search import acquisition
from sparsemod.space import FloatParam, IntParam, choice

OBJECTIVES = ("error", "model_size_bytes", "working_memory_bytes", "latency_s")
SPACE = SearchSpace(
    (
        IntParam("channels1", 2, 64, log=True),
        IntParam("channels2", 2, 128, log=True),
        IntParam("dense", 0, 128),
        choice("kernel", [3, 5]),
        IntParam("resolution", 8, 32),
        FloatParam("lr", 1e-4, 3e-1, log=True),
        FloatParam("sparsity", 0.0, 0.9),
    )
)


def costs(p: dict) -> dict[str, float]:
    """A small CNN's int8 counts, by hand: weights and biases, the largest pair of
    activations, multiply-accumulates at 5 ns each."""
    k, r, c1, c2, d = p["kernel"], p["resolution"], p["channels1"], p["channels2"], p["dense"]
    w = k * k * c1 + k * k * c1 * c2 + (c2 * (r // 4) ** 2) * max(d, 10) + d * 10
    size = w * (1 - p["sparsity"]) * 1.125 + 4 * (c1 + c2 + d + 10)
    memory = max(r * r + r * r * c1, r * r * c1 // 4 + (r // 2) ** 2 * c2)
    macs = r * r * k * k * c1 + (r // 2) ** 2 * k * k * c1 * c2 + w
    return {"model_size_bytes": size, "working_memory_bytes": memory, "latency_s": macs * 5e-9}


def error(p: dict, problem: str, rng: np.random.Generator) -> float:
    """Capacity lowers the error with diminishing returns; the learning rate has an optimum;
    sparsity costs accuracy beyond a point. ``b`` has another shape than ``a``."""
    cap = math.log(p["channels1"]) + math.log(p["channels2"]) + 0.3 * math.log1p(p["dense"])
    lr = (math.log10(p["lr"]) + 2.2) ** 2
    if problem == "a":
        e = 0.04 + 0.8 * math.exp(-cap / 2.5) + 0.05 * lr + 0.2 * max(0.0, p["sparsity"] - 0.6)
        e += 0.02 * (p["kernel"] == 3) + 0.3 / p["resolution"]
    else:
        e = 0.1 + 0.5 / (1 + cap) + 0.08 * abs(math.log10(p["lr"]) + 1.5)
        e += 0.25 * p["sparsity"] ** 3
        e += 0.04 * (p["kernel"] == 5) + 0.002 * abs(p["resolution"] - 20)
    return float(min(1.0, max(0.0, e + rng.normal(0, 0.01))))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tell_all(study: Study, trials: list, problem: str, rng: np.random.Generator) -> None:
    for t in trials:
        study.tell(t, {"error": error(t.params, problem, rng)})


def rounds(args: argparse.Namespace) -> None:
    print("| batch | completed | s / GP round | fill s / trial | resume s | first arm s "
          "| peak RSS MB | API trials?limit=100 ms |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for q in args.batch:
        for n in args.completed:
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{Path(tmp) / 'scale.db'}"
                rng = np.random.default_rng(0)
                kw = dict(objectives=OBJECTIVES, store=url, name="scale", seed=0)
                study = Study(
                    SPACE, costs=costs, phases={"sobol": n, "gp": 3 * q}, batch_size=q, **kw
                )
                t0 = time.perf_counter()
                while len(study.trials) < n:
                    tell_all(study, study.ask(min(64, n - len(study.trials))), "a", rng)
                fill = (time.perf_counter() - t0) / n
                took = []
                for _ in range(2):  # asking and telling (a round's hypervolume is kept)
                    t0 = time.perf_counter()
                    tell_all(study, study.ask(q), "a", rng)
                    took.append(time.perf_counter() - t0)
                sid = study.search_id
                del study
                t0 = time.perf_counter()
                again = Study.load("scale", url, costs)
                loaded = time.perf_counter() - t0
                t0 = time.perf_counter()
                again.ask(q)
                first = time.perf_counter() - t0
                api = api_ms(url, sid, Path(tmp)) if n == max(args.completed) else math.nan
                print(
                    f"| {q} | {n} | {statistics.mean(took):.2f} | {fill:.3f} | {loaded:.2f} "
                    f"| {first:.2f} | {peak_rss_mb():.0f} | {api:.1f} |",
                    flush=True,
                )


def api_ms(url: str, sid: int, tmp: Path, repeats: int = 21) -> float:
    """Median ms of ``GET /searches/{id}/trials?limit=100`` from ``sparsemod dashboard``
    over the study's SQLite file (a real uvicorn, over loopback)."""
    import httpx
    from dashboard import start_dashboard, stop

    proc, base = start_dashboard(url, tmp)
    try:
        with httpx.Client(base_url=f"{base}/api/v1", timeout=60) as client:
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                client.get(f"/searches/{sid}/trials", params={"limit": 100}).raise_for_status()
                times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times[1:])
    finally:
        stop(proc)


def normalised_hv(values: np.ndarray) -> float:
    """HV with the costs on a log scale between the space's extremes (as the search sees)."""
    lo = np.array([1.0, 50.0, 50.0, 1e-6])
    hi = np.array([1.0, 2e6, 5e5, 1e-1])
    scaled = values.copy()
    scaled[:, 1:] = np.log(values[:, 1:] / lo[1:]) / np.log(hi[1:] / lo[1:])
    return hypervolume(np.clip(scaled, 0, None), [1.0, 1.0, 1.0, 1.0])


def quality(args: argparse.Namespace) -> None:
    checkpoints = list(range(args.sobol + 32, args.budget + 1, 32))
    variants = [(q, "joint" if q <= 2 else "greedy") for q in (2, 8, 16)] + [(2, "greedy")]
    hv: dict[tuple, list[list[float]]] = {}
    seconds: dict[tuple, float] = {}
    for problem in args.problems:
        for q, how in variants:
            for seed in args.seeds:
                acquisition.JOINT_MAX_Q = 2 if how == "joint" else 0
                rng = np.random.default_rng(seed)
                study = Study(
                    SPACE, objectives=OBJECTIVES, costs=costs, seed=seed, batch_size=q,
                    phases={"sobol": args.sobol, "gp": args.budget - args.sobol},
                    cost_scale="log",
                )  # fmt: skip
                t0 = time.perf_counter()
                while arms := study.ask(q):
                    tell_all(study, arms, problem, rng)
                seconds[problem, q, how] = seconds.get((problem, q, how), 0) + (
                    time.perf_counter() - t0
                )
                done = [t for t in study.trials if t.ok]
                vals = np.array([[t.value(o) for o in OBJECTIVES] for t in done])
                hv.setdefault((problem, q, how), []).append(
                    [normalised_hv(vals[:c]) for c in checkpoints]
                )
                last = hv[problem, q, how][-1]
                print(f"{problem} q={q} {how} seed {seed}: HV {last}", flush=True)
    acquisition.JOINT_MAX_Q = 2
    print("\n| problem | batch | batch chosen by | " + " | ".join(f"HV at {c}" for c in checkpoints)
          + " | s / seed |")  # fmt: skip
    print("|---|---:|---|" + "---:|" * (len(checkpoints) + 1))
    for (problem, q, how), runs in hv.items():
        base = np.mean(hv[problem, 2, "joint"], axis=0)
        mean = np.mean(runs, axis=0)
        cells = [f"{m:.4f} ({100 * (m / b - 1):+.1f} %)" for m, b in zip(mean, base)]
        per_seed = seconds[problem, q, how] / len(runs)
        print(f"| {problem} | {q} | {how} | " + " | ".join(cells) + f" | {per_seed:.0f} |")


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    r = sub.add_parser("rounds")
    r.add_argument("--batch", type=int, nargs="+", default=[2, 8, 16])
    r.add_argument("--completed", type=int, nargs="+", default=[100, 300, 1000])
    q = sub.add_parser("quality")
    q.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    q.add_argument("--problems", nargs="+", default=["a", "b"])
    q.add_argument("--sobol", type=int, default=32)
    q.add_argument("--budget", type=int, default=160)
    args = parser.parse_args()
    rounds(args) if args.what == "rounds" else quality(args)


if __name__ == "__main__":
    main()
