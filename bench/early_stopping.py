"""Hypervolume against compute: sparsemod with and without early stopping on the front.

For each problem and seed it runs two searches with the same seed, problem, epochs and
reference point: ``early_stopping = none`` with ``--rounds`` (Sobol, GP) rounds, and
``early_stopping = front`` with twice the GP rounds, so that it may spend the epochs it
saves on more candidates. Each trial's training epochs are counted from its history (the
rows with a training loss: dense training, fine-tuning, retraining), and the hypervolume
(fixed reference per problem, the completed trials so far) is traced against cumulative
epochs and wall seconds. Reported per problem, medians over seeds:

* epochs and seconds each search spent, trials, stopped trials;
* the final hypervolume of ``none``, and that of ``front`` once it has spent as many
  epochs as ``none`` (equal compute);
* the share of ``none``'s epochs ``front`` needed to reach ``none``'s median final
  hypervolume (the issue's goal: at most 60 %).

    python bench/early_stopping.py                                   # digits MLP, 3 seeds
    python bench/early_stopping.py --problems digits_mlp bench.signal_problem:signal_problem
    python bench/early_stopping.py --peers optuna_tpe optuna_gp random  # peers beside them

Peers (``--peers``: Optuna TPE and GPSampler, random search, through the ask/tell loop of
``bench/search_quality.py``) train every candidate fully, with the same evaluator and
settings as ``none``, until they have spent the epochs of ``none``'s median run: equal
compute. Each is reported as ``none`` is, with its hypervolume at that budget; a method is
ahead of a peer beyond seed noise when its every seed is above the peer's every seed there.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsemod.config import TrainConfig  # noqa: E402
from sparsemod.problems import get_problem  # noqa: E402
from sparsemod.results.pareto import HypervolumeTrace  # noqa: E402
from sparsemod.search import Search  # noqa: E402

OBJECTIVES = ["error", "model_size_bytes", "working_memory_bytes"]


def epochs_of(trial) -> int:
    """Training epochs a trial ran (the history rows with a training loss)."""
    if trial.result is None:
        return 0
    return sum(1 for h in trial.result.history if h.get("loss") is not None)


def run(problem: str, seed: int, variant: str, args: argparse.Namespace, root: str) -> dict:
    cfg = config(problem, seed, variant, args, root)
    start = time.perf_counter()
    outcome = Search(cfg, get_problem(problem), out=io.StringIO()).run()
    wall = time.perf_counter() - start
    # The sequential executor finishes them in index order.
    done = sorted(outcome.trials, key=lambda t: t.index)
    trace = HypervolumeTrace(args.ref)
    epochs, hv = [], []
    for t in done:
        ok = t.status == "completed"
        row = [t.value(o) for o in OBJECTIVES] if ok else [np.nan] * len(OBJECTIVES)
        hv += trace.extend(np.array([row]))
        epochs.append(epochs_of(t))
    return {
        "epochs": np.cumsum(epochs),
        "hv": hv,
        "wall": wall,
        "trials": len(done),
        "stopped": sum(t.status == "stopped" for t in done),
    }


def config(problem: str, seed: int, variant: str, args: argparse.Namespace, root: str):
    """The search's [TRAIN] settings (a peer takes ``none``'s)."""
    r1, r2 = args.rounds
    return TrainConfig(
        name=f"{variant}_{seed}", root=root, problem=problem, seed=seed, r1=r1,
        r2=r2 * (2 if variant == "front" else 1), r3=0, morphisms=False,
        epochs1=args.epochs, epochs2=args.epochs, batch_size=2, objectives=3,
        device="cpu", early_stopping="front" if variant == "front" else "none",
        ref_point=tuple(args.ref), executor="sequential",
    )  # fmt: skip


def run_peer(
    problem: str, seed: int, method: str, args: argparse.Namespace, root: str, budget: float
) -> dict:
    """A peer that trains every candidate fully, until it has spent ``budget`` epochs."""
    import torch

    from bench.search_quality import make_method
    from sparsemod.evaluate import evaluate

    torch.set_num_threads(1)  # as the search's trials
    cfg = config(problem, seed, "none", args, root)
    prob = get_problem(problem)
    data = prob.load(seed)
    asker = make_method(method, cfg, prob, data)
    trace = HypervolumeTrace(args.ref)
    epochs, hv, spent = [], [], 0
    start = time.perf_counter()
    while spent < budget:
        for arm in asker.ask():
            settings, warm = asker.how(arm)
            result = evaluate(prob, arm.params, settings, data, warm)
            asker.tell(arm, result)
            ok = result.status == "completed"
            row = [getattr(result, o) for o in OBJECTIVES] if ok else [np.nan] * len(OBJECTIVES)
            hv += trace.extend(np.array([row]))
            epochs.append(sum(1 for h in result.history if h.get("loss") is not None))
            spent += epochs[-1]
    return {
        "epochs": np.cumsum(epochs),
        "hv": hv,
        "wall": time.perf_counter() - start,
        "trials": len(epochs),
        "stopped": 0,
    }


def hv_at(run_: dict, budget: float) -> float:
    """The hypervolume once the search had spent ``budget`` epochs (or all it spent)."""
    idx = np.searchsorted(run_["epochs"], budget, side="right") - 1
    return run_["hv"][idx] if idx >= 0 else 0.0


def epochs_to(run_: dict, target: float) -> float:
    """Epochs spent when the hypervolume first reached ``target`` (inf: never)."""
    for e, v in zip(run_["epochs"], run_["hv"]):
        if v >= target - 1e-12:
            return float(e)
    return float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=["digits_mlp"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", nargs=2, type=int, default=[4, 8], metavar=("R1", "R2"))
    parser.add_argument(
        "--ref", nargs=3, type=float, default=[1.0, 256_000.0, 32_768.0],
        help="reference point: error, model size (B), working memory (B)",
    )  # fmt: skip
    parser.add_argument(
        "--peers", nargs="*", default=[], choices=["optuna_tpe", "optuna_gp", "random"]
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for problem in args.problems:
            runs: dict[str, list[dict]] = {"none": [], "front": []}
            for seed in args.seeds:
                for variant in runs:
                    r = run(problem, seed, variant, args, root)
                    runs[variant].append(r)
                    print(
                        f"{problem} seed {seed} {variant}: {r['trials']} trials "
                        f"({r['stopped']} stopped), {int(r['epochs'][-1])} epochs, "
                        f"{r['wall']:.0f} s, HV {r['hv'][-1]:.4f}",
                        flush=True,
                    )
            target = statistics.median(r["hv"][-1] for r in runs["none"])
            budget = statistics.median(float(r["epochs"][-1]) for r in runs["none"])
            for peer in args.peers:
                runs[peer] = []
                for seed in args.seeds:
                    r = run_peer(problem, seed, peer, args, root, budget)
                    runs[peer].append(r)
                    print(
                        f"{problem} seed {seed} {peer}: {r['trials']} trials, "
                        f"{int(r['epochs'][-1])} epochs, {r['wall']:.0f} s, HV "
                        f"{r['hv'][-1]:.4f} (at {budget:g} epochs {hv_at(r, budget):.4f})",
                        flush=True,
                    )
            at_budget = {v: [hv_at(r, budget) for r in rs] for v, rs in runs.items()}
            for ours in ("none", "front"):
                for peer in args.peers:
                    ahead = min(at_budget[ours]) > max(at_budget[peer])
                    print(
                        f"{problem}: {ours} {'is' if ahead else 'is not'} ahead of {peer} "
                        f"beyond seed noise at {budget:g} epochs "
                        f"({min(at_budget[ours]):.4f} lowest against {max(at_budget[peer]):.4f} "
                        "highest)",
                        flush=True,
                    )
            for variant, rs in runs.items():
                rows.append(
                    (
                        problem,
                        variant,
                        statistics.median(r["trials"] for r in rs),
                        statistics.median(r["stopped"] for r in rs),
                        statistics.median(float(r["epochs"][-1]) for r in rs),
                        statistics.median(r["wall"] for r in rs),
                        statistics.median(r["hv"][-1] for r in rs),
                        statistics.median(hv_at(r, budget) for r in rs),
                        statistics.median(epochs_to(r, target) / budget for r in rs),
                    )
                )
    print(
        "\n| problem | early stopping | trials | stopped | epochs | seconds | final HV "
        "| HV at none's epochs | epochs to none's median HV |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for p, v, n, s, e, w, hv, eq, share in rows:
        print(
            f"| {p} | {v} | {n:g} | {s:g} | {e:g} | {w:.0f} | {hv:.4f} | {eq:.4f} | "
            + ("not reached" if share == float("inf") else f"{share:.0%}")
            + " |"
        )


if __name__ == "__main__":
    main()
