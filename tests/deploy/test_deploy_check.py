"""``deploy_check``: the end of a search checks its Pareto models in the runtime."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest
from conftest import REPO, run_search

from sparsemod.cli import main
from sparsemod.core.boards import get_board
from sparsemod.deploy import deploy


def test_a_search_checks_its_front_in_tflm_and_keeps_the_runtime_figures(tmp_path):
    pytest.importorskip(
        "litert_torch", reason='needs the tflite extra: pip install "sparsemod[tflite]"'
    )
    pytest.importorskip(
        "tflite_micro", reason='needs the tflite extra: pip install "sparsemod[tflite]"'
    )
    # A 256 KB board, of which the application keeps all but 4 KB of SRAM for itself.
    board = get_board("nrf52840-dk")
    options = ("deploy_check=tflite", f"board={board.name}", "reserve_ram=252KB")
    options += ("max_working_memory=none",)  # config.ini's 8KB is over this board's 4KB
    searched = run_search(tmp_path, "digits_mlp", *options)
    folder = tmp_path / searched.name
    pareto = pd.read_csv(folder / "pareto.csv")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["deploy_check"]["format"] == "tflite"
    assert len(pareto) == len(searched.pareto) >= 1
    for _, row in pareto.iterrows():
        index = int(row["index"])
        checked = summary["deploy_check"]["trials"][str(index)]
        assert "failed" not in checked, checked
        # the same figures as an export and check of that trial on its own
        alone = deploy(searched.name, trial=index, format="tflite", out=tmp_path / "alone",
                       root=tmp_path).report  # fmt: skip
        assert row["runtime_accuracy_test"] == pytest.approx(alone.accuracy, abs=1e-12)
        assert row["runtime_model_bytes"] == alone.artifact_bytes
        assert row["runtime_memory_bytes"] == alone.memory_bytes
        assert row["runtime_activation_bytes"] == alone.memory_split["activations"]
        assert row["runtime_persistent_bytes"] == alone.memory_split["persistent"]
        assert abs(row["runtime_accuracy_test"] - (1 - row["test_error"])) <= 0.005 + 1e-12
        # runtime = tflm (the default): the objectives are what TFLM reports (the arena
        # to the byte, the flatbuffer within 1 % or 64 B)
        assert row["working_memory_bytes"] == row["runtime_memory_bytes"]
        flash = row["runtime_model_bytes"]
        assert abs(row["model_size_bytes"] - flash) <= max(0.01 * flash, 64)
        # and the member fits the board's budgets in the interpreter
        assert row["runtime_memory_bytes"] <= board.sram_bytes - 252 * 1024
        assert row["runtime_model_bytes"] <= board.flash_bytes
    # and `sparsemod export` writes them again from the store alone
    assert (
        main(["export", searched.name, "--root", str(tmp_path), "--out", str(tmp_path / "x")]) == 0
    )
    again = pd.read_csv(tmp_path / "x" / "pareto.csv")
    assert again["runtime_model_bytes"].tolist() == pareto["runtime_model_bytes"].tolist()


def test_a_missing_runtime_is_refused_before_anything_trains(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    argv = ["--config", str(REPO / "config.ini"), "--set", f"TRAIN.root={tmp_path}"]
    argv += ["--set", "TRAIN.deploy_check=onnx"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "deploy_check" in err and 'pip install "sparsemod[onnx]"' in err
    assert "\n" not in err.strip()
    assert not (tmp_path / "digits_cnn").exists()
