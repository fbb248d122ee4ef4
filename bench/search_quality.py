"""Search quality per trained candidate: sparsemod against the searches a user would pick.

On each problem (default: ``digits_cnn``, ``digits_mlp`` and the generated 1-D signals
``signal1d`` of ``bench/signal_problem.py``) with three objectives (validation error,
model size, working memory, all measured on the pruned int8 network), every method gets
the same evaluator (:func:`sparsemod.evaluate.evaluate` with the same settings), the same
epochs, the same budget of evaluated candidates and the same seeds; only the search
differs:

* ``sparsemod``: Sobol, GP rounds (qLogEHVI over a pool with exact costs), morphisms;
* ``sparsemod_no_morph``: Sobol, then the GP rounds alone (selectable with ``--methods``,
  not in the default set: it makes the default run longer);
* ``sparsemod_linear``: sparsemod with ``cost_scale = linear`` (the default is ``log``);
* ``optuna_tpe``: Optuna's ``TPESampler`` (its multi-objective default);
* ``optuna_nsga2``: ``NSGAIISampler`` with a population of 10 (the default 50 would leave
  all 40 trials in the random first generation);
* ``optuna_gp``: ``GPSampler`` (log expected hypervolume improvement);
* ``random``: Optuna's ``RandomSampler``;
* ``ax``: Ax's default generation strategy through its own API (``ax.api.client.Client``,
  the three objectives minimised, one trial per ask, failed candidates marked failed).
  Ax's space is flat (every parameter, conditional or not, is searched; the builders
  ignore the inactive ones). Ax's model fits are slow (about 25 s an ask reported on 40
  trials; 2-4 s an ask in a 6-trial ``--quick`` run), so it runs on fewer seeds
  (``--ax-seeds``, by default the first three of ``--seeds``); the report says so.

Every method runs through one ask/tell loop (:func:`run_one`): sparsemod as its study
(:func:`sparsemod.search.problem_study`, the trials ``python main.py`` gives), each peer
as its library's ask / tell.

Hypervolume (BoTorch) uses one reference point for everyone, under two normalisations:
``linear`` divides size and memory by their maximum over the space (error stays in
[0, 1]); ``log`` maps size and memory to ``log(x / lo) / log(hi / lo)`` over the space's
range, because a linear scale squeezes the small networks, the ones that matter on a
microcontroller, into a thin slab. The maximum (and minimum) over each problem's space are
read from the predicted costs of Sobol points of that space (exact for layerwise pruning).

Duplicate trainings: per run, the trials whose network is the same as an earlier trial's
(:func:`duplicates`), "the same" by ``sparsemod.identity.network_fingerprint``.

The overall table gives, per method and scale, the geometric mean over the problems of
the method's median final hypervolume divided by its best peer's (:func:`overall`).

    python bench/search_quality.py                  # 3 problems x 5 seeds x 7 methods x 40
    python bench/search_quality.py --problems signal1d digits_cnn --seeds 0 1 2 --jobs 2
    python bench/search_quality.py --problems mypkg.problems:my_problem
    python bench/search_quality.py --quick          # smoke run: 1 seed, 6 candidates, 1 epoch

Writes results/bench/search_quality.md, one search_quality_<problem>.png per problem and
one JSON per run under results/bench/search_quality/<problem>/<method>_<seed>.json.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import multiprocessing as mp
import platform
import statistics
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
METHODS = (
    "sparsemod",
    "sparsemod_no_morph",
    "sparsemod_linear",
    "optuna_tpe",
    "optuna_nsga2",
    "optuna_gp",
    "random",
    "ax",
)
DEFAULT_METHODS = tuple(m for m in METHODS if m != "sparsemod_no_morph")
OURS = ("sparsemod", "sparsemod_no_morph", "sparsemod_linear")
OBJECTIVES = ("error", "model_size_bytes", "working_memory_bytes")
PROBLEMS = ("digits_cnn", "digits_mlp", "signal1d")
# Problems of this benchmark's own, by name -> ``module:function`` (bench/ on sys.path).
LOCAL_PROBLEMS = {"signal1d": "signal_problem:signal_problem"}


def get_problem(name: str) -> Any:
    """The problem called ``name``: one of :data:`LOCAL_PROBLEMS`, a registered problem, or
    a ``package.module:function`` path (see :func:`sparsemod.problems.get_problem`)."""
    from sparsemod.problems import get_problem as sparsemod_problem

    if str(BENCH) not in sys.path:  # spawned workers import bench/signal_problem.py too
        sys.path.insert(0, str(BENCH))
    return sparsemod_problem(LOCAL_PROBLEMS.get(name, name))


def problem_dir(name: str) -> str:
    """A folder name for a problem name or ``module:function`` path."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


# ----------------------------------------------------------------------------- settings


def train_config(
    method: str, seed: int, budget: int, epochs: int, root: Path, problem: str = PROBLEMS[0]
):
    """The [TRAIN] settings every method shares; sparsemod's rounds split the budget.

    sparsemod takes config.ini's split of its budget: a quarter Sobol, half GP, a quarter
    morphisms (``sparsemod_no_morph``: a quarter Sobol, the rest GP), two arms a round.
    No hard limits (the benchmark compares fronts over the whole space); the stopper is off
    (a fixed budget); every phase trains ``epochs``.
    """
    from sparsemod.config import TrainConfig

    batch = 2
    rounds = max(budget // batch, 2)
    r1 = max(1, round(rounds / 4))
    morphisms = method in ("sparsemod", "sparsemod_linear")
    r3 = max(1, round(rounds / 4)) if morphisms else 0
    r2 = rounds - r1 - r3
    return TrainConfig(
        name=f"{method}_{seed}",
        root=str(root),
        problem=problem,
        r1=r1,
        r2=r2,
        r3=r3,
        epochs1=epochs,
        epochs2=epochs,
        epochs3=epochs,
        batch_size=batch,
        objectives=3,
        quant_scheme="post",
        pruning=True,
        prune_method="magnitude_layerwise",
        morphisms=morphisms,
        cost_scale="linear" if method == "sparsemod_linear" else "log",
        seed=seed,
        device="cpu",
        tolerance=0.0,
    )


def space_range(name: str, samples: int) -> dict[str, tuple[float, float]]:
    """(lowest, highest) predicted size and memory over ``samples`` Sobol points of the
    space of problem ``name``."""
    from sparsemod.evaluate import predict_costs
    from sparsemod.search.encoding import Encoder

    problem = get_problem(name)
    data = problem.load(0)
    settings = train_config("random", 0, 40, 1, ROOT, name).eval_settings(1)
    found: dict[str, list[float]] = {o: [] for o in OBJECTIVES[1:]}
    for params in Encoder(problem.space).sample(samples, seed=20260)[:samples]:
        try:
            costs = predict_costs(
                problem, params, settings, tuple(data.input_shape), data.num_classes
            )
        except Exception:  # noqa: BLE001 - a point that does not build has no cost
            continue
        for o in found:
            found[o].append(costs[o])
    return {o: (min(v), max(v)) for o, v in found.items()}


# ----------------------------------------------------------------------------- one run


def run_one(
    method: str, seed: int, budget: int, epochs: int, root: str, name: str = PROBLEMS[0]
) -> dict[str, Any]:
    """One search of problem ``name``; returns its trials' objective values in trial order,
    its timings and its duplicate trainings, and writes them to ``root/method_seed.json``.

    Every method runs through the same ask/tell loop (:func:`make_method`): ask for arms,
    evaluate each with :func:`sparsemod.evaluate.evaluate`, tell the result.
    """
    import torch

    from sparsemod.evaluate import evaluate

    torch.set_num_threads(1)  # as the search's trials: one thread each, two runs at once
    start = time.perf_counter()
    problem = get_problem(name)
    data = problem.load(seed)
    cfg = train_config(method, seed, budget, epochs, Path(root) / "runs", name)
    fingerprint = fingerprinter(
        problem, cfg.eval_settings(epochs), tuple(data.input_shape), data.num_classes
    )
    asker = make_method(method, cfg, problem, data)
    rows, optimizer_s = [], 0.0
    while len(rows) < budget:
        t0 = time.perf_counter()
        arms = asker.ask()
        optimizer_s += time.perf_counter() - t0
        if not arms:
            break
        for arm in arms:
            settings, warm = asker.how(arm)
            result = evaluate(problem, arm.params, settings, data, warm)
            t0 = time.perf_counter()
            asker.tell(arm, result)
            optimizer_s += time.perf_counter() - t0
            rows.append(
                {
                    "status": result.status,
                    "phase": arm.phase,
                    "params": arm.params,
                    "eval_s": _num(getattr(result, "total_seconds", None)),
                    **{o: _num(getattr(result, o, None)) for o in OBJECTIVES},
                }
            )
    out = {
        "trials": rows,
        "optimizer_s": optimizer_s,
        "duplicates": duplicates(rows, fingerprint),
    }
    out.update(method=method, seed=seed, problem=name, wall_s=time.perf_counter() - start)
    path = Path(root) / f"{method}_{seed}.json"
    path.write_text(json.dumps(out, indent=1))
    return out


def duplicates(trials: list[dict], fingerprint: Any) -> int:
    """How many of ``trials`` train a network an earlier trial of the list already trained.

    ``fingerprint(params) -> str`` says which network a trial's ``params`` give; a trial
    counts when its fingerprint equals any earlier trial's (whatever either's status: a
    repeated failure is a repeated training too). Three trials of one network count 2.
    """
    seen: set[str] = set()
    count = 0
    for t in trials:
        key = fingerprint(t["params"])
        count += key in seen
        seen.add(key)
    return count


def fingerprinter(
    problem: Any, settings: Any, input_shape: tuple[int, ...], num_classes: int
) -> Any:
    """``fingerprint(params) -> str`` for :func:`duplicates`: the network ``params`` train
    (:func:`sparsemod.identity.network_fingerprint`)."""
    from sparsemod.identity import network_fingerprint

    def fingerprint(params: dict) -> str:
        return network_fingerprint(problem, params, settings, input_shape, num_classes)

    return fingerprint


class _Arm:
    """What a method proposes: parameters, a phase name, and the method's own handle."""

    def __init__(self, params: dict, phase: str, handle: Any) -> None:
        self.params, self.phase, self.handle = params, phase, handle


class SparsemodMethod:
    """sparsemod's search as ``python main.py`` runs it (its study, one round per ask)."""

    def __init__(self, cfg: Any, problem: Any, data: Any) -> None:
        from sparsemod.search import problem_study
        from sparsemod.search.reporter import SilentReporter
        from sparsemod.store import Store

        self.study = problem_study(cfg, problem, data, Store("sqlite://"), None, SilentReporter())

    def ask(self) -> list[_Arm]:
        return [_Arm(t.params, t.phase, t) for t in self.study.ask_round()]

    def how(self, arm: _Arm) -> tuple[Any, Any]:
        settings = replace(self.study.eval_settings(arm.handle), keep_model=False)
        return settings, self.study.warm_start(arm.handle)

    def tell(self, arm: _Arm, result: Any) -> None:
        self.study.record(arm.handle, result)


class OptunaMethod:
    """An Optuna sampler, one trial per ask."""

    def __init__(self, method: str, cfg: Any, problem: Any) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        seed = cfg.seed
        samplers = {
            "optuna_tpe": lambda: optuna.samplers.TPESampler(seed=seed),
            "optuna_nsga2": lambda: optuna.samplers.NSGAIISampler(population_size=10, seed=seed),
            "optuna_gp": lambda: optuna.samplers.GPSampler(seed=seed),
            "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        }
        self.optuna, self.method, self.space = optuna, method, problem.space
        self.study = optuna.create_study(directions=["minimize"] * 3, sampler=samplers[method]())
        # The search's own settings for its candidates, without the model bytes (nobody
        # here stores models; serialising them would only cost time).
        self.settings = replace(cfg.eval_settings(cfg.epochs1), keep_model=False)

    def ask(self) -> list[_Arm]:
        trial = self.study.ask()
        return [_Arm(_suggest(trial, self.space), self.method, trial)]

    def how(self, arm: _Arm) -> tuple[Any, Any]:
        return self.settings, None

    def tell(self, arm: _Arm, result: Any) -> None:
        from sparsemod.evaluate import COMPLETED

        if result.status == COMPLETED:
            self.study.tell(arm.handle, [_num(getattr(result, o, None)) for o in OBJECTIVES])
        else:
            self.study.tell(arm.handle, state=self.optuna.trial.TrialState.FAIL)


class AxMethod:
    """Ax's default generation strategy through its own API, one trial per ask.

    The three objectives are minimised (``-error, -model_size_bytes,
    -working_memory_bytes``); a failed candidate is marked failed. The space is given flat:
    Ax searches every parameter (conditional ones too; the builders ignore the inactive).
    """

    def __init__(self, cfg: Any, problem: Any) -> None:
        import logging

        from ax.api.client import Client

        for name in list(logging.root.manager.loggerDict):  # Ax logs every trial at INFO
            if name == "ax" or name.startswith("ax."):
                logging.getLogger(name).setLevel(logging.WARNING)
        self.space = problem.space
        self.client = Client(random_seed=cfg.seed)
        self.client.configure_experiment(parameters=ax_parameters(problem.space))
        self.client.configure_optimization(objective=", ".join(f"-{o}" for o in OBJECTIVES))
        self.settings = replace(cfg.eval_settings(cfg.epochs1), keep_model=False)

    def ask(self) -> list[_Arm]:
        from sparsemod.space import ChoiceParam

        arms = []
        for index, params in self.client.get_next_trials(max_trials=1).items():
            raw = dict(params)
            for p in self.space.parameters:  # a choice of one value Ax was not given
                if isinstance(p, ChoiceParam) and len(p.values) == 1:
                    raw.setdefault(p.name, p.values[0])
            arms.append(_Arm(self.space.coerce(raw), "ax", index))
        return arms

    def how(self, arm: _Arm) -> tuple[Any, Any]:
        return self.settings, None

    def tell(self, arm: _Arm, result: Any) -> None:
        from sparsemod.evaluate import COMPLETED

        if result.status == COMPLETED:
            values = {o: _num(getattr(result, o, None)) for o in OBJECTIVES}
            self.client.complete_trial(trial_index=arm.handle, raw_data=values)
        else:
            self.client.mark_trial_failed(
                trial_index=arm.handle, failed_reason=str(result.failure_reason)[:200]
            )


def ax_parameters(space: Any) -> list[Any]:
    """``space`` as Ax parameter configs (flat: conditions are not passed on; a fixed
    parameter is not searched, :meth:`SearchSpace.coerce` fills it in)."""
    from ax.api.configs import ChoiceParameterConfig, RangeParameterConfig

    from sparsemod.space import ChoiceParam, FloatParam, IntParam

    out: list[Any] = []
    for p in space.parameters:
        if isinstance(p, (IntParam, FloatParam)):
            kind = "int" if isinstance(p, IntParam) else "float"
            out.append(
                RangeParameterConfig(
                    name=p.name,
                    bounds=(p.low, p.high),
                    parameter_type=kind,
                    scaling="log" if p.log else "linear",
                )
            )
        elif isinstance(p, ChoiceParam):
            first = p.values[0]
            kind = (
                "bool"
                if isinstance(first, bool)
                else "str"
                if isinstance(first, str)
                else "int"
                if all(isinstance(v, int) for v in p.values)
                else "float"
            )
            if len(p.values) == 1:
                continue  # Ax refuses a choice of one; AxMethod.ask fills it in
            out.append(
                ChoiceParameterConfig(
                    name=p.name,
                    values=list(p.values),
                    parameter_type=kind,
                    is_ordered=p.ordered,
                )
            )
    return out


def make_method(method: str, cfg: Any, problem: Any, data: Any) -> Any:
    """The method behind the one ask/tell interface: ``ask() -> arms``, ``how(arm) ->
    (settings, warm start)``, ``tell(arm, result)``."""
    if method.startswith("sparsemod"):
        return SparsemodMethod(cfg, problem, data)
    if method == "ax":
        return AxMethod(cfg, problem)
    return OptunaMethod(method, cfg, problem)


def _suggest(trial: Any, space: Any) -> dict[str, Any]:
    from sparsemod.space import ChoiceParam, FixedParam, FloatParam, IntParam

    params: dict[str, Any] = {}
    for p in space.parameters:
        if isinstance(p, IntParam):
            params[p.name] = trial.suggest_int(p.name, p.low, p.high, log=p.log)
        elif isinstance(p, FloatParam):
            params[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
        elif isinstance(p, ChoiceParam):
            params[p.name] = trial.suggest_categorical(p.name, list(p.values))
        elif isinstance(p, FixedParam):
            params[p.name] = p.value
    return params


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


# ----------------------------------------------------------------------------- scoring


def normalise(values: np.ndarray, kind: str, ranges: dict) -> np.ndarray:
    """Objective values mapped so that the common reference point is (1, 1, 1)."""
    out = np.array(values, dtype=float, copy=True)
    for j, o in enumerate(OBJECTIVES[1:], start=1):
        lo, hi = ranges[o]
        if kind == "linear":
            out[:, j] = out[:, j] / hi
        else:  # log: the space's range onto [0, 1]; below the lowest seen counts as 0
            out[:, j] = np.clip(np.log(out[:, j] / lo) / math.log(hi / lo), 0.0, None)
    return out


def score(runs: list[dict], ranges: dict) -> dict[str, Any]:
    from sparsemod.results import pareto

    kinds = ("linear", "log")
    for run in runs:
        values = np.array([[t[o] for o in OBJECTIVES] for t in run["trials"]], dtype=float)
        run["values"] = values
        for kind in kinds:
            run[f"hv_{kind}"] = pareto.hypervolume_trace(normalise(values, kind, ranges), [1, 1, 1])
    every = np.concatenate([r["values"] for r in runs])
    owner = [r["method"] for r in runs for _ in r["trials"]]
    mask = pareto.pareto_mask(every)
    front = every[mask]
    best = {kind: pareto.hypervolume(normalise(front, kind, ranges), [1, 1, 1]) for kind in kinds}
    share: dict[str, float] = {}
    for method in {r["method"] for r in runs}:
        mine = np.array([o == method for o in owner])
        # A front point found by several methods (the same values) counts for each.
        got = {tuple(v) for v in every[mask & mine]}
        share[method] = len(got) / len({tuple(v) for v in front})
    return {"best": best, "share": share, "front_size": len({tuple(v) for v in front})}


# ----------------------------------------------------------------------------- report


def table(runs: list[dict], scored: dict, methods: list[str], seeds: list[int]) -> str:
    lines = []
    for kind in ("linear", "log"):
        best = scored["best"][kind]
        lines += [
            f"#### Hypervolume, {kind} normalisation (best-known front: {best:.4f})",
            "",
            "| method | median HV | min - max | % of best-known | HV at 10 / 20 trials "
            "| trials (completed) | duplicate trainings | front share | eval s / trial "
            "| optimizer s / trial | wall s / run |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for m in methods:
            mine = [r for r in runs if r["method"] == m]
            if not mine:
                continue
            hv = [r[f"hv_{kind}"][-1] for r in mine]
            n = statistics.median(len(r["trials"]) for r in mine)
            done = statistics.median(
                sum(t["status"] == "completed" for t in r["trials"]) for r in mine
            )
            dup = [r.get("duplicates", float("nan")) for r in mine]
            evals = [t.get("eval_s", float("nan")) for r in mine for t in r["trials"]]
            opt = statistics.median(r["optimizer_s"] / max(len(r["trials"]), 1) for r in mine)
            wall = statistics.median(r["wall_s"] for r in mine)
            early = " / ".join(
                f"{statistics.median(r[f'hv_{kind}'][k - 1] for r in mine):.3f}"
                if all(len(r[f"hv_{kind}"]) >= k for r in mine)
                else "-"
                for k in (10, 20)
            )
            lines.append(
                f"| {m} | {statistics.median(hv):.4f} | {min(hv):.4f} - {max(hv):.4f} | "
                f"{100 * statistics.median(hv) / best if best > 0 else float('nan'):.1f} % "
                f"| {early} | {n:.0f} ({done:.0f}) | "
                f"{statistics.median(dup):.0f} ({min(dup):.0f} - {max(dup):.0f}) | "
                f"{100 * scored['share'][m]:.0f} % | {statistics.median(evals):.2f} | "
                f"{opt:.2f} | {wall:.0f} |"
            )
        lines += ["", comparison(runs, kind, methods, seeds), ""]
    return "\n".join(lines)


def overall(final: dict[str, dict[str, list[float]]], methods: list[str]) -> dict[str, dict]:
    """Per method, over the problems: the geometric mean of its median final HV divided by
    its best peer's, and on how many problems it is beyond seed noise of that peer.

    ``final[problem][method]`` holds one scale's final HVs, one per seed. The best peer of
    a sparsemod method (:data:`OURS`) is the non-sparsemod method of highest median on the
    problem; of any other method, the best of the other non-sparsemod methods. A problem
    where the peer's median is 0 has no ratio (left out of the mean); a ratio of 0 makes the
    mean 0. Beyond seed noise as in :func:`comparison`: the two ranges over the seeds do not
    overlap, each method with 3 seeds or more.

    Returns:
        ``{method: {"ratio": geometric mean or nan, "problems": problems in the mean,
        "ahead": problems beyond noise ahead, "behind": ... behind, "judged": problems
        with enough seeds to judge}}``.
    """
    out: dict[str, dict] = {}
    for m in methods:
        logs, ahead, behind, judged, zero = [], 0, 0, 0, False
        for by_method in final.values():
            mine = by_method.get(m)
            peers = {p: v for p, v in by_method.items() if p not in OURS and p != m and v}
            if not mine or not peers:
                continue
            peer = max(peers, key=lambda p: statistics.median(peers[p]))
            theirs = peers[peer]
            ours_med, peer_med = statistics.median(mine), statistics.median(theirs)
            if peer_med > 0:
                if ours_med <= 0:
                    zero = True
                else:
                    logs.append(math.log(ours_med / peer_med))
            if min(len(mine), len(theirs)) >= 3:
                judged += 1
                ahead += min(mine) > max(theirs)
                behind += max(mine) < min(theirs)
        ratio = 0.0 if zero else math.exp(statistics.fmean(logs)) if logs else float("nan")
        out[m] = {
            "ratio": ratio,
            "problems": len(logs) + zero,
            "ahead": ahead,
            "behind": behind,
            "judged": judged,
        }
    return out


def overall_table(per_problem: dict[str, list[dict]], methods: list[str]) -> str:
    """The overall table: :func:`overall` under both normalisations."""
    res = {}
    for kind in ("linear", "log"):
        final = {
            name: {
                m: [r[f"hv_{kind}"][-1] for r in runs if r["method"] == m and r[f"hv_{kind}"]]
                for m in methods
            }
            for name, runs in per_problem.items()
        }
        res[kind] = overall(final, methods)
    lines = [
        f"## Overall ({len(per_problem)} problems: {', '.join(per_problem)})",
        "",
        "Geometric mean over the problems of (method's median final HV / best peer's median "
        "final HV). The best peer of a sparsemod method is the best non-sparsemod method on "
        "that problem; of a peer, the best of the other peers (so above 1 means it beat "
        "every other peer there). Beyond seed noise: on how many problems the method's "
        "range over the seeds lies wholly above (ahead) or below (behind) its best peer's, "
        "of the problems with 3 seeds or more of both.",
        "",
        "| method | ratio, linear | beyond seed noise, linear | ratio, log "
        "| beyond seed noise, log |",
        "|---|---|---|---|---|",
    ]
    for m in methods:
        cells = []
        for kind in ("linear", "log"):
            o = res[kind][m]
            cells.append(f"{o['ratio']:.3f} ({o['problems']} problems)")
            cells.append(
                f"ahead {o['ahead']}, behind {o['behind']} of {o['judged']}"
                if o["judged"]
                else "n/a (needs 3 seeds)"
            )
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison(runs: list[dict], kind: str, methods: list[str], seeds: list[int]) -> str:
    """sparsemod against each peer: median ratio, seeds won, and whether beyond seed noise.

    A difference counts as beyond seed noise when the two methods' ranges over the seeds
    do not overlap (every seed of one above every seed of the other).
    """
    final = {(r["method"], r["seed"]): r[f"hv_{kind}"][-1] for r in runs if r[f"hv_{kind}"]}
    ours = "sparsemod"
    peers = [m for m in methods if m != ours]
    if not any(k[0] == ours for k in final):
        return ""
    lines = [
        f"sparsemod against each method ({kind}):",
        "",
        "| method | sparsemod / method (median HV) | seeds sparsemod ahead | beyond seed noise |",
        "|---|---|---|---|",
    ]
    mine = [final[ours, s] for s in seeds if (ours, s) in final]
    for m in peers:
        theirs = [final[m, s] for s in seeds if (m, s) in final]
        if not theirs:
            continue
        ahead = sum(final[ours, s] > final[m, s] for s in seeds if (m, s) in final)
        beyond = (
            f"n/a ({len(theirs)} seed(s); needs 3)"
            if min(len(mine), len(theirs)) < 3
            else "yes, ahead"
            if min(mine) > max(theirs)
            else "yes, behind"
            if max(mine) < min(theirs)
            else "no (ranges overlap)"
        )
        ratio = statistics.median(mine) / statistics.median(theirs)
        lines.append(f"| {m} | {ratio:.3f} | {ahead} / {len(theirs)} | {beyond} |")
    return "\n".join(lines)


def plot(runs: list[dict], scored: dict, methods: list[str], path: Path, name: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, kind in zip(axes, ("linear", "log")):
        for m in methods:
            traces = [r[f"hv_{kind}"] for r in runs if r["method"] == m]
            if not traces:
                continue
            n = min(len(t) for t in traces)
            arr = np.array([t[:n] for t in traces])
            x = np.arange(1, n + 1)
            (line,) = ax.plot(x, np.median(arr, axis=0), label=m)
            ax.fill_between(x, arr.min(axis=0), arr.max(axis=0), alpha=0.12, color=line.get_color())
        ax.axhline(scored["best"][kind], color="black", ls="--", lw=1, label="best-known front")
        ax.set_title(f"{name}: HV, {kind} size / memory (median, min-max over seeds)")
        ax.set_xlabel("evaluated candidates")
        ax.set_ylabel("hypervolume")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--problems",
        nargs="+",
        default=list(PROBLEMS),
        help="registered problems, 'signal1d' or 'package.module:function' paths",
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument(
        "--ax-seeds",
        type=int,
        nargs="+",
        default=None,
        help="seeds ax runs (it is slow); default the first three of --seeds",
    )
    ap.add_argument("--budget", type=int, default=40, help="evaluated candidates per run")
    ap.add_argument("--epochs", type=int, default=4, help="training epochs per candidate")
    ap.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS)
    ap.add_argument("--jobs", type=int, default=2, help="runs at once (one torch thread each)")
    ap.add_argument("--samples", type=int, default=512, help="Sobol points for the ranges")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench")
    ap.add_argument("--quick", action="store_true", help="1 seed, 6 candidates, 1 epoch")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="score and plot the runs already under --out (same --problems / --methods / --seeds)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.budget, args.epochs, args.samples = [0], 6, 1, 64
    if args.budget < 4:
        ap.error(f"--budget {args.budget}: at least 4 candidates (two rounds of two)")
    if args.ax_seeds is None:
        args.ax_seeds = args.seeds[:3]
    args.ax_seeds = [s for s in args.ax_seeds if s in args.seeds]
    for name in args.problems:
        try:
            get_problem(name)
        except Exception as exc:  # noqa: BLE001 - one line, not a traceback
            ap.error(f"--problems {name}: {exc}")
    seeds_of = {m: args.ax_seeds if m == "ax" else args.seeds for m in args.methods}
    run_root = args.out / "search_quality"
    dirs = {name: run_root / problem_dir(name) for name in args.problems}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    ranges = {}
    for name in args.problems:
        ranges[name] = space_range(name, args.samples)
        print(
            f"{name}: space range over {args.samples} Sobol points: {ranges[name]}", file=sys.stderr
        )
    # Seed by seed, so a run cut short still has whole seeds for every method and problem.
    jobs = [
        (name, m, s)
        for s in args.seeds
        for name in args.problems
        for m in args.methods
        if s in seeds_of[m]
    ]
    runs: dict[str, list[dict]] = {name: [] for name in args.problems}
    if args.report_only:
        for name, m, s in jobs:
            path = dirs[name] / f"{m}_{s}.json"
            if not path.exists():
                ap.error(f"--report-only: {path} is missing; run without --report-only first")
            runs[name].append(json.loads(path.read_text()))
        jobs = []
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        futures = {
            pool.submit(run_one, m, s, args.budget, args.epochs, str(dirs[name]), name): (
                name,
                m,
                s,
            )
            for name, m, s in jobs
        }
        for fut in cf.as_completed(futures):
            name, m, s = futures[fut]
            run = fut.result()
            runs[name].append(run)
            evals = [t["eval_s"] for t in run["trials"]]
            print(
                f"{name} {m} seed {s}: {len(run['trials'])} trials, {run['wall_s']:.0f} s, "
                f"evaluate {statistics.median(evals):.2f} s / candidate (median; "
                f"{min(evals):.2f} - {max(evals):.2f}), optimizer {run['optimizer_s']:.1f} s, "
                f"{run['duplicates']} duplicate trainings",
                file=sys.stderr,
                flush=True,
            )
    elapsed = time.perf_counter() - start
    methods = list(args.methods)
    ax_note = (
        f" ax runs only seeds {args.ax_seeds} (its asks are slow; `--ax-seeds`)."
        if "ax" in methods and args.ax_seeds != args.seeds
        else ""
    )
    head = [
        f"# Search quality, {date.today().isoformat()}",
        "",
        f"Machine: {platform.machine()}, {mp.cpu_count()} cores, "
        f"{'GPU' if _has_gpu() else 'no GPU'}, Python {platform.python_version()}. "
        f"Problems {', '.join(args.problems)}; objectives {', '.join(OBJECTIVES)}; "
        f"{args.budget} candidates per run, {args.epochs} epochs each, seeds {args.seeds}, "
        f"{args.jobs} runs at once;{ax_note} "
        + (
            f"runs read back from {run_root} (not re-run)."
            if args.report_only
            else f"{elapsed / 60:.1f} min in all."
        ),
        "Command: `" + " ".join(["python bench/search_quality.py", *(argv or sys.argv[1:])]) + "`",
        "",
        "Duplicate trainings: per run, the trials whose network an earlier trial of the run "
        'already trained, "the same network" by sparsemod.identity.network_fingerprint.',
        "",
    ]
    sections = []
    for name in args.problems:
        if not runs[name]:
            continue
        scored = score(runs[name], ranges[name])
        png = args.out / f"search_quality_{problem_dir(name)}.png"
        plot(runs[name], scored, methods, png, name)
        sections += [
            f"## {name}",
            "",
            f"Space range (predicted, {args.samples} Sobol points): "
            + ", ".join(f"{o} {lo:.0f} - {hi:.0f}" for o, (lo, hi) in ranges[name].items())
            + f". Best-known front: {scored['front_size']} points (union of every run). "
            + f"Plot: {png.name}.",
            "",
            table(runs[name], scored, methods, args.seeds),
            "",
        ]
    text = "\n".join(head + sections + [overall_table(runs, methods)])
    print(text)
    (args.out / "search_quality.md").write_text(text + "\n")


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
