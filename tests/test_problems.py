"""Problems found by name: built in, by 'module:function' path, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparsemod.errors import ConfigError
from sparsemod.evaluate import EvalSettings, evaluate
from sparsemod.problems import available, get_problem

REPO = Path(__file__).resolve().parents[1]


def test_builtin_problems_load():
    assert {"digits_cnn", "digits_mlp", "digits_rnn", "digits_rnn_varlen"} <= set(available())
    p = get_problem("digits_mlp")
    data = p.load(0)
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10


def test_the_readme_example_problem_runs_by_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    p = get_problem("examples.custom_problem:problem")
    assert p.name == "custom_digits"
    r = evaluate(p, p.space.reference, EvalSettings(epochs=2, device="cpu"))
    assert r.ok, r.failure_reason
    assert r.accuracy_val > 0.8
    # 1x8x8 input: conv1 8 ch 8x8, pool 4x4, conv2 16 ch, pool 2x2, linear 64 -> 10
    assert r.flops == 2 * (8 * 64 * 9 + 16 * 16 * 8 * 9 + 10 * 64)


def test_unknown_problems_say_what_exists():
    with pytest.raises(ConfigError, match="not a known problem.*digits_cnn"):
        get_problem("imagenet")
    with pytest.raises(ConfigError, match="cannot import"):
        get_problem("no_such_module:problem")
    with pytest.raises(ConfigError, match="not a Problem"):
        get_problem("math:pi")
