"""The command line: ``python main.py [--config config.ini] [--set SECTION.key=value ...]``.

``[DEFAULT] train = true`` runs the search of ``[TRAIN]``; ``false`` runs ``[TEST]``:
retrain one arm of a finished search from scratch and score it on the test split.
A bad configuration prints one line on stderr and exits with code 2, having written nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from sparsemod.config import TestConfig, load_config
from sparsemod.errors import ConfigError, SparsemodError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sparsemod",
        description="Multi-objective, hardware-aware architecture search for small devices.",
    )
    p.add_argument("--config", default="config.ini", help="INI file (default: config.ini)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.key=value",
        help="override one key, e.g. --set TRAIN.r1=3 (repeatable)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (0 ok, 1 failed run, 2 bad configuration)."""
    args = _parser().parse_args(argv)
    try:
        run = load_config(args.config, args.overrides)
        if run.train:
            from sparsemod.problems import get_problem
            from sparsemod.search import Search

            cfg = run.train_config
            search = Search(cfg, get_problem(cfg.problem))
            search.run()
        else:
            run_test(run.test_config)
    except ConfigError as exc:
        print(f"sparsemod: {exc}", file=sys.stderr)
        return 2
    except SparsemodError as exc:
        print(f"sparsemod: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def run_test(cfg: TestConfig) -> dict:
    """Retrain arm ``cfg.arm`` of the search ``<root>/<name>`` and score it on test.

    Writes ``<root>/<name>/test_trial_<arm>.json`` and returns what it wrote.

    Raises:
        ConfigError: the arm is not a trial of that search.
        DataError: the search's results cannot be read.
    """
    from sparsemod.evaluate import evaluate
    from sparsemod.problems import get_problem
    from sparsemod.report import load_results

    results = load_results(Path(cfg.root) / cfg.name)
    rows = results.trials[results.trials["index"] == cfg.arm]
    if rows.empty:
        raise ConfigError(
            f"[TEST] arm: {cfg.arm} is not a trial of {results.path} "
            f"(trials 0..{len(results.trials) - 1})"
        )
    problem = get_problem(results.summary["problem"])
    row = rows.iloc[0]
    params = problem.space.coerce({n: row[n] for n in problem.space.names})
    settings = cfg.eval_settings()
    print(f"[test] retraining trial {cfg.arm} for {cfg.epochs} epochs ...", flush=True)
    r = evaluate(problem, params, settings)
    out = {
        "arm": cfg.arm,
        "params": params,
        "status": r.status,
        "failure_reason": r.failure_reason,
        "test_error": None if r.accuracy_test is None else 1.0 - r.accuracy_test,
        "error": r.error,
        "model_size_bytes": r.model_size_bytes,
        "working_memory_bytes": r.working_memory_bytes,
        "flops": r.flops,
        "latency_s": r.latency_s,
        "epochs": cfg.epochs,
        "quant_scheme": cfg.quant_scheme,
    }
    path = results.path / f"test_trial_{cfg.arm}.json"
    path.write_text(json.dumps(out, indent=2, default=str))
    print(json.dumps(out, indent=2, default=str))
    return out
