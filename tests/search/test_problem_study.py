"""An ask/tell loop that calls sparsemod.evaluate gets the trials python main.py gets."""

from __future__ import annotations

import io

import pytest

from sparsemod.config import TrainConfig
from sparsemod.evaluate import evaluate
from sparsemod.executors.base import torch_threads
from sparsemod.problems import get_problem
from sparsemod.search import Search, problem_study
from sparsemod.store import Store
from tests.search.test_loop import TINY


@pytest.mark.slow
def test_an_ask_tell_loop_around_evaluate_gives_the_search_s_trials(tmp_path):
    cfg = TrainConfig(name="same", root=str(tmp_path / "a"), **TINY)
    problem = get_problem("digits_cnn")
    search = Search(cfg, problem, out=io.StringIO(), store=Store("sqlite://"))
    outcome = search.run()

    data = problem.load(cfg.seed)
    study = problem_study(cfg, problem, data, Store("sqlite://"))
    while trials := study.ask_round():
        for t in trials:
            with torch_threads(cfg.threads):  # as every executor runs a trial
                result = evaluate(
                    problem, t.params, study.eval_settings(t), data, study.warm_start(t)
                )
            study.record(t, result)

    assert len(study.trials) == len(outcome.trials) == 10
    phases = [t.phase for t in study.trials]
    assert phases == ["sobol"] * 4 + ["gp"] * 4 + ["morph"] * 2
    for mine, theirs in zip(study.trials, outcome.trials):
        assert mine.params == theirs.params
        assert (mine.parent, mine.morph) == (theirs.parent, theirs.morph)
        assert mine.status == theirs.status
        for name in ("error", "model_size_bytes", "working_memory_bytes"):
            assert mine.value(name) == theirs.value(name), (mine.index, name)
    assert study.hypervolume() == pytest.approx(outcome.hypervolume)
