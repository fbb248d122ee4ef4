"""``runtime = executorch``: a search's objectives are the Cortex-M program's own figures."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import run_search


def test_a_search_counts_the_pte_and_its_planned_memory(tmp_path):
    for module in ("executorch.exir", "executorch.runtime"):
        pytest.importorskip(module, reason='needs pip install "sparsemod[executorch]"')
    searched = run_search(tmp_path, "digits_cnn", "runtime=executorch", "deploy_check=executorch")
    folder = tmp_path / searched.name
    pareto = pd.read_csv(folder / "pareto.csv")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["deploy_check"]["format"] == "executorch"
    assert len(pareto) >= 1
    for _, row in pareto.iterrows():
        checked = summary["deploy_check"]["trials"][str(int(row["index"]))]
        assert "failed" not in checked, checked
        # the objectives the search used are what ExecuTorch reads from the exported
        # program: the .pte's bytes and the sum of its planned buffers
        assert row["model_size_bytes"] == row["runtime_model_bytes"]
        assert row["working_memory_bytes"] == row["runtime_memory_bytes"]
        assert abs(row["runtime_accuracy_test"] - (1 - row["test_error"])) <= 0.005 + 1e-12
