"""Reading a search back: its result files, or the store (exported to files first)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from sparsemod.errors import ConfigError, DataError
from sparsemod.results.artifact import artifact_from, artifact_problem
from sparsemod.results.files import MODEL_SUFFIX

if TYPE_CHECKING:
    import torch


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
                / meta.get("file", f"trial_{int(index)}{MODEL_SUFFIX.get(fmt, '')}")
            )
            artifact = artifact_from(meta, data_path.read_bytes(), fmt)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{meta_path}: cannot read the model of trial {index} ({exc})") from exc
        # Older folders named the problem "problem_name", in the sidecar or the summary only.
        problem = artifact_problem(meta) or self.summary.get("problem_name")
        if not problem:
            raise DataError(f"{meta_path}: the model does not name its problem")
        # Lazy: loading a model needs torch and the builders, reading the tables does not.
        from sparsemod.evaluate import load_model
        from sparsemod.problems import get_problem

        return load_model(artifact, get_problem(problem))


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
    from sparsemod.results.export import export_search
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
