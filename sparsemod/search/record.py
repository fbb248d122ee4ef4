"""Between the loop and the store: trials in, results out (files: sparsemod.results.export).

The store is the record of a search. Every trial is added when it is proposed and
completed in one transaction with its metrics, its history and, if it joins the Pareto
set, its deployed model (the models of trials that leave the set go in the same
transaction). A resumed search is rebuilt from these rows alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from sparsemod.errors import ConfigError
from sparsemod.evaluate import COMPLETED, ModelArtifact, TrialResult, load_model
from sparsemod.problems import Problem
from sparsemod.results.artifact import artifact_metadata
from sparsemod.results.export import artifact_from_store
from sparsemod.results.export import export_search as export_search  # the loop calls it here
from sparsemod.results.pareto import pareto_mask
from sparsemod.store import METRICS, Store, TrialRecord
from sparsemod.train import accuracy


def metrics_of(result: TrialResult) -> dict[str, float | None]:
    """The numeric fields of a result, by the store's metric names."""
    return {name: getattr(result, name, None) for name in METRICS}


def result_of(record: TrialRecord) -> TrialResult:
    """A finished trial read back from the store (without its model bytes)."""
    fields = {k: v for k, v in record.metrics.items() if k in METRICS}
    for name in (
        "model_size_bytes",
        "dense_size_bytes",
        "working_memory_bytes",
        "flops",
        "stop_epoch",
    ):
        if fields.get(name) is not None:
            fields[name] = int(fields[name])
    return TrialResult(
        record.status,
        dict(record.params),
        record.seed,
        failure_reason=record.failure_reason,
        **fields,
    )


def stored_front(store: Store, name: str) -> list[dict[str, Any]]:
    """The parameters of the Pareto set of the search called ``name`` (its newest), over
    that search's own objectives: what ``--warm-start`` enqueues.

    Raises:
        ConfigError: there is no search of that name in the store.
    """
    found = store.find_search(name)
    if found is None:
        raise ConfigError(f"--warm-start: no search named {name!r} in {store.url}")
    done = [t for t in store.list_trials(found.id) if t.status == COMPLETED]
    values = np.array(
        [[t.metrics.get(o, np.nan) for o in found.objectives] for t in done], dtype=float
    ).reshape(len(done), len(found.objectives))
    return [dict(t.params) for t, on in zip(done, pareto_mask(values)) if on]


def model_payload(artifact: ModelArtifact, problem_name: str) -> tuple[str, bytes, dict]:
    """A deployed model as the store keeps it: format, bytes, what rebuilds it."""
    return artifact.format, artifact.data, artifact_metadata(artifact, problem_name)


def score_test(store: Store, problem: Problem, trial_ids: Iterable[int], data: Any) -> None:
    """Score each Pareto model once on the test split; the result is stored with it."""
    for tid in trial_ids:
        if store.get_trial(tid).metrics.get("accuracy_test") is not None:
            continue
        model = load_model(artifact_from_store(store, tid), problem)
        acc = accuracy(model, data.test, collate_fn=data.collate_fn)
        store.record_metrics(tid, {"accuracy_test": acc})


def check_deployed(
    store: Store, trials: Iterable[TrialRecord], format: str, say: Callable[[str], None]
) -> dict[str, Any]:
    """Export each Pareto model to ``format``, check it in the runtime on the test split,
    and store the runtime's figures with the trial (``deploy_check``).

    A model the runtime cannot take (an op it lacks, an accuracy off by more than 0.5
    points) is reported, not fatal: the search's results stand.

    Returns:
        What ``summary.json`` keeps under ``deploy_check``: the format and, by trial index,
        the runtime's figures or the reason the check failed.
    """
    from sparsemod.deploy.api import TOLERANCE, check_stored
    from sparsemod.deploy.base import DeployError

    out: dict[str, Any] = {"format": format, "trials": {}}
    for trial in trials:
        try:
            report = check_stored(store, trial.id, format)
        except DeployError as exc:
            out["trials"][trial.index] = {"failed": str(exc)}
            say(f"[deploy {format}] trial {trial.index}: {exc}")
            continue
        figures = {
            "runtime_accuracy_test": report.accuracy,
            "runtime_model_bytes": report.artifact_bytes,
            "runtime_memory_bytes": report.memory_bytes,
            "runtime_activation_bytes": report.memory_split.get("activations"),
            "runtime_persistent_bytes": report.memory_split.get("persistent"),
        }
        store.record_metrics(trial.id, figures)
        stored = trial.metrics.get("accuracy_test")
        off = stored is not None and abs(report.accuracy - stored) > TOLERANCE + 1e-12
        out["trials"][trial.index] = {**figures, "memory_split": dict(report.memory_split)}
        if off:
            out["trials"][trial.index]["failed"] = (
                f"the artifact's test accuracy {report.accuracy:.4f} is more than 0.5 points "
                f"from the stored {stored:.4f}"
            )
        say(
            f"[deploy {format}] trial {trial.index}: accuracy {report.accuracy:.4f} "
            f"(stored {stored if stored is None else f'{stored:.4f}'}), "
            f"{report.artifact_bytes} B, working memory {report.memory_bytes} B"
            + (" -- OFF by more than 0.5 points" if off else "")
        )
    return out


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
