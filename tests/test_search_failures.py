"""A search with failures: a bug stops it, a failed candidate does not, debug shows why.

The problems are in tests/faulty_problems.py; their faults strike in training, after the
search process has costed the networks.
"""

from __future__ import annotations

import io
import os
import traceback

import pytest

from sparsemod.config import TrainConfig
from sparsemod.search import Search
from sparsemod.store import Store

TESTS = os.path.dirname(os.path.abspath(__file__))
TINY = dict(
    r1=1,
    r2=0,
    r3=0,
    batch_size=2,  # arms a round
    epochs1=1,
    device="cpu",
    prune_method="magnitude_layerwise",
)


def _search(tmp_path, problem: str, **options) -> tuple[Search, Store, io.StringIO]:
    out = io.StringIO()
    store = Store(f"sqlite:///{tmp_path / 'failures.db'}")
    cfg = TrainConfig(name="failures", root=str(tmp_path), problem=problem, **TINY, **options)
    return Search(cfg, out=out, store=store), store, out


@pytest.mark.parametrize(
    ("executor", "workers", "problem", "error", "message", "frame"),
    [
        ("sequential", 1, "always_shape_mismatch", RuntimeError, "cannot be multiplied", "forward"),
        ("processes", 2, "always_bug", TypeError, "injected bug", "injected_bug"),
    ],
)
def test_a_bug_stops_the_search_with_its_traceback_and_fails_no_trial(
    tmp_path, monkeypatch, executor, workers, problem, error, message, frame
):
    monkeypatch.syspath_prepend(TESTS)  # spawned worker processes inherit sys.path
    search, store, out = _search(
        tmp_path, f"faulty_problems:{problem}", executor=executor, workers=workers
    )
    with pytest.raises(error, match=message) as info:
        search.run()
    shown = "".join(traceback.format_exception(info.value))
    assert 'faulty_problems.py", line' in shown and f"in {frame}" in shown
    found = store.find_search("failures")
    assert found.status == "failed"
    assert found.error.startswith(f"{error.__name__}: ") and message in found.error
    # the bug was not recorded as a candidate that failed
    assert store.count_trials(found.id, "failed") == 0
    assert store.count_trials(found.id, "completed") == 0
    assert "FAILED" not in out.getvalue()


def test_debug_prints_the_whole_traceback_of_a_failed_trial(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(TESTS)
    search, store, out = _search(tmp_path, "faulty_problems:always_diverges", debug=True)
    search.run()
    found = store.find_search("failures")
    trials = store.list_trials(found.id)
    assert [t.status for t in trials] == ["failed", "failed"]
    reason = trials[0].failure_reason
    assert reason.startswith("InfeasibleError: training diverged: loss is nan at epoch 1")
    assert "Traceback (most recent call last):" in reason
    printed = out.getvalue()
    # every line of the stored reason is printed, the traceback's frames included
    assert all(line in printed for line in reason.splitlines())
    assert 'sparsemod/train.py", line' in printed and "in train" in printed


def test_without_debug_a_failed_trial_is_one_line(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(TESTS)
    search, store, out = _search(tmp_path, "faulty_problems:always_diverges")
    search.run()
    failed = [line for line in out.getvalue().splitlines() if "FAILED" in line]
    assert len(failed) == 2
    assert all(
        line.endswith("InfeasibleError: training diverged: loss is nan at epoch 1")
        for line in failed
    )
    assert "Traceback" not in out.getvalue()


def test_debug_keeps_the_traceback_of_a_network_that_does_not_build(tmp_path, monkeypatch):
    # A BuildError met while costing a candidate in the search process fails its trial
    # without training; under debug its reason carries the builder's traceback too.
    monkeypatch.syspath_prepend(TESTS)
    search, store, out = _search(
        tmp_path, "faulty_problems:never_builds", debug=True, ref_point=(1.0, 1e5, 1e4)
    )
    search.run()
    trials = store.list_trials(store.find_search("failures").id)
    assert [t.status for t in trials] == ["failed", "failed"]
    reason = trials[0].failure_reason
    assert reason.startswith("BuildError: this candidate does not build (on purpose)\n")
    assert "Traceback (most recent call last):" in reason
    assert 'faulty_problems.py", line' in reason and "in build" in reason
    assert all(line in out.getvalue() for line in reason.splitlines())
