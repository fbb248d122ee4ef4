"""``deploy``: export a stored Pareto model to a runtime, check it there, write the files.

The trial's float network and data come from :mod:`sparsemod.deploy.source`; the runtime
from the registry in :mod:`sparsemod.deploy`. The check runs the test split through the
artifact in the runtime and compares the runtime's figures with sparsemod's objectives:

========================  ===============================  ============================
figure                    sparsemod's objective            the runtime's figure
========================  ===============================  ============================
accuracy                  the trial's stored test accuracy the artifact's test accuracy
model size                ``model_size_bytes``             the artifact's bytes
working memory            ``working_memory_bytes``         the arena / planned memory
========================  ===============================  ============================

An accuracy more than 0.5 points from the stored one is an error, and nothing is written.
Files go to ``<out>/trial_<index>.<suffix>``, ``trial_<index>.<format>.json`` (the specs,
the report and the table) and, with ``c_array``, ``trial_<index>_<format>.h`` / ``.c``;
each is written to a temporary name and renamed.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sparsemod.deploy.base import (
    Artifact,
    DeployCheckError,
    DeployError,
    RuntimeReport,
    TensorSpec,
    write_atomic,
)
from sparsemod.errors import ConfigError, DataError

TOLERANCE = 0.005  # accuracy: 0.5 percentage points


@dataclass(frozen=True)
class DeployResult:
    """What :func:`deploy` did.

    Attributes:
        search: the search's name.
        trial: the trial's index in its search.
        format: the runtime's name.
        artifact: the exported artifact.
        report: the runtime's report (``None`` when not checked).
        rows: the comparison, one dict per figure (``figure``, ``sparsemod``, ``runtime``).
        paths: the files written.
    """

    search: str
    trial: int
    format: str
    artifact: Artifact
    report: RuntimeReport | None
    rows: tuple[dict[str, Any], ...]
    paths: tuple[Path, ...]

    def table(self) -> str:
        """The comparison as a text table."""
        head = ("figure", "sparsemod's objective", f"{self.format} (the runtime's figure)")
        lines = [(r["figure"], _text(r["sparsemod"]), _text(r["runtime"])) for r in self.rows]
        widths = [max(len(x[i]) for x in [head, *lines]) for i in range(3)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        rows = [head, tuple("-" * w for w in widths), *lines]
        return "\n".join(fmt.format(*x).rstrip() for x in rows)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _open_search(name_or_search: str | int, root: str | Path, database: str | None):
    from sparsemod.store import Store, default_url

    store = Store(database or default_url(root))
    text = str(name_or_search)
    search = store.get_search(int(text)) if text.isdigit() else store.find_search(text)
    if search is None:
        store.close()
        raise DeployError(f"no search named {text!r} in {store.url}")
    return store, search


def pareto_members(store: Any, search_id: int) -> list[Any]:
    """The search's trials that keep a model (the Pareto members), by index."""
    return sorted((t for t in store.list_trials(search_id) if t.has_model), key=lambda t: t.index)


def _accuracy(trial: Any) -> float | None:
    return trial.metrics.get("accuracy_test", trial.metrics.get("accuracy_val"))


def choose_trial(members: list[Any], trial: int | None, search: str) -> Any:
    """The Pareto member of index ``trial``, or the most accurate one when None.

    Raises:
        DeployError: no member, or ``trial`` is not one (the message names the members).
    """
    if not members:
        raise DeployError(f"search {search!r} has no trial with a stored model")
    if trial is None:
        return max(members, key=lambda t: (_accuracy(t) or 0.0, -t.index))
    for t in members:
        if t.index == trial:
            return t
    names = ", ".join(str(t.index) for t in members)
    raise DeployError(
        f"trial {trial} of search {search!r} has no model: only Pareto members keep one "
        f"(trials {names})"
    )


def comparison(trial: Any, artifact: Artifact, report: RuntimeReport | None) -> list[dict]:
    """The rows of the comparison table (see the module docstring)."""
    m = trial.metrics
    memory: Any = None if report is None else report.memory_bytes
    if report is not None and report.memory_split:
        parts = ", ".join(f"{k} {v}" for k, v in report.memory_split.items())
        memory = f"{report.memory_bytes} ({parts})"
    return [
        {
            "figure": "accuracy",
            "sparsemod": m.get("accuracy_test"),
            "runtime": None if report is None else report.accuracy,
        },
        {
            "figure": "model size (bytes)",
            "sparsemod": _int(m.get("model_size_bytes")),
            "runtime": artifact.size_bytes,
        },
        {
            "figure": "working memory (bytes)",
            "sparsemod": _int(m.get("working_memory_bytes")),
            "runtime": memory,
        },
    ]


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _check_accuracy(trial: Any, report: RuntimeReport, fmt: str) -> None:
    stored = trial.metrics.get("accuracy_test")
    if stored is None:
        return
    if abs(report.accuracy - stored) > TOLERANCE + 1e-12:
        raise DeployCheckError(
            f"{fmt}: the artifact's test accuracy {report.accuracy:.4f} is more than 0.5 points "
            f"from trial {trial.index}'s stored test accuracy {stored:.4f}"
        )


def _read_existing(out: Path, base: str, runtime: Any) -> Artifact:
    data_path, meta_path = out / f"{base}{runtime.suffix}", out / f"{base}.{runtime.name}.json"
    try:
        meta = json.loads(meta_path.read_text())
        data = data_path.read_bytes()
        inputs = tuple(TensorSpec(**{**s, "shape": tuple(s["shape"])}) for s in meta["inputs"])
        outputs = tuple(TensorSpec(**{**s, "shape": tuple(s["shape"])}) for s in meta["outputs"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DeployError(
            f"--check: no readable {runtime.name} artifact {data_path} with {meta_path.name} "
            f"({type(exc).__name__}); export it first"
        ) from exc
    return Artifact(runtime.name, runtime.suffix, data, inputs, outputs, meta.get("meta", {}))


# What reading back a stored model that is not a whole one raises: missing metadata keys,
# bytes torch cannot load (RuntimeError, EOFError, unpickling, zip), an unknown problem.
_UNREADABLE = (
    DataError,
    ConfigError,
    KeyError,
    ValueError,
    RuntimeError,
    EOFError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
)


def _problem_spec(search: Any) -> str:
    # The config's ``problem`` is what get_problem resolves (a ``module:function`` problem
    # may call itself something else); searches without one stored their problem's name.
    return str(search.config.get("problem") or search.problem)


def check_stored(store: Any, trial_id: int, format: str) -> RuntimeReport:
    """Export the stored model of trial ``trial_id`` to ``format`` and check it in the
    runtime on the search's test split (what the end of a search does with
    ``deploy_check``); writes nothing.

    Raises:
        DeployError: as :func:`export_stored`, or the runtime cannot run the artifact.
    """
    from sparsemod.deploy import get_runtime

    artifact, source = _export_stored(store, trial_id, format)
    return get_runtime(format).check(artifact, source.test)


def export_stored(store: Any, trial_id: int, format: str) -> Artifact:
    """Export the stored model of trial ``trial_id`` to ``format``, without checking it.

    The service's ``GET /trials/{id}/model?format=`` calls this; it writes nothing.

    Raises:
        DeployError: an unknown format, a runtime that is not installed
            (:class:`~sparsemod.deploy.base.RuntimeMissing`), or a network the runtime
            cannot run.
        DataError: the trial has no stored model.
    """
    return _export_stored(store, trial_id, format)[0]


def _export_stored(store: Any, trial_id: int, format: str) -> tuple[Artifact, Any]:
    from sparsemod.deploy import get_runtime
    from sparsemod.deploy.source import trial_source
    from sparsemod.problems import get_problem
    from sparsemod.results.export import artifact_from_store

    runtime = get_runtime(format)
    search = store.get_search(store.get_trial(trial_id).search_id)
    try:
        stored = artifact_from_store(store, trial_id)
        source = trial_source(get_problem(_problem_spec(search)), stored, search.config)
    except _UNREADABLE as exc:  # bad stored bytes or metadata; a bug (TypeError, ...) propagates
        raise DeployError(
            f"trial {trial_id}'s stored model cannot be rebuilt for export "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    return export_source(runtime, source), source


def export_source(runtime: Any, source: Any) -> Artifact:
    """``runtime``'s artifact of a trial's :class:`~sparsemod.deploy.source.Source`; under
    ``compression = lut`` a ``tflite`` one has the weights the search counted compressed."""
    artifact = runtime.export(source.model, source.example, source.calibration)
    if source.lut_bits and runtime.name == "tflite":
        from sparsemod.deploy.tflite_lut import compress_lut

        artifact = compress_lut(artifact, source.lut_bits)
    return artifact


def deploy(
    name_or_search: str | int,
    trial: int | None = None,
    format: str = "tflite",
    out: str | Path | None = None,
    c_array: bool = False,
    check: bool = True,
    root: str | Path = "results",
    database: str | None = None,
    reuse: bool = False,
) -> DeployResult:
    """Export a stored Pareto model to a runtime, check it there and write the files.

    Args:
        name_or_search: the search's name or id.
        trial: the trial's index in the search (default: the most accurate Pareto member).
        format: ``tflite``, ``executorch`` or ``onnx``.
        out: the folder to write to (default ``<root>/<search name>/deploy``).
        c_array: also write the ``.h`` / ``.c`` pair.
        check: run the test split through the artifact in the runtime.
        root: the results folder whose ``sparsemod.db`` is the store.
        database: a SQLAlchemy URL of the store instead.
        reuse: check the artifact already in ``out`` instead of exporting again (writes
            nothing).

    Returns:
        The :class:`DeployResult`.

    Raises:
        DeployError: an unknown format, a search or trial without a model, a runtime that
            is not installed, an op the runtime cannot run, an accuracy off by more than
            0.5 points (nothing is written then).
    """
    from sparsemod.deploy import get_runtime
    from sparsemod.deploy.c_array import c_name, c_source

    runtime = get_runtime(format)
    store, search = _open_search(name_or_search, root, database)
    try:
        chosen = choose_trial(pareto_members(store, search.id), trial, search.name)
        folder = Path(out) if out is not None else Path(root) / search.name / "deploy"
        base = f"trial_{chosen.index}"
        from sparsemod.deploy.source import trial_source
        from sparsemod.problems import get_problem
        from sparsemod.results.export import artifact_from_store

        problem = get_problem(_problem_spec(search))
        source = trial_source(problem, artifact_from_store(store, chosen.id), search.config)
    finally:
        store.close()
    if reuse:
        artifact = _read_existing(folder, base, runtime)
    else:
        artifact = export_source(runtime, source)
    report = runtime.check(artifact, source.test) if check or reuse else None
    if report is not None:
        _check_accuracy(chosen, report, format)
    rows = tuple(comparison(chosen, artifact, report))
    paths: list[Path] = []
    if not reuse:
        files = {f"{base}{runtime.suffix}": artifact.data}
        sidecar = {
            "search": search.name,
            "trial": chosen.index,
            "format": runtime.name,
            "recovered": source.how,
            "inputs": [asdict(s) for s in artifact.inputs],
            "outputs": [asdict(s) for s in artifact.outputs],
            "meta": dict(artifact.meta),
            "report": None if report is None else asdict(report),
            "comparison": list(rows),
        }
        files[f"{base}.{runtime.name}.json"] = json.dumps(sidecar, indent=2).encode()
        if c_array:
            ident = c_name(f"{base}_{runtime.name}")
            arena = None if report is None else report.memory_bytes
            header, body = c_source(artifact, ident, arena)
            files[f"{ident}.h"], files[f"{ident}.c"] = header.encode(), body.encode()
        folder.mkdir(parents=True, exist_ok=True)
        paths = [write_atomic(folder / n, data) for n, data in files.items()]
    return DeployResult(
        search.name, chosen.index, runtime.name, artifact, report, rows, tuple(paths)
    )
