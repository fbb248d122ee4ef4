"""The worker: claims, failures, cancellation, stopping; and `sparsemod serve`.

The worker runs the real ``Search`` on a tiny problem: one Sobol arm of an MLP on the 8x8
digits, one epoch, no pruning or quantization (about 2 s, the first one in a process 10 s).
Faults are injected around it (a registered problem that cannot load its data, Ctrl-C while
it prints), never by standing in for it.
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest

import sparsemod.problems
from server.settings import Settings
from server.worker import Worker, main, train_config
from sparsemod.cli import main as cli_main
from sparsemod.config import TrainConfig
from sparsemod.problems import get_problem
from sparsemod.store import Store

OBJECTIVES = ["error", "model_size_bytes", "working_memory_bytes"]
QUICK = {
    "r1": 1,
    "r2": 0,
    "r3": 0,
    "batch_size": 1,
    "epochs1": 1,
    "morphisms": False,
    "pruning": False,
    "quant_scheme": "none",
    "runtime": "ideal",
    "num_candidates": 8,
    "device": "cpu",
}


def queue(store: Store, config: dict | None = None, name: str = "w", problem: str = "digits_mlp"):
    """Queue a search as the API does (a validated config, no reference point yet)."""
    cfg = asdict(TrainConfig(name=name, problem=problem, **(QUICK | (config or {}))))
    return store.create_search(name, problem, cfg, OBJECTIVES, status="queued")


class Interrupting(io.StringIO):
    """The worker's output, where Ctrl-C lands as the search reports its first trial."""

    def write(self, text: str) -> int:
        if "[sobol 1/1] trial 0" in text:
            raise KeyboardInterrupt
        return super().write(text)


@pytest.fixture
def unreadable(monkeypatch) -> str:
    """A registered problem whose data loader has a bug."""

    def load(seed: int):
        raise RuntimeError("the GPU caught fire")

    def problem():
        return replace(get_problem("digits_mlp"), name="unreadable", data=load)

    monkeypatch.setitem(sparsemod.problems.BUILTIN, "unreadable", problem)
    return "unreadable"


def test_the_worker_runs_the_stored_config_under_its_own_root(
    store: Store, settings: Settings
) -> None:
    sid = queue(store, {"seed": 3})
    out = io.StringIO()
    done = Worker(store, settings, name="w1", out=out).run_once()
    assert done.id == sid and done.status == "done" and done.owner == "w1", done
    # The stored config ran: its seed, its one Sobol arm, its problem's space.
    [trial] = store.list_trials(sid)
    assert (trial.seed, trial.phase, trial.status) == (3, "sobol", "completed")
    assert set(trial.params) == set(get_problem("digits_mlp").space.names)
    assert done.ref_point is not None
    # Exports go to <results_root>/<id>/<name>/, not to the stored root.
    exported = Path(settings.results_root) / str(sid) / "w"
    assert (exported / "trials.csv").is_file(), sorted(exported.parent.rglob("*"))
    assert f"search {sid} ended: done" in out.getvalue()


def test_a_failing_search_does_not_stop_the_worker(
    store: Store, settings: Settings, unreadable: str
) -> None:
    first, second = queue(store, name="a", problem=unreadable), queue(store, name="b")
    stop = threading.Event()
    worker = Worker(store, replace(settings, poll_s=0.01), out=io.StringIO())
    thread = threading.Thread(target=worker.run_forever, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 120
    while store.get_search(second).status != "done" and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join()
    assert store.get_search(second).status == "done"
    failed = store.get_search(first)
    assert failed.status == "failed" and failed.error == "RuntimeError: the GPU caught fire"
    assert store.count_trials(first) == 0


def test_stopping_the_worker_queues_its_search_again(store: Store, settings: Settings) -> None:
    sid = queue(store)
    with pytest.raises(KeyboardInterrupt):
        Worker(store, settings, out=Interrupting()).run_once()
    rec = store.get_search(sid)
    assert rec.status == "queued" and rec.error is None, rec
    # Stopped inside the search, after its first trial: resuming goes on from there.
    assert [t.status for t in store.list_trials(sid)] == ["completed"]


def test_a_search_cancelled_as_it_was_claimed_does_not_run(
    store: Store, settings: Settings, monkeypatch
) -> None:
    sid = queue(store)
    claim = store.claim_search

    def claim_then_cancel(*args, **kwargs):
        rec = claim(*args, **kwargs)
        store.set_search_status(rec.id, "cancelled")  # the API, a moment too late
        return rec

    monkeypatch.setattr(store, "claim_search", claim_then_cancel)
    assert Worker(store, settings, out=io.StringIO()).run_once().status == "cancelled"
    rec = store.get_search(sid)
    assert rec.status == "cancelled" and rec.ref_point is None  # the search never started
    assert store.count_trials(sid) == 0
    assert not (Path(settings.results_root) / str(sid)).exists()


def test_searches_left_cancelling_by_a_dead_worker_are_cancelled(
    store: Store, settings: Settings
) -> None:
    sid = queue(store)
    store.claim_search("dead")
    store.set_search_status(sid, "cancelling")
    worker = Worker(store, replace(settings, stale_after_s=0.01))
    time.sleep(0.05)
    worker.reap_cancelling()
    assert store.get_search(sid).status == "cancelled"


def test_the_heartbeat_keeps_a_long_trial_from_looking_dead(
    store: Store, settings: Settings
) -> None:
    # About 4 s of training in one trial (8 beats seen; with 3 epochs an idle CI machine
    # once saw 2); settings.heartbeat_s is 0.5.
    sid = queue(store, {"epochs1": 6, "train_batch_size": 4})
    worker = threading.Thread(target=Worker(store, settings, out=io.StringIO()).run_once)
    worker.start()
    beats = set()
    while worker.is_alive():
        if [t.status for t in store.list_trials(sid)] == ["running"]:
            beats.add(store.get_search(sid).heartbeat_at)
        time.sleep(0.05)
    worker.join()
    assert store.get_search(sid).status == "done"
    assert len(beats) >= 3, beats  # the claim's beat, then the worker's during the trial


@pytest.mark.slow
def test_cancel_a_running_search_through_the_api(
    client, store: Store, settings: Settings, tiny
) -> None:
    """The real Search: cancelled between trials, its status ends cancelled."""
    r = client.post(
        "/api/v1/searches",
        json={"name": "c", "problem": "digits_cnn", "config": tiny | {"r1": 3}},
    )
    sid = r.json()["id"]
    worker = Worker(store, settings, out=io.StringIO())
    thread = threading.Thread(target=worker.run_once)
    thread.start()
    deadline = time.monotonic() + 120
    while store.count_trials(sid) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.post(f"/api/v1/searches/{sid}/cancel").json()["status"] == "cancelling"
    thread.join(timeout=180)
    rec = store.get_search(sid)
    assert rec.status == "cancelled", rec
    # All Sobol arms are stored when the phase starts; the ones that never ran are closed
    # as failed, none is left running.
    trials = store.list_trials(sid)
    done = [t for t in trials if t.status == "completed"]
    assert 1 <= len(done) < len(trials) == 3
    assert all(
        t.status == "failed" and t.failure_reason.startswith("cancelled")
        for t in trials
        if t.status != "completed"
    )


def test_train_config_refuses_a_stored_config_this_code_does_not_know(settings) -> None:
    from sparsemod.errors import ConfigError

    class Rec:
        id, name, problem, config = 1, "x", "digits_cnn", {"r1": 0}

    with pytest.raises(ConfigError, match="r1"):
        train_config(Rec, settings)


def test_worker_once_with_nothing_to_run(tmp_path, monkeypatch, capsys) -> None:
    from server.settings import load_settings

    monkeypatch.setenv("SPARSEMOD_RESULTS_ROOT", str(tmp_path))
    monkeypatch.delenv("SPARSEMOD_DATABASE_URL", raising=False)
    load_settings.cache_clear()
    try:
        assert main(["--once", "--name", "t"]) == 0
    finally:
        load_settings.cache_clear()
    assert "nothing to run" in capsys.readouterr().out


def test_serve_refuses_to_start_without_a_token(monkeypatch, capsys) -> None:
    monkeypatch.delenv("SPARSEMOD_API_TOKEN", raising=False)
    monkeypatch.delenv("SPARSEMOD_DEV", raising=False)
    assert cli_main(["serve", "--port", "1"]) == 2
    assert "SPARSEMOD_API_TOKEN is not set" in capsys.readouterr().err
