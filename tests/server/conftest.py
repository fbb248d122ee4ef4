"""Fixtures of the service tests: a real SQLite file per test, a TestClient with a token.

``seeded`` writes a finished search straight through the store (no training) for the
read endpoints; ``trained`` runs a tiny search with the real worker in this process, once
per session (~10 s), for what needs real models.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

# server/ is a package of the checkout, not of the installed distribution.
REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from server.app import create_app  # noqa: E402
from server.settings import Settings  # noqa: E402
from server.worker import Worker  # noqa: E402
from sparsemod.store import Store  # noqa: E402

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TINY = {
    "r1": 1,
    "r2": 0,
    "r3": 0,
    "batch_size": 1,
    "epochs1": 1,
    "device": "cpu",
    "prune_method": "magnitude_layerwise",
    "num_candidates": 8,
}
OBJECTIVES = ["error", "model_size_bytes", "working_memory_bytes"]


def make_settings(tmp: Path, **changes) -> Settings:
    base = Settings(
        database_url=f"sqlite:///{tmp / 'api.db'}",
        results_root=str(tmp / "results"),
        api_token=TOKEN,
        max_trials=10,
        max_epochs=5,
        max_candidates=1024,
        max_request_bytes=4096,
        stale_after_s=60.0,
        heartbeat_s=0.5,
        poll_s=0.1,
    )
    return replace(base, **changes)


@pytest.fixture
def auth() -> dict[str, str]:
    return dict(AUTH)


@pytest.fixture
def tiny() -> dict:
    """The [TRAIN] values of a search that trains one network for one epoch."""
    return dict(TINY)


@pytest.fixture
def settings_for() -> Callable[..., Settings]:
    """``settings_for(tmp_path, **changes)``: test settings with some changed."""
    return make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store(settings.database_url) as s:
        yield s


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=AUTH) as c:
        yield c


@dataclass(frozen=True)
class Seeded:
    """A done search of three trials: two completed (both Pareto), one failed."""

    search_id: int
    trial_ids: list[int]  # by index
    model: bytes


def seed(store: Store) -> Seeded:
    """A finished search written straight through the store."""
    config = {"r1": 3, "r2": 0, "r3": 0, "batch_size": 1, "objectives": 3, "morphisms": True}
    sid = store.create_search(
        "seeded", "digits_cnn", config, OBJECTIVES, ref_point=[1.0, 1e5, 1e4], status="running"
    )
    params = {"num_blocks": 1, "dropout": 0.1}
    model = b"not really a model"
    metrics = [
        {"error": 0.2, "accuracy_val": 0.8, "model_size_bytes": 5000, "working_memory_bytes": 900},
        {"error": 0.4, "accuracy_val": 0.6, "model_size_bytes": 1000, "working_memory_bytes": 300},
    ]
    ids = []
    for i, m in enumerate(metrics):
        tid = store.add_trial(sid, i, "sobol", params | {"num_blocks": i + 1}, seed=0)
        store.complete_trial(
            tid,
            "completed",
            m | {"accuracy_test": 0.75},
            model=("state_dict", model, {"params": params}),
        )
        ids.append(tid)
    tid = store.add_trial(sid, 2, "sobol", params | {"num_blocks": 3}, seed=0)
    store.complete_trial(tid, "failed", {}, failure_reason="BuildError: too small")
    ids.append(tid)
    store.set_search_status(sid, "done")
    # The read tests compare answers with ``model``: it must be what the store holds.
    for tid in ids[:2]:
        stored = store.get_model(tid)
        assert (stored.data, stored.sha256, stored.format) == (
            model,
            hashlib.sha256(model).hexdigest(),
            "state_dict",
        ), stored
    assert not store.get_trial(ids[2]).has_model
    return Seeded(sid, ids, model)


@pytest.fixture
def seeded(store: Store) -> Seeded:
    return seed(store)


@pytest.fixture(scope="session")
def seeder() -> Callable[[Store], Seeded]:
    """``seeder(store)``: write the seeded search into any store."""
    return seed


@dataclass(frozen=True)
class Trained:
    """A session's database after the worker ran: one search done, one failed."""

    settings: Settings
    done_id: int
    failed_id: int
    worker_name: str


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Run the real worker in this process on a tiny search, and on a broken one.

    The tiny search is first claimed by a worker that "dies" (never heartbeats again), so
    the real worker takes it over as stale; the broken one fails, and the worker goes on.
    """
    tmp = tmp_path_factory.mktemp("trained")
    settings = make_settings(tmp, stale_after_s=0.2)
    with TestClient(create_app(settings), headers=AUTH) as c:
        r = c.post(
            "/api/v1/searches", json={"name": "tiny", "problem": "digits_cnn", "config": TINY}
        )
        assert r.status_code == 202, r.text
        done_id = r.json()["id"]
    with Store(settings.database_url) as store:
        assert store.claim_search("dead-worker").id == done_id
        # Stored by an older code, refused by this one: the worker marks it failed.
        failed_id = store.create_search(
            "broken", "digits_cnn", {"r1": 0}, OBJECTIVES, status="queued"
        )
        worker = Worker(store, settings, name="test-worker")
        first = worker.run_once()
        assert first is not None and first.id == failed_id and first.status == "failed"
        time.sleep(0.3)  # the dead worker's heartbeat goes stale
        second = worker.run_once()
        assert second is not None and second.id == done_id, second
        assert worker.run_once() is None
    return Trained(settings, done_id, failed_id, worker.name)


# ---------------------------------------------------------------------- live processes


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_env(tmp: Path, token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARSEMOD_")}
    env.update(
        SPARSEMOD_RESULTS_ROOT=str(tmp / "results"),
        SPARSEMOD_DATABASE_URL=f"sqlite:///{tmp / 'live.db'}",
        SPARSEMOD_HEARTBEAT_S="1",
        SPARSEMOD_POLL_S="0.2",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p),
        **extra,
    )
    if token:
        env["SPARSEMOD_API_TOKEN"] = token
    return env


class Procs:
    """Child processes started in the repository, each stopped at the end of the test.

    Their output goes to files, not pipes: a pipe nobody reads fills up (uvicorn logs
    every request) and blocks the child.
    """

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list = []

    def start(self, args: list[str], env: dict[str, str]):
        import subprocess

        log = open(self.logs / f"proc{len(self.started)}.log", "w+")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, *args], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        proc.log = log
        self.started.append(proc)
        return proc

    @staticmethod
    def stop(proc) -> str:
        """Stop a child with SIGTERM (then SIGKILL); returns what it printed."""
        import subprocess

        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return Procs.output(proc)

    @staticmethod
    def output(proc) -> str:
        proc.log.flush()
        return Path(proc.log.name).read_text()

    def stop_all(self) -> None:
        for proc in self.started:
            self.stop(proc)
            proc.log.close()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.stop_all()


@pytest.fixture
def server_env() -> Callable[..., dict[str, str]]:
    """``server_env(tmp, token=..., **more)``: the environment of a server on ``tmp``."""
    return _server_env


@pytest.fixture
def free_port() -> int:
    return _free_port()


@dataclass
class Live:
    """A real ``uvicorn server.app:app`` on a free port."""

    url: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """uvicorn serving a fresh database with the test token; no worker."""
    import httpx

    tmp = tmp_path_factory.mktemp("live")
    env = _server_env(tmp, SPARSEMOD_MAX_TRIALS="4", SPARSEMOD_MAX_EPOCHS="2")
    procs = Procs(tmp)
    proc = procs.start(
        ["-m", "uvicorn", "server.app:app", "--port", str(port := _free_port())], env
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"uvicorn ended: {procs.stop(proc)[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not start: {procs.stop(proc)[-3000:]}")
            time.sleep(0.1)
        yield Live(url, env)
    finally:
        procs.stop_all()
