"""The command line: ``python main.py [--config config.ini] [--set SECTION.key=value ...]``.

``[DEFAULT] train = true`` runs the search of ``[TRAIN]``; ``false`` runs ``[TEST]``:
retrain one arm of a finished search from scratch and score it on the test split.
A bad configuration prints one line on stderr and exits with code 2, having written nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sparsemod.config import TestConfig, TrainConfig, load_config, resume_changes
from sparsemod.errors import ConfigError, SparsemodError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sparsemod",
        description="Multi-objective, hardware-aware architecture search for small devices. "
        "Also: sparsemod export|lineage|deploy SEARCH, sparsemod db upgrade --database URL, "
        "sparsemod boards, sparsemod serve, sparsemod dashboard.",
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
    p.add_argument(
        "--resume",
        nargs="?",
        const=-1,
        type=int,
        default=None,
        metavar="SEARCH_ID",
        help="go on with the search called [TRAIN] name (or with this id) from the store",
    )
    p.add_argument(
        "--warm-start",
        default=None,
        metavar="SEARCH",
        help="propose the Pareto set of the earlier search SEARCH (same store) first",
    )
    return p


def _tool_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sparsemod", description="Work with stored searches.")
    sub = p.add_subparsers(dest="tool", required=True)
    for name, text in (
        ("export", "write trials.csv, pareto.csv, summary.json and models/ again"),
        ("lineage", "print the trials as a tree of morphisms"),
    ):
        q = sub.add_parser(name, help=text)
        q.add_argument("search", help="a search name or id")
        q.add_argument("--root", default="results", help="results folder (default results)")
        q.add_argument("--database", default=None, help="SQLAlchemy URL of the store")
        if name == "export":
            q.add_argument("--out", default=None, help="folder (default <root>/<name>)")
            q.add_argument("--csv", action="store_true", help="(every file is written)")
            q.add_argument("--pareto", action="store_true", help="(every file is written)")
    dep = sub.add_parser(
        "deploy",
        help="export a Pareto model to a runtime and check it there",
        description="Export a stored Pareto model to tflite / executorch / onnx (fully int8), "
        "run the test split through it in the runtime and print sparsemod's objectives "
        "beside the runtime's figures. Without --check the artifact is exported, checked and "
        "written; --check alone re-checks the artifact already in --out without exporting "
        "again (and writes nothing).",
    )
    dep.add_argument("search", help="a search name or id")
    dep.add_argument("--trial", type=int, default=None, help="trial index (default: most accurate)")
    dep.add_argument("--format", default="tflite", help="tflite, executorch or onnx")
    dep.add_argument("--out", default=None, help="folder (default <root>/<name>/deploy)")
    dep.add_argument("--c-array", action="store_true", help="also write a .h / .c pair")
    dep.add_argument("--check", action="store_true", help="re-check the artifact in --out only")
    dep.add_argument("--root", default="results", help="results folder (default results)")
    dep.add_argument("--database", default=None, help="SQLAlchemy URL of the store")
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])
    db.add_argument("--database", required=True, help="SQLAlchemy URL of the store")
    sub.add_parser("boards", help="list the built-in boards (device profiles) a search targets")
    serve = sub.add_parser("serve", help="run the REST API and one worker (for a laptop)")
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--root", default="results", help="results folder (default results)")
    serve.add_argument("--database", default=None, help="SQLAlchemy URL of the store")
    serve.add_argument(
        "--dev", action="store_true", help="allow serving without SPARSEMOD_API_TOKEN"
    )
    dash = sub.add_parser(
        "dashboard",
        help="browse the stored searches in a web page (read-only)",
        description="Serve the dashboard over a local store, read-only: the searches, their "
        "Pareto fronts, hypervolume, trials, lineage and models, updated live while a search "
        "runs. No token on a loopback address; any other address needs SPARSEMOD_API_TOKEN.",
    )
    dash.add_argument("--database", default=None, help="SQLAlchemy URL of the store")
    dash.add_argument("--root", default="results", help="results folder (default results)")
    dash.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    dash.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    return p


TOOLS = ("export", "lineage", "deploy", "db", "serve", "boards", "dashboard")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (0 ok, 1 failed run, 2 bad configuration)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOLS:
        return _guarded(lambda: _tools(_tool_parser().parse_args(argv)))
    args = _parser().parse_args(argv)

    def run() -> None:
        config = load_config(args.config, args.overrides)
        if config.train:
            _search(config.train_config, args.resume, args.warm_start)
        else:
            run_test(config.test_config)

    return _guarded(run)


def _guarded(fn: Callable[[], object]) -> int:
    try:
        fn()
    except ConfigError as exc:
        print(f"sparsemod: {exc}", file=sys.stderr)
        return 2
    except SparsemodError as exc:
        print(f"sparsemod: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def _search(cfg: TrainConfig, resume: int | None, warm_start: str | None = None) -> None:
    from sparsemod.problems import get_problem
    from sparsemod.search import Search
    from sparsemod.store import Store, default_url

    if resume is not None and warm_start is not None:
        raise ConfigError("--warm-start starts a new search; a resumed one has its trials")
    problem = get_problem(cfg.problem)
    cfg.eval_settings(cfg.epochs1)  # every value checked before the store file is created
    store = Store(default_url(cfg.root))
    search_id = None
    if resume is not None:
        found = store.get_search(resume) if resume >= 0 else store.find_search(cfg.name)
        if found is None:
            raise ConfigError(
                f"--resume: no search named {cfg.name!r} in {store.url}; "
                "run without --resume to start it"
            )
        # A config that changes what was measured is refused here, before anything runs.
        if found.status == "done" and not resume_changes(found.config, cfg):
            print(f"search {found.id} is already done; results are in {cfg.root}/{cfg.name}")
            return
        search_id = found.id
    Search(cfg, problem, store=store, search_id=search_id, warm_start=warm_start).run()


def _tools(args: argparse.Namespace) -> None:
    if args.tool == "boards":
        from sparsemod.core.boards import format_boards

        print(format_boards())
        return
    from sparsemod.problems import get_problem
    from sparsemod.results.export import export_search
    from sparsemod.search.record import lineage
    from sparsemod.store import Store, default_url, upgrade_database

    if args.tool in ("serve", "dashboard"):
        from sparsemod import serving

        if args.tool == "serve":
            serving.serve(args)
        else:
            serving.dashboard(args)
        return
    if args.tool == "deploy":
        _deploy(args)
        return
    if args.tool == "db":
        old, new = upgrade_database(args.database)
        print(f"{args.database}: schema {old or 'empty'} -> {new}")
        return
    store = Store(args.database or default_url(args.root))
    if args.search.isdigit():
        search = store.get_search(int(args.search))
    else:
        search = store.find_search(args.search)
        if search is None:
            raise ConfigError(f"no search named {args.search!r} in {store.url}")
    if args.tool == "lineage":
        print(lineage(store, search.id))
        return
    out = Path(args.out) if args.out else Path(args.root) / search.name
    export_search(store, search.id, out, get_problem(search.problem).space.names)
    print(f"exported search {search.id} ({search.name}) to {out}")


def _deploy(args: argparse.Namespace) -> None:
    """``sparsemod deploy``: export (or, with ``--check``, re-check) and print the table.

    Raises:
        ConfigError: bad input (unknown format or search, a trial without a model, a
            runtime that is not installed, an op the runtime cannot run): exit code 2.
        SparsemodError: the artifact's accuracy is off (exit code 1).
    """
    from sparsemod.deploy import deploy
    from sparsemod.deploy.base import DeployCheckError, DeployError

    try:
        result = deploy(
            args.search,
            trial=args.trial,
            format=args.format,
            out=args.out,
            c_array=args.c_array,
            root=args.root,
            database=args.database,
            reuse=args.check,
        )
    except DeployCheckError:
        raise
    except DeployError as exc:
        raise ConfigError(f"deploy: {exc}") from exc
    print(f"search {result.search}, trial {result.trial}, {result.format}:")
    print(result.table())
    for path in result.paths:
        print(f"wrote {path}")


def run_test(cfg: TestConfig) -> dict:
    """Retrain arm ``cfg.arm`` of the search ``<root>/<name>`` and score it on test.

    Writes ``<root>/<name>/test_trial_<arm>.json`` and returns what it wrote.

    Raises:
        ConfigError: the arm is not a trial of that search.
        DataError: the search's results cannot be read.
    """
    from sparsemod.evaluate import evaluate
    from sparsemod.problems import get_problem
    from sparsemod.results.reading import load_results

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
        **({"latency_model_s": r.latency_model_s} if r.latency_model_s is not None else {}),
        "epochs": cfg.epochs,
        "quant_scheme": cfg.quant_scheme,
    }
    path = results.path / f"test_trial_{cfg.arm}.json"
    path.write_text(json.dumps(out, indent=2, default=str))
    print(json.dumps(out, indent=2, default=str))
    return out
