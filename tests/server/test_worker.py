"""The worker: claims, failures, cancellation, stopping; and `sparsemod serve`."""

from __future__ import annotations

import io
import threading
import time

import pytest

import sparsemod.search
from server.settings import Settings
from server.worker import Worker, main, train_config
from sparsemod.cli import main as cli_main
from sparsemod.store import Store

OBJECTIVES = ["error", "model_size_bytes", "working_memory_bytes"]


def queue(store: Store, config: dict, name: str = "w") -> int:
    from dataclasses import asdict

    from sparsemod.config import TrainConfig

    cfg = asdict(TrainConfig(name=name, **config))
    return store.create_search(name, "digits_cnn", cfg, OBJECTIVES, status="queued")


class FakeSearch:
    """Stands in for sparsemod.search.Search: records its call, then does ``action``."""

    calls: list = []
    action = None

    def __init__(self, config, problem, out=None, *, store=None, search_id=None) -> None:
        self.args = (config, problem, store, search_id)

    def run(self) -> None:
        FakeSearch.calls.append(self.args)
        config, problem, store, search_id = self.args
        store.set_search_status(search_id, "running")
        FakeSearch.action(store, search_id)


@pytest.fixture
def fake_search(monkeypatch):
    FakeSearch.calls = []
    monkeypatch.setattr(sparsemod.search, "Search", FakeSearch)
    return FakeSearch


def test_the_worker_runs_the_stored_config_under_its_own_root(
    store: Store, settings: Settings, tiny, fake_search
) -> None:
    sid = queue(store, tiny | {"seed": 3})
    fake_search.action = lambda s, i: s.set_search_status(i, "done")
    out = io.StringIO()
    done = Worker(store, settings, name="w1", out=out).run_once()
    assert done.id == sid and done.status == "done" and done.owner == "w1"
    config, problem, used_store, search_id = fake_search.calls[0]
    assert (config.seed, config.r1, config.name, problem.name) == (3, 1, "w", "digits_cnn")
    assert config.root == f"{settings.results_root}/{sid}"
    assert (used_store, search_id) == (store, sid)
    assert f"search {sid} ended: done" in out.getvalue()


def test_a_failing_search_does_not_stop_the_worker(
    store: Store, settings: Settings, tiny, fake_search
) -> None:
    first, second = queue(store, tiny, "a"), queue(store, tiny, "b")

    def action(s: Store, i: int) -> None:
        if i == first:
            raise RuntimeError("the GPU caught fire")
        s.set_search_status(i, "done")

    fake_search.action = action
    stop = threading.Event()
    worker = Worker(store, Settings(**{**settings.__dict__, "poll_s": 0.01}), out=io.StringIO())
    thread = threading.Thread(target=worker.run_forever, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 30
    while store.get_search(second).status != "done" and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join()
    assert store.get_search(second).status == "done"
    failed = store.get_search(first)
    assert failed.status == "failed" and failed.error == "RuntimeError: the GPU caught fire"


def test_stopping_the_worker_queues_its_search_again(
    store: Store, settings: Settings, tiny, fake_search
) -> None:
    sid = queue(store, tiny)

    def interrupted(s: Store, i: int) -> None:
        s.set_search_status(i, "failed", "KeyboardInterrupt")  # as Search.run does
        raise KeyboardInterrupt

    fake_search.action = interrupted
    with pytest.raises(KeyboardInterrupt):
        Worker(store, settings, out=io.StringIO()).run_once()
    rec = store.get_search(sid)
    assert rec.status == "queued" and rec.error is None


def test_a_search_cancelled_as_it_was_claimed_does_not_run(
    store: Store, settings: Settings, tiny, fake_search, monkeypatch
) -> None:
    sid = queue(store, tiny)
    claim = store.claim_search

    def claim_then_cancel(*args, **kwargs):
        rec = claim(*args, **kwargs)
        store.set_search_status(rec.id, "cancelled")  # the API, a moment too late
        return rec

    monkeypatch.setattr(store, "claim_search", claim_then_cancel)
    assert Worker(store, settings, out=io.StringIO()).run_once().status == "cancelled"
    assert fake_search.calls == [] and store.get_search(sid).status == "cancelled"


def test_searches_left_cancelling_by_a_dead_worker_are_cancelled(
    store: Store, settings: Settings, tiny
) -> None:
    sid = queue(store, tiny)
    store.claim_search("dead")
    store.set_search_status(sid, "cancelling")
    worker = Worker(store, Settings(**{**settings.__dict__, "stale_after_s": 0.01}))
    time.sleep(0.05)
    worker.reap_cancelling()
    assert store.get_search(sid).status == "cancelled"


def test_the_heartbeat_keeps_a_long_trial_from_looking_dead(
    store: Store, settings: Settings, tiny, fake_search
) -> None:
    sid = queue(store, tiny)
    beats = []

    def slow(s: Store, i: int) -> None:
        for _ in range(3):
            time.sleep(0.6)  # settings.heartbeat_s is 0.5
            beats.append(s.get_search(i).heartbeat_at)
        s.set_search_status(i, "done")

    fake_search.action = slow
    Worker(store, settings, out=io.StringIO()).run_once()
    assert len(set(beats)) == 3
    assert store.get_search(sid).status == "done"


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
