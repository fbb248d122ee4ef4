"""bench/search_quality.py: its scoring against hand counts, and its --quick smoke run."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "search_quality.py"


@pytest.fixture(scope="module")
def sq():
    spec = importlib.util.spec_from_file_location("search_quality", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RANGES = {"model_size_bytes": (10.0, 1000.0), "working_memory_bytes": (10.0, 1000.0)}


def test_normalisations_put_the_space_on_the_unit_box(sq):
    values = np.array([[0.5, 100.0, 1000.0], [0.2, 5.0, 10.0]])
    linear = sq.normalise(values, "linear", RANGES)
    assert np.allclose(linear, [[0.5, 0.1, 1.0], [0.2, 0.005, 0.01]])
    log = sq.normalise(values, "log", RANGES)
    # log(100 / 10) / log(1000 / 10) = 0.5; below the space's lowest counts as 0
    assert np.allclose(log, [[0.5, 0.5, 1.0], [0.2, 0.0, 0.0]])


def _trial(error, size, memory, status="completed"):
    return {
        "status": status,
        "error": error,
        "model_size_bytes": size,
        "working_memory_bytes": memory,
    }


def test_score_traces_best_known_front_and_shares(sq):
    runs = [
        {"method": "a", "seed": 0, "trials": [_trial(0.5, 100, 100)]},
        {
            "method": "b",
            "seed": 0,
            "trials": [
                _trial(0.25, 1000, 1000),  # on the front, but at the reference: no volume
                _trial(float("nan"), float("nan"), float("nan"), "failed"),
                _trial(0.5, 100, 100),
            ],
        },
    ]
    scored = sq.score(runs, RANGES)
    # a's one point, linear: (1 - 0.5) (1 - 0.1) (1 - 0.1)
    assert runs[0]["hv_linear"] == pytest.approx([0.405])
    assert runs[1]["hv_linear"] == pytest.approx([0.0, 0.0, 0.405])
    # log: (1 - 0.5) (1 - 0.5) (1 - 0.5)
    assert runs[0]["hv_log"] == pytest.approx([0.125])
    assert scored["best"] == pytest.approx({"linear": 0.405, "log": 0.125})
    assert scored["front_size"] == 2
    assert scored["share"] == {"a": 0.5, "b": 1.0}


def test_comparison_claims_a_difference_only_beyond_seed_noise(sq):
    runs = [
        {"method": m, "seed": s, "hv_linear": [hv]}
        for m, values in {
            "sparsemod": [0.9, 0.8, 0.85],
            "x": [0.5, 0.6, 0.7],
            "y": [0.84, 0.95, 0.7],
        }.items()
        for s, hv in enumerate(values)
    ]
    text = sq.comparison(runs, "linear", ["sparsemod", "x", "y"], [0, 1, 2])
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "yes, ahead" in rows["x"] and "3 / 3" in rows["x"]
    assert f"{0.85 / 0.6:.3f}" in rows["x"]
    assert "no (ranges overlap)" in rows["y"] and "2 / 3" in rows["y"]


def test_quick_run_compares_every_method_on_the_same_budget(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = (tmp_path / "search_quality.md").read_text()
    assert (tmp_path / "search_quality.png").stat().st_size > 10_000
    for method in (
        "sparsemod",
        "sparsemod_no_morph",
        "sparsemod_log",
        "optuna_tpe",
        "optuna_nsga2",
        "optuna_gp",
        "random",
    ):
        run = json.loads((tmp_path / "search_quality" / f"{method}_0.json").read_text())
        assert len(run["trials"]) == 6, method
        assert any(t["status"] == "completed" for t in run["trials"]), method
        assert f"| {method} |" in table
        for t in run["trials"]:
            if t["status"] == "completed":
                assert 0.0 <= t["error"] <= 1.0 and t["model_size_bytes"] > 0
    # every HV is a share of the unit box and at most the best-known front's
    best = [
        float(line.split(": ")[1].rstrip(")"))
        for line in table.splitlines()
        if "best-known front:" in line
    ]
    assert len(best) == 2 and all(0 < b <= 1 for b in best)
    medians = [
        float(line.split("|")[2])
        for line in table.splitlines()
        if line.startswith("| ") and line.split("|")[2].strip()[:1].isdigit() and "%" in line
    ]
    assert len(medians) == 14 and all(0 <= m <= max(best) + 1e-9 for m in medians)
    assert not any(math.isnan(m) for m in medians)
