"""Kill a running search with SIGKILL, resume it, and lose or duplicate nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sparsemod.results.pareto import pareto_mask
from sparsemod.store import Store, default_url

REPO = Path(__file__).resolve().parents[2]
OBJECTIVES = ["error", "model_size_bytes", "working_memory_bytes"]
TOTAL = (2 + 1 + 1) * 2  # (r1 + r2 + r3) rounds x batch_size arms


def _config(tmp_path: Path, num_candidates: int = 32) -> Path:
    path = tmp_path / "config.ini"
    path.write_text(
        "[DEFAULT]\ntrain = true\n[TRAIN]\nname = crash\n"
        f"root = {tmp_path / 'results'}\nr1 = 2\nr2 = 1\nr3 = 1\nbatch_size = 2\n"
        "epochs1 = 1\nepochs2 = 1\nepochs3 = 1\ndevice = cpu\n"
        f"prune_method = magnitude_layerwise\nnum_candidates = {num_candidates}\n"
    )
    return path


def _start(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "main.py", "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


# Runs main.py in a process that SIGKILLs itself at one exact moment, so the test does not
# depend on where a poll happens to land: the moment is named by a hook into the store.
_KILLER = """
import os, signal, sys
from sqlalchemy import event
from sparsemod import store
from sparsemod.cli import main

when, phase, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
count = 0

def _tick():
    global count
    count += 1
    if count == nth:
        os.kill(os.getpid(), signal.SIGKILL)

if when == "insert":  # between two trial inserts of a round, before its commit
    @event.listens_for(store.TrialRow, "after_insert")
    def _after_insert(mapper, connection, row):
        if row.phase == phase:
            _tick()
else:  # just after a trial's completion has been committed
    complete = store.Store.complete_trial

    def _complete(self, *args, **kwargs):
        complete(self, *args, **kwargs)
        _tick()

    store.Store.complete_trial = _complete
sys.exit(main(sys.argv[4:]))
"""


def _run_until_killed(config: Path, when: str, phase: str, nth: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, when, phase, str(nth), "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]


def _wait(proc: subprocess.Popen, store_url: str, until, timeout: float = 240.0) -> None:
    start = time.monotonic()
    store = None
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            pytest.fail(f"the search ended before the kill: {proc.stderr.read()[-2000:]}")
        if store is None and Path(store_url.removeprefix("sqlite:///")).exists():
            try:
                store = Store(store_url)
            except Exception:  # the schema is being created right now
                store = None
        if store is not None:
            found = store.find_search("crash")
            if found is not None and until(store, found.id):
                return
        time.sleep(0.05)
    pytest.fail("the moment to kill never came")


def _completed_before(store_url: str) -> dict[int, dict]:
    store = Store(store_url)
    sid = store.find_search("crash").id
    return {t.index: t.metrics for t in store.list_trials(sid, status="completed")}


def _finish_and_check(tmp_path: Path, config: Path, before: dict[int, dict]) -> None:
    proc = subprocess.run(
        [sys.executable, "main.py", "--config", str(config), "--resume"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming search" in proc.stdout
    store = Store(default_url(tmp_path / "results"))
    search = store.find_search("crash")
    assert search.status == "done"
    trials = store.list_trials(search.id)
    # exactly the configured budget, every index once, nothing left running
    assert [t.index for t in trials] == list(range(TOTAL))
    assert all(t.status in ("completed", "failed") for t in trials)
    # trials completed before the kill were kept as they were, not run again
    for t in trials:
        if t.index in before:
            assert t.metrics == before[t.index] | {
                k: v for k, v in t.metrics.items() if k == "accuracy_test"
            }
    # the exported Pareto set equals a recomputation from the exported trials
    out = tmp_path / "results" / "crash"
    frame = pd.read_csv(out / "trials.csv")
    assert len(frame) == TOTAL
    done = frame[frame["status"] == "completed"]
    expected = set(done["index"][pareto_mask(done[OBJECTIVES].to_numpy(float))])
    assert set(pd.read_csv(out / "pareto.csv")["index"]) == expected
    # only the Pareto members have a model in the store
    ids = {t.id: t.index for t in trials}
    assert {ids[i] for i in store.model_trial_ids(search.id)} == expected


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.slow
def test_kill_during_training_then_resume(tmp_path):
    config = _config(tmp_path)
    url = default_url(tmp_path / "results")
    proc = _start(config)
    # a trial is training: one completed, another one running for a moment already
    _wait(
        proc,
        url,
        lambda s, sid: (
            s.count_trials(sid, "completed") >= 1 and s.count_trials(sid, "running") >= 1
        ),
    )
    time.sleep(0.5)
    _kill(proc)
    before = _completed_before(url)
    assert 1 <= len(before) < TOTAL
    _finish_and_check(tmp_path, config, before)


@pytest.mark.slow
def test_kill_during_gp_generation_then_resume(tmp_path):
    # a big candidate pool keeps the first GP round busy costing candidates for seconds
    config = _config(tmp_path, num_candidates=400)
    url = default_url(tmp_path / "results")
    proc = _start(config)
    # Sobol is complete and nothing of the GP round is stored yet: it is being generated
    _wait(
        proc,
        url,
        lambda s, sid: (
            s.count_trials(sid, "completed") + s.count_trials(sid, "failed") == 4
            and s.count_trials(sid) == 4
        ),
    )
    _kill(proc)
    before = _completed_before(url)
    _finish_and_check(tmp_path, config, before)


@pytest.mark.slow
def test_kill_just_after_a_trial_completes_then_resume(tmp_path):
    config = _config(tmp_path)
    url = default_url(tmp_path / "results")
    # killed right after the fifth completion was committed (the first GP arm)
    _run_until_killed(config, "complete", "", 5)
    before = _completed_before(url)
    store = Store(url)
    sid = store.find_search("crash").id
    assert store.count_trials(sid) - store.count_trials(sid, "running") == 5
    _finish_and_check(tmp_path, config, before)


@pytest.mark.slow
def test_kill_while_a_round_is_being_stored_then_resume(tmp_path):
    config = _config(tmp_path)
    url = default_url(tmp_path / "results")
    # killed between the inserts of the GP round's two arms: the round is one
    # transaction, so none of it is stored, and the resume runs the whole round
    _run_until_killed(config, "insert", "gp", 2)
    store = Store(url)
    sid = store.find_search("crash").id
    assert [t.phase for t in store.list_trials(sid)] == ["sobol"] * 4
    _finish_and_check(tmp_path, config, _completed_before(url))


@pytest.mark.slow
def test_a_rerun_warm_start_child_says_it_starts_cold(tmp_path):
    # A morph child that was running when the process died: its parent's trained float
    # weights died with the process (the store keeps the int8 model only), so the rerun
    # child trains from scratch, and its description says so instead of "(warm start)".
    import io
    from dataclasses import replace

    from sparsemod.config import TrainConfig
    from sparsemod.morph import morphs
    from sparsemod.problems import get_problem
    from sparsemod.search import Search
    from sparsemod.search.loop import COLD, WARM

    problem = get_problem("digits_mlp")
    cfg = TrainConfig(
        name="warm", root=str(tmp_path), problem="digits_mlp", r1=1, r2=0, r3=0,
        batch_size=1, epochs1=1, epochs3=1, device="cpu", prune_method="magnitude_layerwise",
    )  # fmt: skip
    store = Store(default_url(tmp_path))
    Search(cfg, problem, io.StringIO(), store=store).run()  # trial 0, on the front
    sid = store.find_search("warm").id
    parent = store.list_trials(sid)[0]
    child = next(m for m in morphs(problem.space, parent.params) if m.preserves_function)
    # the state a kill leaves in the morph round: the child stored, running
    store.add_trial(sid, 1, "morph", child.params, parent_index=0, morph=child.description + WARM)
    cfg = replace(cfg, r3=1)

    from sparsemod.search import ProblemStudy

    starts = []
    warm_start = ProblemStudy.warm_start

    def spy(self, trial):
        starts.append(warm_start(self, trial))
        return starts[-1]

    ProblemStudy.warm_start = spy
    try:
        out = io.StringIO()
        Search(cfg, problem, out, store=store, search_id=sid).run()
    finally:
        ProblemStudy.warm_start = warm_start
    assert starts == [None]  # trained from scratch
    rerun = store.list_trials(sid)[1]
    assert rerun.status == "completed"
    assert rerun.morph == child.description + COLD
    assert f"<- 0 ({child.description + COLD})" in out.getvalue()
