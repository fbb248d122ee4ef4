"""The worker: ``python -m server.worker [--once] [--poll SECONDS] [--name NAME]``.

It claims searches from the store with an atomic update (the oldest queued one, else a
running one whose worker died: its heartbeat is older than ``SPARSEMOD_STALE_AFTER_S``)
and runs each with ``Search(...).run()``, the code ``python main.py`` runs. While a
search trains, a thread heartbeats every ``SPARSEMOD_HEARTBEAT_S`` seconds, so a long
trial is not mistaken for a dead worker. Cancellation is honoured between trials. A
search that fails is marked failed with its error and the worker goes on; a worker
stopped with Ctrl-C or SIGTERM puts its search back in the queue, to be resumed.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from server.settings import Settings, load_settings
from sparsemod.config import TrainConfig
from sparsemod.errors import SparsemodError
from sparsemod.store import SearchRecord, Store

log = logging.getLogger("sparsemod.worker")

_TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}


def train_config(search: SearchRecord, settings: Settings) -> TrainConfig:
    """The stored config of a search as a ``TrainConfig``, exporting under the server's root.

    Exports go to ``<results_root>/<search id>/<name>/``: names are not unique, ids are.

    Raises:
        ConfigError: the stored config is no longer valid for this code.
    """
    values = {k: v for k, v in search.config.items() if k in _TRAIN_FIELDS}
    if values.get("ref_point") is not None:
        values["ref_point"] = tuple(values["ref_point"])
    values.update(
        name=search.name,
        problem=search.problem,
        root=str(Path(settings.results_root) / str(search.id)),
    )
    return TrainConfig(**values)


@contextlib.contextmanager
def _heartbeat(store: Store, search_id: int, every_s: float) -> Iterator[None]:
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            try:
                store.heartbeat(search_id)
            except Exception as exc:  # a busy database must not end the search
                log.warning("heartbeat of search %s failed: %s", search_id, exc)

    thread = threading.Thread(target=beat, name=f"heartbeat-{search_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class Worker:
    """Claims and runs searches, one at a time.

    Args:
        store: the shared store.
        settings: timings and the results folder.
        name: stored as the owner of the searches it claims (default host:pid).
        out: where the searches' progress lines go.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        name: str | None = None,
        out: TextIO | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.out = out if out is not None else sys.stdout

    def _say(self, line: str) -> None:
        print(f"[worker {self.name}] {line}", file=self.out, flush=True)

    def run_once(self) -> SearchRecord | None:
        """Claim one search and run it to its end.

        Returns:
            The search as it ended (done, failed, cancelled), or ``None`` when there was
            nothing to run.

        Raises:
            KeyboardInterrupt, SystemExit: the worker is being stopped; the search was put
                back in the queue first.
        """
        search = self.store.claim_search(self.name, self.settings.stale_after_s)
        if search is None:
            return None
        self._say(f"claimed search {search.id} ({search.name}, problem {search.problem})")
        try:
            self._run(search)
        except (KeyboardInterrupt, SystemExit):
            self.store.set_search_status(search.id, "queued")
            self._say(f"stopped; search {search.id} is queued again and will be resumed")
            raise
        final = self.store.get_search(search.id)
        self._say(f"search {search.id} ended: {final.status}" + _reason(final))
        return final

    def _run(self, search: SearchRecord) -> None:
        # Imported here: the search package pulls in Ax, which the API process never needs.
        from sparsemod.problems import get_problem
        from sparsemod.search import Cancelled, Search

        try:
            if self.store.get_search(search.id).status in ("cancelling", "cancelled"):
                self.store.set_search_status(search.id, "cancelled")  # cancelled as claimed
                return
            cfg = train_config(search, self.settings)
            problem = get_problem(search.problem)
            with _heartbeat(self.store, search.id, self.settings.heartbeat_s):
                Search(cfg, problem, out=self.out, store=self.store, search_id=search.id).run()
        except Cancelled:
            pass  # the search set its status itself
        except Exception as exc:
            # One search's failure must not end the worker. Search.run marks its own
            # failures; the ones before it (a stored config this code refuses) are marked here.
            if not isinstance(exc, SparsemodError):
                traceback.print_exc(file=sys.stderr)
            if self.store.get_search(search.id).status in ("running", "cancelling"):
                self.store.set_search_status(search.id, "failed", f"{type(exc).__name__}: {exc}")

    def reap_cancelling(self) -> None:
        """Mark cancelled the searches left cancelling by a worker that died."""
        limit = timedelta(seconds=self.settings.stale_after_s)
        now = datetime.now(UTC)
        for s in self.store.list_searches("cancelling", limit=100):
            if s.heartbeat_at is None or now - s.heartbeat_at > limit:
                self.store.set_search_status(s.id, "cancelled")
                self._say(f"search {s.id} was cancelling and its worker is gone: cancelled")

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Run searches until ``stop`` is set, sleeping ``poll_s`` when there is none."""
        stop = stop or threading.Event()
        self._say(f"waiting for searches in {self.store}")
        while not stop.is_set():
            try:
                self.reap_cancelling()
                ran = self.run_once()
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # e.g. the database is locked for a while: try again
                log.exception("worker loop: %s", exc)
                ran = None
            if ran is None:
                stop.wait(self.settings.poll_s)


def _reason(search: SearchRecord) -> str:
    return f" ({search.error})" if search.error else ""


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """The worker's command line; returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m server.worker", description=__doc__.split("\n")[0])
    p.add_argument("--once", action="store_true", help="run one search (if any) and exit")
    p.add_argument("--name", default=None, help="the worker's name (default host:pid)")
    p.add_argument("--database", default=None, help="SQLAlchemy URL (default from settings)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        store = Store(args.database or settings.database_url)
    except SparsemodError as exc:
        print(f"sparsemod worker: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    worker = Worker(store, settings, args.name)
    try:
        if args.once:
            worker.reap_cancelling()
            if worker.run_once() is None:
                worker._say("nothing to run")
        else:
            worker.run_forever()
    except KeyboardInterrupt:
        return 130
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
