"""A new user's problem, through ask/tell: sparsemod's Study against Optuna at the same budget.

Two problems sparsemod has never seen (nothing of them was tuned here): a user's own torch
MLP, trained by the user's own loop, on scikit-learn's bundled breast-cancer and wine
tables. Objectives: validation error and the int8 model size (1 B a weight, 4 B an int32
bias, counted by hand), which the user also gives sparsemod as a cost function. Every
method goes through one ask/tell interface (:class:`Method`): ``ask() -> params``,
``tell(params, values)``; each evaluation is seeded by the run's seed and the parameters,
so the same network scores the same for every method.

* ``sparsemod``: :class:`sparsemod.Study` with the cost function and its defaults (a
  quarter Sobol, then the GP over exactly costed candidates and the front's one-step
  neighbours, the size on a log scale), two arms a round;
* ``sparsemod_linear``: the same with ``cost_scale = "linear"`` ([TRAIN]'s default);
* ``sparsemod_no_costs``: the same study told both objectives (Ax's qLogNEHVI);
* ``optuna_tpe``: Optuna's ``TPESampler`` (its multi-objective default);
* ``random``: Optuna's ``RandomSampler``.

Hypervolume: error in [0, 1]; size on a log scale, ``log(x / lo) / log(hi / lo)`` between
the smallest and the largest network of the space (a linear scale squeezes the small
networks, the ones a microcontroller takes, into a thin slab); reference point (1, 1).

    python bench/study_vs_optuna.py                      # 5 seeds x 2 problems x 30 trials
    python bench/study_vs_optuna.py --seeds 0 --budget 8 # smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_wine
from torch import nn

from sparsemod import SearchSpace, Study
from sparsemod.results.pareto import hypervolume
from sparsemod.space import FloatParam, IntParam, choice

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("sparsemod", "sparsemod_linear", "sparsemod_no_costs", "optuna_tpe", "random")
SPACE = SearchSpace(
    (
        IntParam("hidden1", 2, 256, log=True),
        IntParam("hidden2", 0, 64),
        FloatParam("lr", 1e-4, 3e-1, log=True),
        FloatParam("weight_decay", 1e-6, 1e-1, log=True),
        choice("activation", ["relu", "tanh", "gelu"]),
        IntParam("epochs", 5, 60),
    )
)


def load(name: str) -> tuple:
    data = {"breast_cancer": load_breast_cancer, "wine": load_wine}[name]()
    x = torch.tensor(data.data, dtype=torch.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    y = torch.tensor(data.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    cut = int(0.7 * len(x))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]], int(y.max()) + 1


def widths(p: dict, features: int, classes: int) -> list[int]:
    return [features, p["hidden1"]] + ([p["hidden2"]] if p["hidden2"] else []) + [classes]


def size_bytes(p: dict, features: int, classes: int) -> float:
    w = widths(p, features, classes)
    return float(sum(a * b for a, b in zip(w, w[1:])) + 4 * sum(w[1:]))


def evaluate(p: dict, data: tuple, seed: int) -> float:
    """The user's training loop: full-batch Adam; the validation error."""
    x, y, xv, yv, classes = data
    digest = hashlib.sha256(repr(sorted(p.items())).encode()).digest()
    torch.manual_seed(seed * 7919 + int.from_bytes(digest[:4], "little"))
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}[p["activation"]]
    w = widths(p, x.shape[1], classes)
    layers: list[nn.Module] = []
    for a, b in zip(w, w[1:]):
        layers += [nn.Linear(a, b), act()]
    net = nn.Sequential(*layers[:-1])
    opt = torch.optim.Adam(net.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    for _ in range(p["epochs"]):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    with torch.no_grad():
        return float((net(xv).argmax(1) != yv).float().mean())


class Method:
    """One search behind ask/tell: ``ask() -> params``, ``tell(params, values)``."""

    def __init__(self, name: str, seed: int, budget: int, cost) -> None:
        self.name = name
        if name.startswith("sparsemod"):
            sobol = max(2, budget // 4)
            costs = None if name == "sparsemod_no_costs" else cost
            self.study = Study(
                SPACE, ("error", "model_size_bytes"), costs, seed=seed, batch_size=2,
                phases={"sobol": sobol, "gp": budget - sobol},
                **({"cost_scale": "linear"} if name == "sparsemod_linear" else {}),
                ref_point=None if costs else [1.0, 1.1 * cost(_big())["model_size_bytes"]],
            )  # fmt: skip
            self._asked: list = []
        else:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            sampler = (
                optuna.samplers.TPESampler(seed=seed)
                if name == "optuna_tpe"
                else optuna.samplers.RandomSampler(seed=seed)
            )
            self.optuna = optuna
            self.study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)

    def ask(self) -> dict:
        if self.name.startswith("sparsemod"):
            if not self._asked:
                self._asked = self.study.ask(2)
            self._trial = self._asked.pop(0)
            return dict(self._trial.params)
        self._trial = self.study.ask()
        out = {}
        for p in SPACE.parameters:
            if isinstance(p, IntParam):
                out[p.name] = self._trial.suggest_int(p.name, p.low, p.high, log=p.log)
            elif isinstance(p, FloatParam):
                out[p.name] = self._trial.suggest_float(p.name, p.low, p.high, log=p.log)
            else:
                out[p.name] = self._trial.suggest_categorical(p.name, list(p.values))
        return out

    def tell(self, params: dict, values: dict) -> None:
        if self.name.startswith("sparsemod"):
            self.study.tell(self._trial, values)
        else:
            self.study.tell(self._trial, [values["error"], values["model_size_bytes"]])


def _big() -> dict:
    return {"hidden1": 256, "hidden2": 64, "lr": 0.01, "weight_decay": 1e-3,
            "activation": "relu", "epochs": 5}  # fmt: skip


def run(problem: str, method: str, seed: int, budget: int) -> dict:
    data = load(problem)
    features, classes = data[0].shape[1], data[4]

    def cost(p: dict) -> dict:
        return {"model_size_bytes": size_bytes(p, features, classes)}

    m = Method(method, seed, budget, cost)
    points, t0 = [], time.perf_counter()
    for _ in range(budget):
        params = m.ask()
        values = {"error": evaluate(params, data, seed), **cost(params)}
        m.tell(params, values)
        points.append([values["error"], values["model_size_bytes"]])
    hi = size_bytes(_big(), features, classes)
    lo = size_bytes({"hidden1": 2, "hidden2": 0}, features, classes)
    pts = np.array(points)
    norm = np.column_stack([pts[:, 0], np.log(pts[:, 1] / lo) / np.log(hi / lo)])
    return {"hv": hypervolume(norm, [1.0, 1.0]), "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--budget", type=int, default=30)
    ap.add_argument("--problems", nargs="+", default=["breast_cancer", "wine"])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    lines = [
        f"| problem | method | HV mean (sd), seeds {args.seeds} | wins vs TPE | s / run |",
        "|---|---|---|---|---|",
    ]
    for problem in args.problems:
        methods = dict.fromkeys(["optuna_tpe", *args.methods])  # TPE: the yardstick
        found = {m: [run(problem, m, s, args.budget) for s in args.seeds] for m in methods}
        tpe = [r["hv"] for r in found["optuna_tpe"]]
        for m, runs in found.items():
            hv = [r["hv"] for r in runs]
            sd = statistics.stdev(hv) if len(hv) > 1 else 0.0
            wins = sum(a >= b for a, b in zip(hv, tpe))
            secs = statistics.mean(r["seconds"] for r in runs)
            lines.append(
                f"| {problem} | {m} | {statistics.mean(hv):.4f} ({sd:.4f}) | "
                f"{wins}/{len(hv)} | {secs:.1f} |"
            )
            print(lines[-1], flush=True)
    out = ROOT / "results" / "bench" / f"study_vs_optuna_{'_'.join(args.methods)}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f"Budget {args.budget} trials; `python bench/study_vs_optuna.py`\n\n"
        + "\n".join(lines)
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
