"""The result files of a search, written atomically into ``<root>/<name>/``.

``trials.csv`` (one row per trial), ``pareto.csv`` (the non-dominated completed trials with
their test error), ``summary.json``, ``time.txt``, ``pareto.png`` and, for the Pareto
members only, ``models/trial_<index>.pt`` or ``.pt2`` with a JSON sidecar that says how to
rebuild the network (:mod:`sparsemod.results.artifact`). They can be read without Ax or a
database: :func:`sparsemod.results.reading.load_results`.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import sparsemod
from sparsemod.errors import ConfigError
from sparsemod.results.artifact import artifact_metadata
from sparsemod.results.plots import pareto_png

if TYPE_CHECKING:
    from sparsemod.evaluate import ModelArtifact

MODEL_SUFFIX = {"exported": ".pt2", "state_dict": ".pt", "rnn_int8": ".pt"}
"""The model file's suffix by :attr:`ModelArtifact.format`."""
_MODEL_FILE = re.compile(r"^trial_(\d+)\.(pt2|pt|json)$")


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
    # No tensor can exist before torch is imported, and writing files should not import it.
    torch = sys.modules.get("torch")
    if isinstance(obj, np.ndarray) or (torch is not None and isinstance(obj, torch.Tensor)):
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
    # Lazily: BoTorch and torch take seconds to import (see results.pareto.hypervolume).
    import botorch
    import torch

    return {
        "sparsemod": sparsemod.__version__,
        "torch": torch.__version__,
        # Read from the metadata only: importing Ax here would cost seconds and is not needed.
        "ax": _version("ax-platform"),
        "botorch": getattr(botorch, "__version__", None) or _version("botorch"),
    }


def pareto_frame(trials: pd.DataFrame, columns: Mapping[str, Mapping[int, float]]) -> pd.DataFrame:
    """``pareto.csv``'s rows: the Pareto members of ``trials``, with more columns.

    Args:
        trials: :func:`~sparsemod.results.trials.trials_frame`'s frame.
        columns: values by trial index, by column name: ``test_error`` (always written) and
            the deploy check's ``runtime_*`` figures; a member without one gets NaN.
    """
    if "is_pareto" in trials.columns:
        pareto = trials[trials["is_pareto"].astype(bool)].copy()
    else:
        pareto = trials.iloc[0:0].copy()
    for name, values in {"test_error": {}, **columns}.items():
        pareto[name] = [float(values.get(int(i), math.nan)) for i in pareto["index"]]
    return pareto


def write_results(
    directory: str | os.PathLike,
    trials: pd.DataFrame,
    *,
    pareto_columns: Mapping[str, Mapping[int, float]],
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
        trials: :func:`~sparsemod.results.trials.trials_frame`'s frame.
        pareto_columns: ``pareto.csv``'s columns beyond the trials table, by trial index
            (see :func:`pareto_frame`).
        summary: search settings and totals to store; ``pareto_indices``, ``versions`` and
            ``wall_seconds`` are added (``problem_name`` and ``objectives`` when absent).
        models: the deployed models to keep, by trial index (the Pareto members).
        problem_name: the problem's name, so that
            :meth:`~sparsemod.results.reading.Results.load_model` can rebuild.
        objectives: the objectives of the search.
        wall_seconds: the search's wall-clock time.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / "trials.csv", trials.to_csv(index=False).encode())

    pareto = pareto_frame(trials, pareto_columns)
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
    png = pareto_png(trials, summary.get("name"))
    if png is not None:
        _atomic_write(out / "pareto.png", png)


def _write_models(folder: Path, models: Mapping[int, ModelArtifact], problem_name: str) -> None:
    folder.mkdir(exist_ok=True)
    wanted: set[str] = set()
    for index, art in models.items():
        if art.format not in MODEL_SUFFIX:
            raise ConfigError(f"model format {art.format!r} is not one of {list(MODEL_SUFFIX)}")
        stem = f"trial_{int(index)}"
        data_name = stem + MODEL_SUFFIX[art.format]
        meta = {
            "index": int(index),
            "format": art.format,
            "file": data_name,
            **artifact_metadata(art, problem_name),
        }
        # Bytes first, then the sidecar: a sidecar only ever points at a complete file.
        _atomic_write(folder / data_name, bytes(art.data))
        _atomic_write(folder / f"{stem}.json", _dumps(meta))
        wanted.update({data_name, f"{stem}.json"})
    for path in folder.iterdir():
        if _MODEL_FILE.match(path.name) and path.name not in wanted:
            path.unlink(missing_ok=True)
