"""Pareto sets, hypervolume, and the result files of a search.

A finished search leaves a folder ``<root>/<name>/`` that can be read without Ax or a
database: ``trials.csv`` (one row per trial), ``pareto.csv`` (the non-dominated completed
trials with their test error), ``summary.json``, ``time.txt``, ``pareto.png`` and, for the
Pareto members only, ``models/trial_<index>.pt`` or ``.pt2`` with a JSON sidecar that says how
to rebuild the network. :func:`load_results` reads it back.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import sparsemod
from sparsemod.errors import ConfigError, DataError
from sparsemod.evaluate import ModelArtifact
from sparsemod.evaluate import load_model as _load_artifact
from sparsemod.problems import get_problem

OBJECTIVES = ("error", "model_size_bytes", "working_memory_bytes", "latency_s")
"""Every objective a search can minimise; a search uses the first ``n``."""

_ID_COLUMNS = ("index", "phase", "parent", "status", "failure_reason")
_METRIC_COLUMNS = (
    "error",
    "model_size_bytes",
    "working_memory_bytes",
    "flops",
    "latency_s",
    "accuracy_val",
    "train_seconds",
)
_MODEL_SUFFIX = {"exported": ".pt2", "state_dict": ".pt"}
_MODEL_FILE = re.compile(r"^trial_(\d+)\.(pt2|pt|json)$")


# --------------------------------------------------------------------------- Pareto, HV


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Which rows no other row dominates (all objectives minimised).

    Row ``a`` dominates row ``b`` when ``a <= b`` in every objective and ``a < b`` in one.
    Exact duplicates of a non-dominated row are all kept; a row with a NaN is never Pareto.

    Args:
        values: shape ``(n, m)``.

    Returns:
        A boolean array of shape ``(n,)``.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return np.zeros(len(values), dtype=bool)
    if values.ndim == 1:
        values = values[:, None]
    valid = ~np.isnan(values).any(axis=1)
    pts = values[valid]
    keep = np.ones(len(pts), dtype=bool)
    # One row at a time keeps memory at O(n m) where broadcasting all pairs is O(n^2 m).
    for i, row in enumerate(pts):
        dominators = (pts <= row).all(axis=1) & (pts < row).any(axis=1)
        keep[i] = not dominators.any()
    mask = np.zeros(len(values), dtype=bool)
    mask[valid] = keep
    return mask


def _check_ref(ref_point: Sequence[float], m: int | None) -> np.ndarray:
    ref = np.asarray(ref_point, dtype=float).reshape(-1)
    if m is not None and len(ref) != m:
        raise ConfigError(f"ref_point: {list(ref_point)!r} has {len(ref)} values, expected {m}")
    if len(ref) == 0 or not np.all(np.isfinite(ref)) or np.any(ref <= 0):
        raise ConfigError(
            f"ref_point: {list(ref_point)!r} must be finite values > 0, one per objective"
        )
    return ref


def _as_matrix(values: np.ndarray, m: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return values.reshape(0, m)
    if values.ndim == 1 and m == 1:
        return values[:, None]
    if values.ndim != 2 or values.shape[1] != m:
        raise ConfigError(
            f"ref_point: has {m} values but the values have shape {values.shape} "
            "(one reference value per objective)"
        )
    return values


def _inside(norm: np.ndarray) -> np.ndarray:
    """Rows with no NaN that strictly dominate the normalised reference (all ones)."""
    return np.isfinite(norm).all(axis=1) & (norm < 1.0).all(axis=1)


def hypervolume(values: np.ndarray, ref_point: Sequence[float]) -> float:
    """The hypervolume dominated by ``values`` and bounded by ``ref_point``.

    Each objective is divided by its reference value first, so the reference becomes the
    all-ones point and (for non-negative objectives) the result lies in ``[0, 1]``: a share of
    the box between the origin and the reference, comparable across objectives of very
    different units (bytes against seconds).

    Args:
        values: shape ``(n, m)``, all minimised. Rows with a NaN, and rows that do not strictly
            dominate the reference, are ignored.
        ref_point: ``m`` values > 0.

    Returns:
        The normalised hypervolume, 0.0 when no row is left.

    Raises:
        ConfigError: ``ref_point`` has the wrong length or a value <= 0.
    """
    ref = _check_ref(ref_point, None)
    norm = _as_matrix(values, len(ref)) / ref
    norm = norm[_inside(norm)]
    if len(norm) == 0:
        return 0.0
    if norm.shape[1] == 1:
        return max(0.0, 1.0 - float(norm.min()))
    # Lazy: BoTorch takes a second or two to import and most callers only write files.
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    front = np.unique(norm[pareto_mask(norm)], axis=0)
    # BoTorch maximises, hence the negation of both the points and the reference.
    hv = Hypervolume(ref_point=-torch.ones(norm.shape[1], dtype=torch.double))
    return float(hv.compute(-torch.as_tensor(front, dtype=torch.double)))


def hypervolume_trace(values: np.ndarray, ref_point: Sequence[float]) -> list[float]:
    """The hypervolume of each prefix ``values[:i + 1]``, for progress plots.

    Args:
        values: shape ``(n, m)``, in trial order.
        ref_point: as for :func:`hypervolume`.

    Returns:
        ``n`` non-decreasing values.
    """
    ref = _check_ref(ref_point, None)
    values = _as_matrix(values, len(ref))
    norm = values / ref
    inside = _inside(norm)
    trace: list[float] = []
    current = 0.0
    for i in range(len(values)):
        row = norm[i]
        seen = norm[:i][inside[:i]]
        # A row outside the reference, or weakly dominated by an earlier one, adds nothing;
        # skipping it saves an exact HV computation per trial.
        if inside[i] and not (seen <= row).all(axis=1).any():
            current = hypervolume(values[: i + 1], ref)
        trace.append(current)
    return trace


# --------------------------------------------------------------------------- trials


def trials_frame(
    rows: Sequence[Mapping[str, Any]],
    param_names: Sequence[str],
    objectives: Sequence[str],
) -> pd.DataFrame:
    """One row per trial, in a fixed column order, with ``is_pareto`` filled in.

    Args:
        rows: one mapping per trial with keys among the columns below; a parameter is read
            from ``row[name]`` or else from ``row["params"][name]``. Missing keys become NaN
            (numbers) or None.
        param_names: the search space's parameter names, in column order.
        objectives: the objectives the search minimised (names in :data:`OBJECTIVES`).

    Returns:
        Columns ``index, phase, parent, status, failure_reason``, the parameters, then
        ``error, model_size_bytes, working_memory_bytes, flops, latency_s, accuracy_val,
        train_seconds, is_pareto``. ``is_pareto`` is computed among ``completed`` trials only.

    Raises:
        ConfigError: an objective is unknown, or a parameter name clashes with a column.
    """
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown or not objectives:
        raise ConfigError(
            f"objectives: {list(objectives)!r} must be a non-empty subset of {OBJECTIVES}"
        )
    clash = sorted(set(param_names) & set(_ID_COLUMNS + _METRIC_COLUMNS + ("is_pareto",)))
    if clash:
        raise ConfigError(f"parameter name(s) {clash} clash with result columns")
    records = []
    for row in rows:
        params = row.get("params") or {}
        rec: dict[str, Any] = {c: row.get(c) for c in _ID_COLUMNS}
        for name in param_names:
            rec[name] = row[name] if name in row else params.get(name)
        for c in _METRIC_COLUMNS:
            value = row.get(c)
            rec[c] = np.nan if value is None else value
        records.append(rec)
    columns = [*_ID_COLUMNS, *param_names, *_METRIC_COLUMNS]
    frame = pd.DataFrame.from_records(records, columns=columns)
    for c in _METRIC_COLUMNS:
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    # Trials without a parent would turn the column into floats (3.0); keep it integral.
    frame["parent"] = pd.array(
        [
            None if p is None or (isinstance(p, float) and np.isnan(p)) else int(p)
            for p in frame["parent"]
        ],
        dtype="Int64",
    )
    completed = (frame["status"] == "completed").to_numpy(dtype=bool)
    mask = np.zeros(len(frame), dtype=bool)
    if completed.any():
        mask[completed] = pareto_mask(frame.loc[completed, list(objectives)].to_numpy(float))
    frame["is_pareto"] = mask
    return frame


# --------------------------------------------------------------------------- files


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` so that readers see the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(obj: Any) -> Any:
    # The summary must stay small: bytes and big arrays are described, never dumped.
    if isinstance(obj, bytes | bytearray):
        return f"<{len(obj)} bytes>"
    if isinstance(obj, np.ndarray | torch.Tensor):
        small = (obj.size if isinstance(obj, np.ndarray) else obj.numel()) <= 64
        return obj.tolist() if small else f"<array of shape {tuple(obj.shape)}>"
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def _dumps(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, default=_json_default) + "\n").encode()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _versions() -> dict[str, str | None]:
    import botorch  # lazily, see hypervolume()

    return {
        "sparsemod": sparsemod.__version__,
        "torch": torch.__version__,
        # Read from the metadata only: importing Ax here would cost seconds and is not needed.
        "ax": _version("ax-platform"),
        "botorch": getattr(botorch, "__version__", None) or _version("botorch"),
    }


def write_results(
    directory: str | os.PathLike,
    trials: pd.DataFrame,
    *,
    pareto_test_error: Mapping[int, float],
    summary: Mapping[str, Any],
    models: Mapping[int, ModelArtifact],
    problem_name: str,
    objectives: Sequence[str],
    wall_seconds: float,
) -> None:
    """Write the result files of a search into ``directory`` (created if needed).

    Every file is written atomically. Model files in ``models/`` for indices not in
    ``models`` are removed, so the folder always matches the current Pareto set.

    Args:
        directory: ``<root>/<name>``.
        trials: :func:`trials_frame`'s frame.
        pareto_test_error: test error by trial index (Pareto members; others are NaN).
        summary: search settings and totals to store; ``pareto_indices``, ``versions`` and
            ``wall_seconds`` are added (``problem_name`` and ``objectives`` when absent).
        models: the deployed models to keep, by trial index (the Pareto members).
        problem_name: the problem's name, so that :meth:`Results.load_model` can rebuild.
        objectives: the objectives of the search.
        wall_seconds: the search's wall-clock time.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / "trials.csv", trials.to_csv(index=False).encode())

    if "is_pareto" in trials.columns:
        pareto = trials[trials["is_pareto"].astype(bool)].copy()
    else:
        pareto = trials.iloc[0:0].copy()
    pareto["test_error"] = [float(pareto_test_error.get(int(i), math.nan)) for i in pareto["index"]]
    _atomic_write(out / "pareto.csv", pareto.to_csv(index=False).encode())

    full = dict(summary)
    full.setdefault("problem_name", problem_name)
    full.setdefault("objectives", list(objectives))
    full["pareto_indices"] = [int(i) for i in pareto["index"]]
    full["versions"] = _versions()
    full["wall_seconds"] = float(wall_seconds)
    _atomic_write(out / "summary.json", _dumps(full))
    _atomic_write(out / "time.txt", f"wall_seconds: {float(wall_seconds):.1f}\n".encode())

    _write_models(out / "models", models, problem_name)
    _plot(out / "pareto.png", trials, summary.get("name"))


def _write_models(folder: Path, models: Mapping[int, ModelArtifact], problem_name: str) -> None:
    folder.mkdir(exist_ok=True)
    wanted: set[str] = set()
    for index, art in models.items():
        if art.format not in _MODEL_SUFFIX:
            raise ConfigError(f"model format {art.format!r} is not one of {list(_MODEL_SUFFIX)}")
        stem = f"trial_{int(index)}"
        data_name = stem + _MODEL_SUFFIX[art.format]
        meta = {
            "index": int(index),
            "format": art.format,
            "file": data_name,
            "params": dict(art.params),
            "input_shape": list(art.input_shape),
            "num_classes": int(art.num_classes),
            "quant_scheme": art.quant_scheme,
            "problem_name": problem_name,
        }
        # Bytes first, then the sidecar: a sidecar only ever points at a complete file.
        _atomic_write(folder / data_name, bytes(art.data))
        _atomic_write(folder / f"{stem}.json", _dumps(meta))
        wanted.update({data_name, f"{stem}.json"})
    for path in folder.iterdir():
        if _MODEL_FILE.match(path.name) and path.name not in wanted:
            path.unlink(missing_ok=True)


def _plot(path: Path, trials: pd.DataFrame, name: Any) -> None:
    """Error against model size, coloured by working memory; skipped when there is no data."""
    needed = {"error", "model_size_bytes", "status"}
    if not needed <= set(trials.columns):
        return
    done = trials[trials["status"] == "completed"]
    size = pd.to_numeric(done["model_size_bytes"], errors="coerce").to_numpy(float)
    err = pd.to_numeric(done["error"], errors="coerce").to_numpy(float)
    ok = np.isfinite(size) & np.isfinite(err) & (size > 0)  # log axis: sizes must be > 0
    if not ok.any():
        return
    done, size, err = done[ok], size[ok], err[ok]
    is_pareto = (
        done["is_pareto"].astype(bool).to_numpy()
        if "is_pareto" in done
        else np.zeros(len(done), bool)
    )

    # Figure + Agg canvas, not pyplot: no global backend switch, no figure left open.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    mem = (
        pd.to_numeric(done["working_memory_bytes"], errors="coerce").to_numpy(float)
        if "working_memory_bytes" in done
        else np.full(len(done), np.nan)
    )
    if np.isfinite(mem).any():
        sc = ax.scatter(size, err, c=mem, cmap="viridis", s=28, alpha=0.85, label="trials")
        fig.colorbar(sc, ax=ax, label="working memory (bytes)")
    else:
        ax.scatter(size, err, color="tab:blue", s=28, alpha=0.85, label="trials")
    if is_pareto.any():
        ax.scatter(
            size[is_pareto],
            err[is_pareto],
            s=90,
            facecolors="none",
            edgecolors="tab:red",
            linewidths=1.6,
            label="Pareto set",
        )
    # The step line is the error/size trade-off itself: the 2-D front of what is plotted, which
    # differs from the highlighted set when more than these two objectives were searched.
    front = pareto_mask(np.column_stack([size, err]))
    order = np.argsort(size[front])
    ax.step(size[front][order], err[front][order], where="post", color="tab:red", lw=1.2)
    ax.set_xscale("log")
    ax.set_xlabel("model size (bytes)")
    ax.set_ylabel("validation error")
    ax.set_title(f"Pareto front: {name}" if name else "Pareto front")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    _atomic_write(path, buf.getvalue())


# --------------------------------------------------------------------------- reading


@dataclass
class Results:
    """The result files of one search, read back.

    Attributes:
        path: the search folder.
        trials: ``trials.csv``.
        pareto: ``pareto.csv`` (with ``test_error``).
        summary: ``summary.json``.
    """

    path: Path
    trials: pd.DataFrame
    pareto: pd.DataFrame
    summary: dict

    def model_indices(self) -> list[int]:
        """Trial indices whose deployed model was kept."""
        folder = self.path / "models"
        if not folder.is_dir():
            return []
        return sorted(int(p.stem.split("_")[1]) for p in folder.glob("trial_*.json"))

    def load_model(self, index: int) -> torch.nn.Module:
        """The deployed model of trial ``index``, in eval mode on the CPU.

        Raises:
            ConfigError: no model was kept for that trial (only Pareto members have one).
            DataError: the model files are damaged or incomplete.
        """
        meta_path = self.path / "models" / f"trial_{int(index)}.json"
        if not meta_path.is_file():
            raise ConfigError(
                f"trial {index}: no model was kept (only Pareto members have one); "
                f"models exist for trials {self.model_indices()}"
            )
        try:
            meta = json.loads(meta_path.read_text())
            fmt = meta["format"]
            data_path = (
                self.path
                / "models"
                / meta.get("file", f"trial_{int(index)}{_MODEL_SUFFIX.get(fmt, '')}")
            )
            artifact = ModelArtifact(
                fmt,
                data_path.read_bytes(),
                meta["params"],
                tuple(meta["input_shape"]),
                int(meta["num_classes"]),
                meta["quant_scheme"],
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{meta_path}: cannot read the model of trial {index} ({exc})") from exc
        problem_name = meta.get("problem_name") or self.summary.get("problem_name")
        if not problem_name:
            raise DataError(f"{meta_path}: the model does not name its problem")
        return _load_artifact(artifact, get_problem(problem_name))


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: missing; not a sparsemod results folder?")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from exc


def load_results(path: str | os.PathLike, name: str | None = None) -> Results:
    """Read a search: its exported files, or the store itself.

    Args:
        path: the search folder ``<root>/<name>`` or its ``summary.json``; or a store: a
            ``.db`` file or a SQLAlchemy URL, with ``name`` the search (the newest search
            when omitted), which is exported to ``<db folder>/<name>`` first.
        name: the search to read from a store.

    Raises:
        DataError: the folder or one of its files is missing or unreadable, or the store
            has no such search.
    """
    text = str(path)
    if "://" in text or text.endswith(".db"):
        return _load_from_store(text, name)
    given = Path(path)
    folder = given.parent if given.name == "summary.json" else given
    if not folder.is_dir():
        raise DataError(f"{given}: no such results folder")
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        raise DataError(f"{summary_path}: missing; not a sparsemod results folder?")
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{summary_path}: not readable JSON ({exc})") from exc
    if not isinstance(summary, dict):
        raise DataError(f"{summary_path}: expected a JSON object")
    trials = _read_csv(folder / "trials.csv")
    pareto = _read_csv(folder / "pareto.csv")
    return Results(folder, trials, pareto, summary)


def _load_from_store(location: str, name: str | None) -> Results:
    from sparsemod.problems import get_problem
    from sparsemod.search.record import export_search
    from sparsemod.store import Store

    if "://" not in location:
        if not Path(location).is_file():
            raise DataError(f"{location}: no such store file")
        location = f"sqlite:///{Path(location).resolve()}"
    store = Store(location)
    try:
        if name is not None:
            search = store.find_search(name)
        else:
            newest = store.list_searches(limit=1)
            search = newest[0] if newest else None
        if search is None:
            raise DataError(f"{location}: no search {'named ' + repr(name) if name else ''}")
        folder = (
            Path(location.removeprefix("sqlite:///")).parent / search.name
            if location.startswith("sqlite:///")
            else Path(search.config.get("root", ".")) / search.name
        )
        export_search(store, search.id, folder, get_problem(search.problem).space.names)
    finally:
        store.close()
    return load_results(folder)
