"""--warm-start: an earlier search's Pareto set is proposed first, checked against this space."""

from __future__ import annotations

import io

import numpy as np
import pytest

from sparsemod.cli import main
from sparsemod.config import TrainConfig
from sparsemod.problems import get_problem
from sparsemod.results.pareto import pareto_mask
from sparsemod.search import Search
from sparsemod.store import Store, default_url
from tests.search.test_loop import TINY

ONE_ROUND = dict(TINY, r1=2, r2=0, r3=0)


@pytest.mark.slow
def test_a_warm_start_proposes_the_earlier_front_first(tmp_path):
    store = Store(default_url(tmp_path))
    first = TrainConfig(name="first", root=str(tmp_path), **ONE_ROUND)
    Search(first, get_problem("digits_cnn"), out=io.StringIO(), store=store).run()
    earlier = store.list_trials(store.find_search("first").id)
    values = np.array(
        [[t.metrics["error"], t.metrics["model_size_bytes"], t.metrics["working_memory_bytes"]]
         for t in earlier if t.status == "completed"]
    )  # fmt: skip
    done = [t for t in earlier if t.status == "completed"]
    front = [t.params for t, on in zip(done, pareto_mask(values)) if on]
    assert 1 <= len(front) < 4

    out = io.StringIO()
    second = TrainConfig(name="second", root=str(tmp_path), **dict(ONE_ROUND, seed=5))
    Search(second, get_problem("digits_cnn"), out=out, store=store, warm_start="first").run()
    trials = store.list_trials(store.find_search("second").id)
    assert [t.params for t in trials[: len(front)]] == front
    assert len(trials) == 4  # the enqueued networks take part of the Sobol budget
    assert f"warm start: {len(front)} of the {len(front)} Pareto members" in out.getvalue()

    # another problem's networks are checked against this space and said to be left out
    out = io.StringIO()
    third = TrainConfig(name="third", root=str(tmp_path), problem="digits_mlp", **ONE_ROUND)
    Search(third, get_problem("digits_mlp"), out=out, store=store, warm_start="first").run()
    assert f"warm start: 0 of the {len(front)} Pareto members" in out.getvalue()
    assert "left out: unknown parameter(s)" in out.getvalue()


def test_a_warm_start_from_a_search_that_is_not_there_is_refused(tmp_path, capsys):
    code = main(["--set", f"TRAIN.root={tmp_path}", "--set", "TRAIN.r1=1", "--warm-start", "nope"])
    assert code == 2
    assert "--warm-start: no search named 'nope'" in capsys.readouterr().err
    store = Store(default_url(tmp_path))
    assert store.count_searches() == 0  # refused before the search was created
    assert main(["--resume", "--warm-start", "x", "--set", f"TRAIN.root={tmp_path}"]) == 2
    assert "--warm-start starts a new search" in capsys.readouterr().err
