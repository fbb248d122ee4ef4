"""The durable store, on real databases: one contract suite run on every backend.

Backends: a SQLite file, SQLite in memory, and PostgreSQL when
``SPARSEMOD_TEST_POSTGRES_URL`` names a database this suite may wipe (skipped otherwise).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sparsemod.errors import ConfigError, DataError
from sparsemod.store import (
    METRICS,
    Base,
    Store,
    StoreError,
    default_url,
    head_revision,
    upgrade_database,
)
from sparsemod.store import engine as store_engine

PG_ENV = "SPARSEMOD_TEST_POSTGRES_URL"
TABLES = (
    "histories",
    "models",
    "trial_predictions",
    "trial_metrics",
    "trial_params",
    "trials",
    "searches",
    "alembic_version",
)
OBJECTIVES = ["error", "model_size_bytes", "working_memory_bytes", "latency_s"]


def _postgres_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"set {PG_ENV} to run the PostgreSQL backend")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {', '.join(TABLES)} CASCADE"))
    engine.dispose()
    return url


def _url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite-file":
        return f"sqlite:///{tmp_path}/db/sparsemod.db"
    if kind == "sqlite-memory":
        return "sqlite://"
    return _postgres_url()


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with Store(_url(request.param, tmp_path)) as s:
        yield s


@pytest.fixture(params=["sqlite-file", "postgresql"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database that several Store objects (threads, processes) can open."""
    return _url(request.param, tmp_path)


def _search(s: Store, name: str = "s", **kwargs: object) -> int:
    return s.create_search(name, "tiny", {"epochs": 2, "lr": 0.01}, OBJECTIVES, **kwargs)


# ----------------------------------------------------------------------- searches


def test_search_round_trip(store: Store) -> None:
    sid = store.create_search(
        "mnist", "tiny", {"epochs": 2, "nested": {"a": [1, "2", 3.5]}}, OBJECTIVES, owner="cli"
    )
    rec = store.get_search(sid)
    assert rec.id == sid
    assert (rec.name, rec.problem, rec.status, rec.owner) == ("mnist", "tiny", "running", "cli")
    assert rec.config == {"epochs": 2, "nested": {"a": [1, "2", 3.5]}}
    assert rec.objectives == OBJECTIVES
    assert rec.ref_point is None and rec.error is None and rec.heartbeat_at is None
    assert rec.sobol_drawn == 0
    assert rec.created_at.tzinfo is UTC and rec.updated_at == rec.created_at
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.status = "done"  # type: ignore[misc]

    store.set_reference_point(sid, [1.0, 2e6, 3, 0.5])
    store.set_sobol_drawn(sid, 7)
    store.heartbeat(sid)
    store.set_search_status(sid, "failed", error="boom")
    rec = store.get_search(sid)
    assert rec.ref_point == [1.0, 2e6, 3.0, 0.5]
    assert rec.sobol_drawn == 7
    assert rec.heartbeat_at is not None and rec.heartbeat_at.tzinfo is UTC
    assert (rec.status, rec.error) == ("failed", "boom")
    assert rec.updated_at >= rec.created_at
    store.set_search_status(sid, "done")
    assert store.get_search(sid).error is None


def test_find_list_count_searches(store: Store) -> None:
    first = _search(store, "a")
    second = _search(store, "b", status="queued")
    third = _search(store, "a")
    assert store.find_search("a").id == third
    assert store.find_search("b").id == second
    assert store.find_search("zzz") is None
    assert [r.id for r in store.list_searches()] == [third, second, first]
    assert [r.id for r in store.list_searches(limit=2, offset=1)] == [second, first]
    assert [r.id for r in store.list_searches(status="queued")] == [second]
    assert store.count_searches() == 3
    assert store.count_searches("running") == 2
    assert store.count_searches("done") == 0


def test_search_errors(store: Store) -> None:
    sid = _search(store)
    with pytest.raises(DataError, match="no search with id 999"):
        store.get_search(999)
    for call in (
        lambda: store.set_search_status(999, "done"),
        lambda: store.heartbeat(999),
        lambda: store.set_sobol_drawn(999, 1),
    ):
        with pytest.raises(DataError):
            call()
    with pytest.raises(ConfigError, match="search status must be one of"):
        store.set_search_status(sid, "paused")
    with pytest.raises(ConfigError, match="search status"):
        _search(store, status="sleeping")
    with pytest.raises(ConfigError, match="ref_point must hold 4"):
        store.set_reference_point(sid, [1.0, 2.0])
    with pytest.raises(ConfigError, match="objectives"):
        store.create_search("x", "tiny", {}, [])
    with pytest.raises(ConfigError, match="config must be JSON"):
        store.create_search("x", "tiny", {"f": object()}, OBJECTIVES)
    with pytest.raises(ConfigError, match="status"):
        store.list_searches(status="nope")
    assert store.count_searches() == 1


def test_delete_search_cascades(store: Store) -> None:
    sid = _search(store)
    tid = store.add_trial(sid, 0, "sobol", {"a": 1}, predicted={"flops": 3.0})
    store.complete_trial(
        tid,
        "completed",
        {"error": 0.5},
        history=[{"stage": "train", "epoch": 1}],
        model=("fmt", b"xyz", {}),
    )
    other = _search(store, "other")
    store.add_trial(other, 0, "sobol", {"a": 2})
    store.delete_search(sid)
    with pytest.raises(DataError):
        store.get_trial(tid)
    with store._engine.connect() as connection:
        for table in TABLES[:-2]:
            rows = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            expected = {"trials": 1, "trial_params": 1}.get(table, 0)
            assert rows == expected, table
    with pytest.raises(DataError):
        store.delete_search(sid)


# ------------------------------------------------------------------------- trials


PARAMS = {
    "n_layers": 3,
    "width": "3",
    "lr": 0.001,
    "keep_ratio": 1.0,
    "big": 2**40,
    "flag": True,
    "none": None,
    "kernel": [3, 5],
    "act": "relu",
}


def test_trial_round_trip(store: Store) -> None:
    sid = _search(store)
    tid = store.add_trial(
        sid,
        4,
        "morph",
        PARAMS,
        parent_index=2,
        morph="widen conv1 x2",
        seed=123,
        predicted={"model_size_bytes": 4096, "flops": 1.5e6, "latency_s": None},
    )
    rec = store.get_trial(tid)
    assert rec.params == PARAMS
    for name, value in PARAMS.items():
        assert type(rec.params[name]) is type(value), name
    assert (rec.search_id, rec.index, rec.phase, rec.status) == (sid, 4, "morph", "running")
    assert (rec.parent_index, rec.morph, rec.seed) == (2, "widen conv1 x2", 123)
    assert rec.predicted == {"model_size_bytes": 4096.0, "flops": 1.5e6}
    assert rec.metrics == {} and rec.failure_reason is None and rec.finished_at is None
    assert not rec.has_model
    assert rec.created_at.tzinfo is UTC
    with pytest.raises(DataError, match="no trial"):
        store.get_trial(tid + 1000)
    with pytest.raises(DataError, match="no search"):
        store.add_trial(999, 0, "sobol", {})
    with pytest.raises(ConfigError, match="prediction 'energy'"):
        store.add_trial(sid, 5, "gp", {}, predicted={"energy": 1.0})


def test_list_and_count_trials(store: Store) -> None:
    sid = _search(store)
    other = _search(store, "other")
    ids = {i: store.add_trial(sid, i, "sobol", {"i": i}) for i in (2, 0, 3, 1)}
    store.add_trial(other, 0, "sobol", {})
    store.complete_trial(ids[1], "completed", {"error": 0.2})
    store.complete_trial(ids[3], "failed", {}, failure_reason="BuildError: collapsed")
    assert [t.index for t in store.list_trials(sid)] == [0, 1, 2, 3]
    assert [t.params["i"] for t in store.list_trials(sid)] == [0, 1, 2, 3]
    assert [t.index for t in store.list_trials(sid, limit=2, offset=1)] == [1, 2]
    assert [t.index for t in store.list_trials(sid, status="running")] == [0, 2]
    failed = store.list_trials(sid, status="failed")
    assert [(t.index, t.failure_reason) for t in failed] == [(3, "BuildError: collapsed")]
    assert store.count_trials(sid) == 4
    assert store.count_trials(sid, "completed") == 1
    assert store.count_trials(other) == 1
    assert store.list_trials(12345) == []


def test_complete_trial_writes_everything(store: Store) -> None:
    sid = _search(store)
    tid = store.add_trial(sid, 0, "sobol", {"a": 1})
    history = [
        {
            "stage": "inherit",
            "epoch": 0,
            "loss": None,
            "val_accuracy": 0.4,
            "sparsity": 0.0,
            "copied": 12,
            "skipped": 1,
        },
        {"stage": "train", "epoch": 1, "loss": 1.5, "val_accuracy": 0.5, "sparsity": 0.0},
        {"stage": "train", "epoch": 2, "loss": 0.75, "val_accuracy": 0.625, "sparsity": 0.0},
        {"stage": "prune", "epoch": 0, "loss": None, "val_accuracy": 0.6, "sparsity": 0.8},
        {
            "stage": "quantize:dynamic",
            "epoch": 0,
            "loss": float("nan"),
            "val_accuracy": 0.59,
            "sparsity": 0.8,
        },
    ]
    metrics = {
        "error": 0.41,
        "accuracy_val": 0.59,
        "model_size_bytes": 12345,
        "working_memory_bytes": 2048,
        "latency_s": 1.25e-4,
        "accuracy_test": None,
        "flops": float("nan"),
    }
    store.complete_trial(
        tid,
        "completed",
        metrics,
        history=history,
        model=("torch.export", b"\x00\x01model", {"input_shape": [1, 28, 28]}),
    )
    rec = store.get_trial(tid)
    assert rec.status == "completed" and rec.finished_at is not None
    assert rec.finished_at >= rec.created_at
    # None and NaN mean "not measured": no row.
    assert rec.metrics == {
        "error": 0.41,
        "accuracy_val": 0.59,
        "model_size_bytes": 12345.0,
        "working_memory_bytes": 2048.0,
        "latency_s": 1.25e-4,
    }
    assert rec.has_model
    got = store.history(tid)
    assert [(h["stage"], h["epoch"]) for h in got] == [(h["stage"], h["epoch"]) for h in history]
    assert got[0] == {
        "stage": "inherit",
        "epoch": 0,
        "loss": None,
        "val_accuracy": 0.4,
        "sparsity": 0.0,
        "copied": 12,
        "skipped": 1,
    }
    assert got[2]["loss"] == 0.75 and got[3]["sparsity"] == 0.8
    assert got[4]["loss"] is None
    model = store.get_model(tid)
    assert (model.trial_id, model.format, model.data) == (tid, "torch.export", b"\x00\x01model")
    assert model.meta == {"input_shape": [1, 28, 28]}
    assert len(model.sha256) == 64
    assert store.model_trial_ids(sid) == [tid]
    with pytest.raises(DataError):
        store.history(tid + 1000)


def test_complete_trial_validates_first(store: Store) -> None:
    sid = _search(store)
    tid = store.add_trial(sid, 0, "sobol", {})
    with pytest.raises(ConfigError, match="completed trial status"):
        store.complete_trial(tid, "running", {})
    with pytest.raises(ConfigError, match="metric 'energy'"):
        store.complete_trial(tid, "completed", {"energy": 1.0})
    with pytest.raises(ConfigError, match="model data must be bytes"):
        store.complete_trial(tid, "completed", {}, model=("fmt", None, {}))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs 'stage' and 'epoch'"):
        store.complete_trial(tid, "completed", {}, history=[{"loss": 1.0}])
    with pytest.raises(DataError, match="no trial"):
        store.complete_trial(tid + 1000, "completed", {})
    assert store.get_trial(tid).status == "running"


def test_complete_trial_is_atomic(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = _search(store)
    keeper = store.add_trial(sid, 0, "sobol", {})
    store.complete_trial(keeper, "completed", {"error": 0.1}, model=("fmt", b"keep", {}))
    tid = store.add_trial(sid, 1, "sobol", {"a": 1})
    seen: list[str] = []
    real_execute = Session.execute

    def failing_execute(self: Session, statement: object, *args: object, **kwargs: object):
        table = getattr(statement, "table", None)
        if getattr(statement, "is_insert", False) and table is not None:
            seen.append(table.name)
            if table.name == "histories":
                raise OSError("disk full")
        return real_execute(self, statement, *args, **kwargs)

    monkeypatch.setattr(Session, "execute", failing_execute)
    with pytest.raises(OSError, match="disk full"):
        store.complete_trial(
            tid,
            "completed",
            {"error": 0.2, "flops": 10.0},
            history=[{"stage": "train", "epoch": 1, "loss": 0.3}],
            model=("fmt", b"new", {}),
            drop_models=[keeper],
        )
    monkeypatch.undo()
    assert seen == ["trial_metrics", "histories"]  # it failed after writing the metrics
    rec = store.get_trial(tid)
    assert rec.status == "running" and rec.finished_at is None
    assert rec.metrics == {} and not rec.has_model
    assert store.history(tid) == []
    assert store.model_trial_ids(sid) == [keeper]
    # The trial can still be completed properly.
    store.complete_trial(tid, "completed", {"error": 0.2}, drop_models=[keeper])
    assert store.get_trial(tid).metrics == {"error": 0.2}


def test_complete_trial_rolls_back_on_bad_drop(store: Store) -> None:
    sid = _search(store)
    other = _search(store, "other")
    foreign = store.add_trial(other, 0, "sobol", {})
    store.complete_trial(foreign, "completed", {}, model=("fmt", b"theirs", {}))
    tid = store.add_trial(sid, 0, "sobol", {})
    # Found only after the status, metrics, history and model are written: all undone.
    with pytest.raises(ConfigError, match=rf"drop_models ids \[{foreign}\]"):
        store.complete_trial(
            tid,
            "completed",
            {"error": 0.3},
            history=[{"stage": "train", "epoch": 1}],
            model=("fmt", b"mine", {}),
            drop_models=[foreign],
        )
    rec = store.get_trial(tid)
    assert rec.status == "running" and rec.metrics == {} and not rec.has_model
    assert store.history(tid) == []
    assert store.get_model(foreign).data == b"theirs"
    with pytest.raises(ConfigError, match="itself"):
        store.complete_trial(tid, "completed", {}, drop_models=[tid])


def test_drop_models_deletes_only_the_named(store: Store) -> None:
    sid = _search(store)
    ids = []
    for i in range(4):
        ids.append(store.add_trial(sid, i, "sobol", {"i": i}))
        store.complete_trial(ids[-1], "completed", {"error": 0.5}, model=("f", bytes([i]), {}))
    newest = store.add_trial(sid, 4, "gp", {})
    store.complete_trial(
        newest, "completed", {"error": 0.1}, model=("f", b"best", {}), drop_models=[ids[0], ids[2]]
    )
    store.vacuum()  # gives the dropped bytes back; the rest stays
    assert store.model_trial_ids(sid) == [ids[1], ids[3], newest]
    assert [t.has_model for t in store.list_trials(sid)] == [False, True, False, True, True]
    with pytest.raises(DataError, match="no stored model"):
        store.get_model(ids[0])
    assert store.get_model(ids[1]).data == bytes([1])
    # A trial without a model (or dropped already) may be named again: nothing happens.
    last = store.add_trial(sid, 5, "gp", {})
    store.complete_trial(last, "failed", {}, drop_models=[ids[0]])
    assert store.model_trial_ids(sid) == [ids[1], ids[3], newest]


def test_double_completion_refused(store: Store) -> None:
    sid = _search(store)
    tid = store.add_trial(sid, 0, "sobol", {})
    store.complete_trial(tid, "failed", {}, failure_reason="out of memory")
    with pytest.raises(ConfigError, match="not running"):
        store.complete_trial(tid, "completed", {"error": 0.1})
    rec = store.get_trial(tid)
    assert (rec.status, rec.failure_reason, rec.metrics) == ("failed", "out of memory", {})


def test_duplicate_index_refused(store: Store) -> None:
    sid = _search(store)
    other = _search(store, "other")
    first = store.add_trial(sid, 0, "sobol", {"a": 1})
    with pytest.raises(ConfigError, match="already has a trial with index 0"):
        store.add_trial(sid, 0, "gp", {"a": 2})
    assert store.add_trial(other, 0, "sobol", {}) != first  # per search
    assert store.add_trial(sid, 1, "gp", {}) > first  # the store is still usable
    assert [t.params for t in store.list_trials(sid)] == [{"a": 1}, {}]


def test_delete_running_trials(store: Store) -> None:
    sid = _search(store)
    other = _search(store, "other")
    ids = [store.add_trial(sid, i, "sobol", {"i": i}, predicted={"flops": 1.0}) for i in range(5)]
    store.complete_trial(ids[1], "completed", {"error": 0.1})
    store.complete_trial(ids[3], "failed", {})
    untouched = store.add_trial(other, 0, "sobol", {})
    assert store.delete_running_trials(sid) == [0, 2, 4]
    assert [t.index for t in store.list_trials(sid)] == [1, 3]
    assert store.get_trial(untouched).status == "running"
    assert store.delete_running_trials(sid) == []
    # Their indices can be used again by the resumed search.
    store.add_trial(sid, 0, "sobol", {"again": True})
    assert store.list_trials(sid)[0].params == {"again": True}


# ---------------------------------------------------------------------- claiming


def test_claim_search(store: Store) -> None:
    assert store.claim_search("w1") is None
    running = _search(store, "cli")  # runs in a CLI, never heartbeats: never taken
    store.heartbeat(fresh := _search(store, "fresh"))
    q1 = _search(store, "q1", status="queued")
    q2 = _search(store, "q2", status="queued")
    got = store.claim_search("w1")
    assert got is not None and got.id == q1  # the oldest queued first
    assert (got.status, got.owner) == ("running", "w1")
    assert got.heartbeat_at is not None
    assert store.claim_search("w2").id == q2
    assert store.claim_search("w3") is None  # the rest are alive
    time.sleep(0.3)
    store.heartbeat(q2)
    store.heartbeat(fresh)
    # w1 died: its heartbeat is older than stale_after_s; q2's and fresh's are not.
    dead = store.claim_search("w3", stale_after_s=0.2)
    assert dead is not None and (dead.id, dead.owner, dead.status) == (q1, "w3", "running")
    assert dead.heartbeat_at > got.heartbeat_at
    assert store.claim_search("w4", stale_after_s=0.2) is None
    assert store.get_search(running).owner is None
    assert store.get_search(running).status == "running"
    assert store.get_search(fresh).owner is None


def test_concurrent_claimers_never_share(shared_url: str) -> None:
    with Store(shared_url) as s:
        queued = {_search(s, f"q{i}", status="queued") for i in range(24)}
    n_workers = 4
    barrier = threading.Barrier(n_workers)
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            with Store(shared_url) as mine:
                barrier.wait()
                got = []
                while (rec := mine.claim_search(name)) is not None:
                    got.append(rec.id)
                claimed[name] = got
        except BaseException as e:  # reported below, not lost in the thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(n_workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    everything = [i for got in claimed.values() for i in got]
    assert len(everything) == len(set(everything))  # nobody got one twice
    assert set(everything) == queued
    with Store(shared_url) as s:
        owners = {s.get_search(i).owner for i in queued}
        assert owners <= {f"w{i}" for i in range(n_workers)}


# ------------------------------------------------------------------ SQLite details


def test_sqlite_file_is_wal_with_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "sparsemod.db"
    with Store(f"sqlite:///{path}") as s:
        assert path.exists()  # the folder was created
        with s._engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    with sqlite3.connect(path) as raw:  # WAL is a property of the file
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_memory_store_is_shared_and_fresh() -> None:
    with Store("sqlite:///:memory:") as a:
        sid = _search(a)
        assert a.get_search(sid).name == "s"
    with Store("sqlite://") as b:
        assert b.count_searches() == 0


def test_opening_is_quiet(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO)
    Store(f"sqlite:///{tmp_path}/q.db").close()
    Store(f"sqlite:///{tmp_path}/q.db").close()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []
    assert capfd.readouterr() == ("", "")


def test_bytes_per_trial(tmp_path: Path) -> None:
    path = tmp_path / "size.db"
    with Store(f"sqlite:///{path}") as s:
        sid = _search(s)
        for i in range(100):
            params = {f"param_{k:02d}": (k * i if k % 3 else k * 0.125 + i) for k in range(20)}
            tid = s.add_trial(sid, i, "sobol", params, seed=i)
            metrics = dict.fromkeys(METRICS[:6], 0.1 * i + 1)
            s.complete_trial(tid, "completed", metrics)
        assert s.count_trials(sid, "completed") == 100
        s.vacuum()
        size = path.stat().st_size
    print(f"\n{size} bytes for 100 trials: {size / 100:.0f} bytes per trial")
    assert size < 200_000


# ---------------------------------------------------------------- schema versions


def test_migration_matches_models(store: Store) -> None:
    with store._engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() == head_revision() == "0003_stopped"
        assert compare_metadata(context, Base.metadata) == []


def _newer_migrations(tmp_path: Path) -> Path:
    """A copy of the migrations with one more revision, as a later sparsemod would ship."""
    location = tmp_path / "migrations"
    shutil.copytree(store_engine.MIGRATIONS, location, ignore=shutil.ignore_patterns("__pycache__"))
    (location / "versions" / "0099_note.py").write_text(
        '"""Add a note to searches."""\n'
        "import sqlalchemy as sa\n"
        "from alembic import op\n\n"
        'revision = "0099_note"\n'
        f'down_revision = "{head_revision()}"\n'
        "branch_labels = None\n"
        "depends_on = None\n\n\n"
        "def upgrade():\n"
        '    with op.batch_alter_table("searches") as batch:\n'
        '        batch.add_column(sa.Column("note", sa.Text(), nullable=True))\n\n\n'
        "def downgrade():\n"
        '    with op.batch_alter_table("searches") as batch:\n'
        '        batch.drop_column("note")\n'
    )
    return location


def _columns(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        names = {row[1] for row in connection.exec_driver_sql(f"PRAGMA table_info({table})")}
    engine.dispose()
    return names


def test_old_database_is_refused_then_upgraded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    head = head_revision()
    with Store(url) as s:  # written by this sparsemod, at its head
        sid = _search(s, "kept")
    monkeypatch.setattr(store_engine, "MIGRATIONS", _newer_migrations(tmp_path))
    assert head_revision() == "0099_note"
    with pytest.raises(StoreError) as info:
        Store(url)
    message = str(info.value)
    assert f"'{head}'" in message and "'0099_note'" in message
    assert f"`sparsemod db upgrade --database {url}`" in message
    assert upgrade_database(url) == (head, "0099_note")
    assert "note" in _columns(url, "searches")
    assert upgrade_database(url) == ("0099_note", "0099_note")  # nothing left to do
    with Store(url) as s:
        assert s.get_search(sid).name == "kept"  # the data survived


def test_upgrade_flag_migrates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    with Store(url) as s:
        sid = _search(s, "kept")
    monkeypatch.setattr(store_engine, "MIGRATIONS", _newer_migrations(tmp_path))
    with Store(url, upgrade=True) as s:
        assert s.get_search(sid).name == "kept"
    assert "note" in _columns(url, "searches")


def test_newer_database_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/new.db"
    with monkeypatch.context() as patch:
        patch.setattr(store_engine, "MIGRATIONS", _newer_migrations(tmp_path))
        Store(url).close()  # written by a later sparsemod
    for opener in (
        lambda: Store(url),
        lambda: Store(url, upgrade=True),
        lambda: upgrade_database(url),
    ):
        with pytest.raises(StoreError, match="'0099_note'.*newer sparsemod"):
            opener()


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    with pytest.raises(StoreError, match=r"has tables \(notes\) but no sparsemod schema revision"):
        Store(f"sqlite:///{path}")
    with pytest.raises(StoreError, match="not created by sparsemod"):
        upgrade_database(f"sqlite:///{path}")


def test_downgrade_to_base_and_recreate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/down.db"
    Store(url).close()
    config = Config()
    config.set_main_option("script_location", str(store_engine.MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    command.downgrade(config, "base")
    with sqlite3.connect(tmp_path / "down.db") as raw:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables == {"alembic_version"}
        assert raw.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 0
    # An emptied database is a new one: created at the head again.
    assert upgrade_database(url) == ("base", head_revision())
    with Store(url) as s:
        assert s.count_searches() == 0


def test_default_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPARSEMOD_DATABASE_URL", raising=False)
    assert default_url(tmp_path / "out") == f"sqlite:///{(tmp_path / 'out').resolve()}/sparsemod.db"
    monkeypatch.setenv("SPARSEMOD_DATABASE_URL", "postgresql://u@db/sparsemod")
    assert default_url(tmp_path) == "postgresql://u@db/sparsemod"


def test_bad_url() -> None:
    with pytest.raises(ConfigError, match="not a valid SQLAlchemy URL"):
        Store("not a url")
    with pytest.raises(ConfigError, match="cannot open database"):
        Store("nosuchdb+nodriver://u@h/db")


def test_unopenable_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()  # a folder where the file should be
    with pytest.raises(StoreError, match="cannot open database"):
        Store(f"sqlite:///{tmp_path}/dir.db")


def test_record_metrics_adds_a_test_score_to_a_finished_trial(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    sid = store.create_search("s", "digits_cnn", {}, ["error"])
    tid = store.add_trial(sid, 0, "sobol", {"a": 1})
    with pytest.raises(ConfigError, match="still running"):
        store.record_metrics(tid, {"accuracy_test": 0.9})
    store.complete_trial(tid, "completed", {"error": 0.1, "accuracy_test": 0.5})
    store.record_metrics(tid, {"accuracy_test": 0.9})
    assert store.get_trial(tid).metrics == {"error": 0.1, "accuracy_test": 0.9}


def test_a_round_is_stored_whole_or_not_at_all(tmp_path):
    from sparsemod.store import NewTrial

    store = Store(f"sqlite:///{tmp_path / 'round.db'}")
    sid = store.create_search("s", "digits_cnn", {}, ["error"], [1.0])
    store.add_trials(sid, [NewTrial(0, "sobol", {"a": 1})], sobol_drawn=1)
    # the round's second arm takes an index that exists: nothing of the round is written,
    # not even its first arm or the Sobol count
    with pytest.raises(ConfigError, match="already has a trial with index among 1, 0"):
        store.add_trials(
            sid, [NewTrial(1, "gp", {"a": 2}), NewTrial(0, "gp", {"a": 3})], sobol_drawn=5
        )
    assert [t.index for t in store.list_trials(sid)] == [0]
    assert store.get_search(sid).sobol_drawn == 1
    ids = store.add_trials(
        sid,
        [NewTrial(1, "gp", {"a": 2}, predicted={"flops": 4.0}), NewTrial(2, "gp", {"a": 3})],
        sobol_drawn=2,
    )
    rows = store.list_trials(sid)
    assert [t.id for t in rows[1:]] == ids
    assert [(t.index, t.phase, t.params, t.predicted) for t in rows[1:]] == [
        (1, "gp", {"a": 2}, {"flops": 4.0}),
        (2, "gp", {"a": 3}, {}),
    ]
    assert store.get_search(sid).sobol_drawn == 2


def test_0002_adds_duplicate_of_and_keeps_every_trial(tmp_path: Path) -> None:
    """A store written before duplicates existed (0001_initial) upgrades in place."""
    url = f"sqlite:///{tmp_path}/old.db"
    with Store(url) as s:
        sid = _search(s, "kept")
        s.add_trial(sid, 0, "sobol", {"a": 1}, predicted={"flops": 10.0})
    config = Config()
    config.set_main_option("script_location", str(store_engine.MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    command.downgrade(config, "0001_initial")
    assert "duplicate_of" not in _columns(url, "trials")
    assert upgrade_database(url) == ("0001_initial", "0003_stopped")
    assert "duplicate_of" in _columns(url, "trials")
    with Store(url) as s:
        [trial] = s.list_trials(sid)
        assert (trial.params, trial.predicted) == ({"a": 1}, {"flops": 10.0})
        assert trial.duplicate_of is None
        s.add_trial(sid, 1, "sobol", {"a": 1}, duplicate_of=0)
        assert [t.duplicate_of for t in s.list_trials(sid)] == [None, 0]


def test_0003_lets_a_trial_be_stopped_and_keeps_every_trial(tmp_path: Path) -> None:
    """A store of 0002 refuses a stopped trial; upgraded, it takes one, and the rest stays."""
    url = f"sqlite:///{tmp_path}/old.db"
    with Store(url) as s:
        sid = _search(s, "kept")
        done = s.add_trial(sid, 0, "sobol", {"a": 1})
        s.complete_trial(done, "completed", {"error": 0.25})
        running = s.add_trial(sid, 1, "gp", {"a": 2})
    config = Config()
    config.set_main_option("script_location", str(store_engine.MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    command.downgrade(config, "0002_duplicate_of")
    engine = create_engine(url)
    with pytest.raises(IntegrityError), engine.begin() as c:
        c.execute(text(f"UPDATE trials SET status = 'stopped' WHERE id = {running}"))
    engine.dispose()
    assert upgrade_database(url) == ("0002_duplicate_of", "0003_stopped")
    with Store(url) as s:
        s.complete_trial(running, "stopped", {"stop_epoch": 2, "predicted_error": 0.6})
        got = {t.index: (t.status, t.metrics) for t in s.list_trials(sid)}
        assert got == {
            0: ("completed", {"error": 0.25}),
            1: ("stopped", {"stop_epoch": 2.0, "predicted_error": 0.6}),
        }
