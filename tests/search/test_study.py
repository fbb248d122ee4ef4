"""sparsemod.Study, driven from outside: ask, tell, enqueue, load by name after a kill."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from sparsemod import Study
from sparsemod.errors import ConfigError
from sparsemod.results.pareto import hypervolume, pareto_mask
from sparsemod.space import FloatParam, IntParam, SearchSpace, choice
from sparsemod.store import Store

SPACE = SearchSpace(
    (
        IntParam("width", 1, 64),
        FloatParam("lr", 1e-4, 1e-1, log=True),
        choice("act", ["relu", "tanh"]),
    )
)
LIMIT = 4000.0


def costs(params):
    """Exact costs from the parameters alone: 64 B a unit of width."""
    return {"model_size_bytes": 64.0 * params["width"]}


def error(params):
    """A made-up error: best at lr 1e-2, falls with width, tanh a little worse."""
    e = abs(math.log10(params["lr"]) + 2) / 3 + 1 / (1 + params["width"])
    return min(1.0, e + (0.05 if params["act"] == "tanh" else 0.0))


def run(study):
    while trials := study.ask(2):
        for t in trials:
            study.tell(t, {"error": error(t.params)})
    return study


def test_an_ask_tell_loop_spends_its_budget_within_the_limits(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = run(
        Study(
            SPACE, ("error", "model_size_bytes"), costs, store=url, name="toy",
            phases={"sobol": 4, "gp": 4}, batch_size=2, constraints={"model_size_bytes": LIMIT},
        )
    )  # fmt: skip
    trials = study.trials
    assert [t.phase for t in trials] == ["sobol"] * 4 + ["gp"] * 4
    for t in trials:
        # the exact costs come with each asked arm, and none is over the limit
        assert t.predicted == {"model_size_bytes": 64.0 * t.params["width"]}
        assert t.predicted["model_size_bytes"] <= LIMIT
        assert t.value("error") == pytest.approx(error(t.params))
    values = np.array([[error(t.params), 64.0 * t.params["width"]] for t in trials])
    expected = hypervolume(values, [1.0, LIMIT])
    assert study.hypervolume() == pytest.approx(expected)
    front = {t.index for t in study.pareto()}
    assert front == {i for i, m in enumerate(pareto_mask(values)) if m}
    frame = study.trials_frame()
    assert list(frame["index"]) == list(range(8))
    assert set(frame.loc[frame["pareto"], "index"]) == front
    # 2 rounds a phase: the history has one hypervolume per round, the last the final one
    assert len(study.state.hv_history) == 4
    assert study.state.hv_history[-1] == pytest.approx(expected)
    stored = Store(url)
    search = stored.find_search("toy")
    rows = stored.list_trials(search.id)
    assert [r.status for r in rows] == ["completed"] * 8
    assert rows[3].metrics["error"] == pytest.approx(error(rows[3].params))
    assert rows[3].predicted == {"model_size_bytes": 64.0 * rows[3].params["width"]}
    assert study.ask() == []
    assert stored.find_search("toy").status == "done"


def test_tell_refuses_bad_values_and_writes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"

    def sized_and_timed(params):  # a latency model; the board measures the real one
        return {**costs(params), "latency_s": 1e-5 * params["width"]}

    study = Study(SPACE, ("error", "model_size_bytes", "latency_s"), sized_and_timed,
                  store=url, phases={"sobol": 3, "gp": 0})  # fmt: skip
    a, b, c = study.ask(3)
    bad = [
        ((a, {"error": float("nan"), "latency_s": 0.1}), "error = nan is not a finite number"),
        ((a, {"error": 0.5, "latency_s": "fast"}), "latency_s = 'fast' is not a finite"),
        ((a, {"error": 0.5, "latency_s": 0.1, "energy": 1}), "['energy'] are not objectives"),
        ((17, {"error": 0.5}), "no trial 17"),
        ((a,), "give its values or failed"),
    ]
    for args, message in bad:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            study.tell(*args)
    with pytest.raises(ConfigError, match="give its values or failed"):
        study.tell(a, {"error": 0.5, "latency_s": 0.1}, failed="both")
    store = Store(url)
    sid = store.find_search("study").id
    assert store.count_trials(sid, "running") == 3  # nothing was written
    # a told latency (measured on the board) is stored with the predicted size
    study.tell(a, {"error": 0.25, "latency_s": 0.002})
    with pytest.raises(ConfigError, match="trial 0 was told before"):
        study.tell(a, {"error": 0.5, "latency_s": 0.1})
    study.tell(b.index, failed="the board ran out of memory")
    # a told cost over the limit fails the trial: it cannot ship
    with pytest.raises(ConfigError, match="not a cost objective"):
        Study(SPACE, ("error", "model_size_bytes"), costs, constraints={"error": 0.1})
    rows = {r.index: r for r in store.list_trials(sid)}
    assert rows[0].status == "completed" and rows[0].metrics["latency_s"] == 0.002
    assert rows[0].metrics["model_size_bytes"] == 64.0 * a.params["width"]
    assert rows[1].status == "failed" and rows[1].failure_reason == "the board ran out of memory"
    assert rows[2].status == "running"
    assert [t.index for t in study.pending()] == [2]


def test_a_told_cost_over_a_limit_fails_the_trial():
    study = Study(SPACE, ("error", "latency_s"), None, constraints={"latency_s": 0.01},
                  phases={"sobol": 2, "gp": 0})  # fmt: skip
    a, b = study.ask(2)
    study.tell(a, {"error": 0.3, "latency_s": 0.02})
    study.tell(b, {"error": 0.3, "latency_s": 0.005})
    assert (
        a.status == "failed" and "measured latency_s 0.02 > limit 0.01" in a.result.failure_reason
    )
    assert b.status == "completed"
    assert [t.index for t in study.pareto()] == [1]
    other = Study(SPACE, ("error", "latency_s"), None, ref_point=[1, 1], phases={"sobol": 1})
    (mine,) = other.ask()
    with pytest.raises(ConfigError, match="trial 0 was asked of another study"):
        study.tell(mine, {"error": 0.1, "latency_s": 0.001})


def test_the_arguments_are_checked_before_anything_is_stored(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    cases = [
        (dict(objectives=("model_size_bytes", "error")), "must start with 'error'"),
        (dict(objectives=("error", "energy_mj")), "not among error, model_size_bytes"),
        (dict(phases={"sobol": 2, "morph": 4}), "morphisms need a problem's builder"),
        (dict(phases={"sobol": -1}), "sobol must be a number of trials >= 0"),
        (dict(batch_size=0), "batch_size = 0"),
        (dict(generator="pool", costs=None), "give costs="),
        (dict(cost_scale="cubic"), "cost_scale = 'cubic'"),
        (dict(constraints={"model_size_bytes": -3}), "must be a number > 0"),
        (dict(store=42), "store must be a URL"),
        (dict(objectives=("error", "latency_s"), costs=None), "reference point for latency_s"),
    ]
    for kwargs, message in cases:
        kwargs = {"objectives": ("error", "model_size_bytes"), "costs": costs, **kwargs}
        kwargs.setdefault("store", url)
        with pytest.raises(ConfigError, match=message):
            Study(SPACE, **kwargs)
    store = Store(url)
    # the reference point is derived before the study is created: nothing at all is stored
    assert store.count_searches() == 0


def test_a_cost_function_that_gives_no_number_is_named():
    with pytest.raises(ConfigError, match="the cost function gave no model_size_bytes"):
        Study(SPACE, ("error", "model_size_bytes"), lambda p: {"size": 3})
    with pytest.raises(ConfigError, match="gave model_size_bytes = 'big', not a number"):
        Study(SPACE, ("error", "model_size_bytes"), lambda p: {"model_size_bytes": "big"})


def test_enqueued_networks_come_first_and_are_checked():
    study = Study(SPACE, ("error", "model_size_bytes"), costs, phases={"sobol": 3, "gp": 0},
                  constraints={"model_size_bytes": LIMIT})  # fmt: skip
    known = {"width": 8, "lr": 0.01, "act": "relu"}
    study.enqueue(known)
    with pytest.raises(ConfigError, match="'lr': 2 is outside"):
        study.enqueue({"width": 8, "lr": 2, "act": "relu"})
    with pytest.raises(ConfigError, match="breaks the limit on model_size_bytes"):
        study.enqueue({"width": 64, "lr": 0.01, "act": "relu"})
    first, *rest = study.ask(3)
    assert first.params == known and first.predicted == {"model_size_bytes": 512.0}
    assert len(rest) == 2 and all(t.params != known for t in rest)
    assert study.ask() == []  # the enqueued arm took one of the phase's three


def test_without_costs_every_objective_is_told_and_modelled():
    study = Study(SPACE, ("error", "model_size_bytes"), None, ref_point=[1.0, 5000.0],
                  phases={"sobol": 3, "gp": 2})  # fmt: skip
    assert study.plan.generator == "ax"
    seen = []
    while trials := study.ask():
        (t,) = trials
        assert t.predicted == {}
        with pytest.raises(ConfigError, match="no value for model_size_bytes"):
            study.tell(t, {"error": 0.5})
        study.tell(t, {"error": error(t.params), **costs(t.params)})
        seen.append(t.phase)
    assert seen == ["sobol"] * 3 + ["gp"] * 2
    assert 0.0 < study.hypervolume() < 1.0


SCRIPT = """
import math, os, signal, sys
sys.path.insert(0, {tests!r})
from test_study import SPACE, costs, error
from sparsemod import Study
study = Study(SPACE, ("error", "model_size_bytes"), costs, store={url!r}, name="killed",
              phases={{"sobol": 4, "gp": 4}}, batch_size=2, seed=3)
told = 0
while trials := study.ask(2):
    for t in trials:
        if told == {kill_after}:
            os.kill(os.getpid(), signal.SIGKILL)  # mid-round: one arm asked, never told
        study.tell(t, {{"error": error(t.params)}})
        told += 1
"""


@pytest.mark.parametrize("kill_after", [3, 5])
def test_a_killed_study_is_loaded_by_name_and_goes_on_to_its_budget(tmp_path, kill_after):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    script = SCRIPT.format(tests=os.path.dirname(__file__), url=url, kill_after=kill_after)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    study = Study.load("killed", url, costs)
    assert [t.index for t in study.pending()] == [kill_after]
    for t in study.pending():
        study.tell(t, {"error": error(t.params)})
    run(study)
    assert len(study.trials) == 8 and all(t.status == "completed" for t in study.trials)
    assert [t.phase for t in study.trials] == ["sobol"] * 4 + ["gp"] * 4
    # the same seed, never killed, asks the same arms
    whole = run(Study(SPACE, ("error", "model_size_bytes"), costs, phases={"sobol": 4, "gp": 4},
                      batch_size=2, seed=3))  # fmt: skip
    assert [t.params for t in study.trials] == [t.params for t in whole.trials]
    with pytest.raises(ConfigError, match="created with a cost function"):
        Study.load("killed", url)
    with pytest.raises(ConfigError, match="no study named 'other'"):
        Study.load("other", url)


def test_a_name_in_use_is_loaded_only_when_asked_and_when_the_study_is_the_same(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    args = dict(store=url, name="same", phases={"sobol": 2, "gp": 0})
    study = Study(SPACE, ("error", "model_size_bytes"), costs, **args)
    (t,) = study.ask()
    study.tell(t, {"error": 0.4})
    with pytest.raises(ConfigError, match="a study named 'same' is already in"):
        Study(SPACE, ("error", "model_size_bytes"), costs, **args)
    with pytest.raises(ConfigError, match="was created with other plan"):
        Study(SPACE, ("error", "model_size_bytes"), costs, load_if_exists=True,
              **dict(args, phases={"sobol": 3, "gp": 0}))  # fmt: skip
    with pytest.raises(ConfigError, match="was created with other space"):
        Study(SearchSpace(SPACE.parameters[:2] + (choice("act", ["relu"]),)),
              ("error", "model_size_bytes"), costs, load_if_exists=True, **args)  # fmt: skip
    again = Study(SPACE, ("error", "model_size_bytes"), costs, load_if_exists=True, **args)
    assert [x.params for x in again.trials] == [t.params]
    assert again.trials[0].value("error") == 0.4
    assert len(again.ask(5)) == 1  # the Sobol budget of 2 goes on from where it was


@pytest.mark.slow
def test_the_example_runs_and_a_second_run_goes_on_from_the_store(tmp_path):
    example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "ask_tell.py")
    url = f"sqlite:///{tmp_path / 'e.db'}"
    cmd = [sys.executable, example, "--store", url, "--sobol", "2", "--gp", "2", "--epochs", "1"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "0 trials so far" in first.stdout and "trial 3 (gp)" in first.stdout
    store = Store(url)
    rows = store.list_trials(store.find_search("ask_tell").id)
    assert [r.status for r in rows] == ["completed"] * 4
    assert all(r.metrics["model_size_bytes"] <= 6 * 1024 for r in rows)
    assert all(0 < r.metrics["latency_s"] < 0.1 for r in rows)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "4 trials so far" in second.stdout and "trial 4" not in second.stdout
