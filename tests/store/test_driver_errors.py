"""A driver's failure during a call is a StoreError naming the database, never a raw
SQLAlchemy error; a broken unique constraint is still the caller's ConfigError.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import exc

from sparsemod.errors import ConfigError
from sparsemod.store import Store, StoreError
from sparsemod.store import engine as store_engine


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "db" / "sparsemod.db"


@pytest.fixture
def store(path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    # A lock is waited for 0.2 s instead of 30, so that the test does not wait for it.
    monkeypatch.setattr(store_engine, "_BUSY_TIMEOUT_MS", 200)
    with Store(f"sqlite:///{path}") as s:
        yield s


def test_a_lock_held_past_the_busy_timeout_is_a_store_error(store: Store, path: Path) -> None:
    sid = store.create_search("s", "tiny", {}, ["error"])
    store.add_trial(sid, 0, "sobol", {"a": 1})
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, and not letting go
    try:
        start = time.monotonic()
        with pytest.raises(StoreError) as info:
            store.create_search("t", "tiny", {}, ["error"])
        waited = time.monotonic() - start
        message = str(info.value)
        assert message == f"cannot read or write database sqlite:///{path}: database is locked"
        assert isinstance(info.value.__cause__, exc.OperationalError)
        assert 0.15 < waited < 5.0  # the busy timeout was waited for, then given up
        with pytest.raises(StoreError, match="database is locked"):
            store.complete_trial(store.list_trials(sid)[0].id, "completed", {"error": 0.5})
        with pytest.raises(StoreError, match="database is locked"):
            store.vacuum()
        # WAL: readers are not blocked by the writer, and nothing was half written.
        assert [s.name for s in store.list_searches()] == ["s"]
        assert store.list_trials(sid)[0].status == "running"
    finally:
        holder.rollback()
        holder.close()
    # The lock is gone: the same store works again.
    tid = store.list_trials(sid)[0].id
    store.complete_trial(tid, "completed", {"error": 0.5})
    assert store.get_trial(tid).metrics == {"error": 0.5}
    assert store.count_searches() == 1


def test_a_table_gone_behind_the_stores_back_is_a_store_error(store: Store, path: Path) -> None:
    sid = store.create_search("s", "tiny", {}, ["error"])
    tid = store.add_trial(sid, 0, "sobol", {})
    with sqlite3.connect(path) as raw:
        raw.execute("DROP TABLE histories")
    with pytest.raises(StoreError, match=r"sqlite:///.*sparsemod\.db: no such table: histories"):
        store.history(tid)
    assert store.get_trial(tid).status == "running"  # the rest still works


def test_a_taken_index_is_still_a_config_error(store: Store) -> None:
    sid = store.create_search("s", "tiny", {}, ["error"])
    store.add_trial(sid, 0, "sobol", {})
    # The unique constraint's IntegrityError is a driver error too; the store explains it.
    with pytest.raises(ConfigError, match="already has a trial with index 0") as info:
        store.add_trial(sid, 0, "sobol", {})
    assert isinstance(info.value.__cause__, exc.IntegrityError)
    assert not isinstance(info.value, StoreError)


def test_a_password_is_not_in_the_message() -> None:
    url = "postgresql://user:secret@127.0.0.1:1/db"
    with pytest.raises(StoreError) as info, store_engine.driver_errors(url):
        raise exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
    assert str(info.value) == (
        "cannot read or write database postgresql://user:***@127.0.0.1:1/db: connection refused"
    )
