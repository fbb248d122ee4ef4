"""Fixed seeds give the same searches, trial for trial (issue 13: behaviour unchanged).

Three tiny searches over the paths a refactoring can break: the process pool on the MLP
space, structured pruning with both quantizations on the CNN space, and both
quantizations on the RNN space, all under ``runtime = ideal`` (what every search was
before TFLM's counts became the default). The default ``python main.py`` is held to its
rows in tests/test_blackbox.py.
"""

from __future__ import annotations

from pathlib import Path

import golden_trials
import pytest

from sparsemod.cli import main

REPO = Path(__file__).resolve().parents[1]

TINY = ["TRAIN.r1=2", "TRAIN.r2=1", "TRAIN.r3=1", "TRAIN.epochs1=1", "TRAIN.epochs2=1"]
TINY += ["TRAIN.epochs3=1", "TRAIN.device=cpu"]
# The baselines were captured before `runtime` existed, with SpArSe's counts and the
# budgets config.ini had then: they hold the ideal cost model to what it gave.
TINY += ["TRAIN.runtime=ideal", "TRAIN.max_model_size=32KB", "TRAIN.max_working_memory=4KB"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        (
            "proc",
            ["problem=digits_mlp", "executor=processes", "workers=2"],
            golden_trials.PROC,
        ),
        ("cnn", ["prune_method=l1_structured", "quant_scheme=both"], golden_trials.CNN),
        ("rnn", ["problem=digits_rnn", "quant_scheme=both"], golden_trials.RNN),
    ],
)
def test_a_seed_gives_the_same_trials(tmp_path, name, options, expected):
    sets = [f"TRAIN.name={name}", f"TRAIN.root={tmp_path}"] + TINY
    sets += [f"TRAIN.{o}" for o in options]
    argv = ["--config", str(REPO / "config.ini")]  # the baselines ran over it too
    for item in sets:
        argv += ["--set", item]
    assert main(argv) == 0
    assert golden_trials.rows_of(tmp_path / name / "trials.csv") == expected
