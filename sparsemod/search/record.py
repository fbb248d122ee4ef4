"""Between the loop and the store: trials in, results out, exports from the store.

The store is the record of a search. Every trial is added when it is proposed and
completed in one transaction with its metrics, its history and, if it joins the Pareto
set, its deployed model (the models of trials that leave the set go in the same
transaction). A resumed search is rebuilt from these rows alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sparsemod import report
from sparsemod.evaluate import COMPLETED, ModelArtifact, TrialResult, load_model
from sparsemod.problems import Problem
from sparsemod.store import METRICS, Store, TrialRecord
from sparsemod.train import accuracy


def metrics_of(result: TrialResult) -> dict[str, float | None]:
    """The numeric fields of a result, by the store's metric names."""
    return {name: getattr(result, name, None) for name in METRICS}


def result_of(record: TrialRecord) -> TrialResult:
    """A finished trial read back from the store (without its model bytes)."""
    fields = {k: v for k, v in record.metrics.items() if k in METRICS}
    for name in ("model_size_bytes", "dense_size_bytes", "working_memory_bytes", "flops"):
        if fields.get(name) is not None:
            fields[name] = int(fields[name])
    return TrialResult(
        record.status,
        dict(record.params),
        record.seed,
        failure_reason=record.failure_reason,
        **fields,
    )


def model_payload(artifact: ModelArtifact, problem_name: str) -> tuple[str, bytes, dict]:
    """A deployed model as the store keeps it: format, bytes, what rebuilds it."""
    meta = {
        "params": dict(artifact.params),
        "input_shape": list(artifact.input_shape),
        "num_classes": artifact.num_classes,
        "quant_scheme": artifact.quant_scheme,
        "problem": problem_name,
    }
    return artifact.format, artifact.data, meta


def artifact_from_store(store: Store, trial_id: int) -> ModelArtifact:
    rec = store.get_model(trial_id)
    meta = rec.meta
    return ModelArtifact(
        rec.format,
        rec.data,
        meta["params"],
        tuple(meta["input_shape"]),
        int(meta["num_classes"]),
        meta["quant_scheme"],
    )


def score_test(store: Store, problem: Problem, trial_ids: Iterable[int], data: Any) -> None:
    """Score each Pareto model once on the test split; the result is stored with it."""
    for tid in trial_ids:
        if store.get_trial(tid).metrics.get("accuracy_test") is not None:
            continue
        model = load_model(artifact_from_store(store, tid), problem)
        acc = accuracy(model, data.test, collate_fn=data.collate_fn)
        store.record_metrics(tid, {"accuracy_test": acc})


def export_search(
    store: Store,
    search_id: int,
    directory: str | Path,
    param_names: Sequence[str],
    extra_summary: Mapping[str, Any] | None = None,
    wall_seconds: float | None = None,
) -> Path:
    """Write ``trials.csv``, ``pareto.csv``, ``summary.json``, ``models/`` … from the store.

    Returns:
        The directory written.
    """
    search = store.get_search(search_id)
    trials = store.list_trials(search_id)
    rows = []
    for t in trials:
        row = {
            "index": t.index,
            "phase": t.phase,
            "parent": t.parent_index,
            "status": t.status,
            "failure_reason": t.failure_reason,
            "params": t.params,
        }
        row.update(t.metrics)
        rows.append(row)
    objectives = list(search.objectives)
    frame = report.trials_frame(rows, list(param_names), objectives)
    pareto = set(frame.loc[frame["is_pareto"], "index"].astype(int))
    by_index = {t.index: t for t in trials}
    test_error = {
        i: 1.0 - by_index[i].metrics["accuracy_test"]
        for i in pareto
        if by_index[i].metrics.get("accuracy_test") is not None
    }
    with_model = set(store.model_trial_ids(search_id))
    models = {
        i: artifact_from_store(store, by_index[i].id)
        for i in pareto
        if by_index[i].id in with_model
    }
    done = frame[frame["status"] == COMPLETED]
    hv = (
        report.hypervolume(done[objectives].to_numpy(float), search.ref_point)
        if len(done) and search.ref_point
        else 0.0
    )
    summary = {
        "name": search.name,
        "search_id": search.id,
        "problem": search.problem,
        "status": search.status,
        "config": search.config,
        "objectives": objectives,
        "reference_point": search.ref_point,
        "hypervolume": hv,
        "trials": len(trials),
        "completed": int((frame["status"] == COMPLETED).sum()),
        "database": _safe_url(store.url),
        "morphs": {t.index: t.morph for t in trials if t.morph},
    }
    summary.update(extra_summary or {})
    if wall_seconds is None:
        wall_seconds = (search.updated_at - search.created_at).total_seconds()
    report.write_results(
        directory,
        frame,
        pareto_test_error=test_error,
        summary=summary,
        models=models,
        problem_name=search.problem,
        objectives=objectives,
        wall_seconds=wall_seconds,
    )
    return Path(directory)


def lineage(store: Store, search_id: int) -> str:
    """The trials as a text tree: each morph child under its parent, with its numbers."""
    trials = store.list_trials(search_id)
    children: dict[int | None, list[TrialRecord]] = {}
    for t in trials:
        children.setdefault(t.parent_index, []).append(t)
    lines: list[str] = []

    def walk(node: TrialRecord, depth: int) -> None:
        m = node.metrics
        numbers = (
            f"error {m['error']:.4f}, size {int(m['model_size_bytes'])} B"
            if node.status == COMPLETED and m.get("error") is not None
            else node.status
        )
        how = f" [{node.morph}]" if node.morph else ""
        stages = [h["stage"] for h in store.history(node.id)]
        lines.append(
            f"{'    ' * depth}trial {node.index} ({node.phase}){how}: {numbers}"
            + (f"  <{' > '.join(stages)}>" if stages else "")
        )
        for child in children.get(node.index, []):
            walk(child, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    return "\n".join(lines)


def _safe_url(url: str) -> str:
    # Never write a password into a file.
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
