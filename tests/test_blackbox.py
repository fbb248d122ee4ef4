"""Black box: the default `python main.py` search finds a network that learns digits."""

from __future__ import annotations

from pathlib import Path

import golden_trials
import pytest

from sparsemod.cli import main
from sparsemod.problems import get_problem
from sparsemod.results.reading import load_results
from sparsemod.train import accuracy

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_default_config_most_accurate_pareto_model_reaches_95_percent(tmp_path):
    # The repository's config.ini exactly, only the output folder moved.
    code = main(["--config", str(REPO / "config.ini"), "--set", f"TRAIN.root={tmp_path}"])
    assert code == 0
    results = load_results(tmp_path / "digits_cnn")
    best = results.pareto.sort_values("error").iloc[0]
    assert 1.0 - best["test_error"] >= 0.95
    # and the front is a real trade-off: smaller networks on it are less accurate
    assert len(results.pareto) >= 3
    assert results.pareto["model_size_bytes"].min() < best["model_size_bytes"]
    # the kept deployed model is the one that was scored: same test accuracy from its bytes
    model = results.load_model(int(best["index"]))
    data = get_problem("digits_cnn").load(0)
    assert accuracy(model, data.test) == pytest.approx(1.0 - best["test_error"])
    # and it is the search the same seed always gave (tests/golden_trials.py)
    assert golden_trials.rows_of(tmp_path / "digits_cnn" / "trials.csv") == golden_trials.DEFAULT
