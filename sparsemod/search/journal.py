"""The search's record in the store: every write a search makes goes through its journal.

A round's arms are written in one transaction with the Sobol points drawn so far; a
trial's completion (metrics, history, and the model swap when the front changes) is one
transaction; a resumed search is rebuilt from these rows alone (:meth:`Journal.restore`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sparsemod.errors import SparsemodError
from sparsemod.evaluate import COMPLETED, FAILED
from sparsemod.problems import Problem
from sparsemod.search import record
from sparsemod.search.ax_backend import AxBackend
from sparsemod.search.phases import COLD, WARM
from sparsemod.search.state import SearchState, Trial
from sparsemod.store import NewTrial, Store

CANCELLED_REASON = "cancelled: the search was cancelled"


class Cancelled(SparsemodError):
    """The search was asked to stop (its status set to ``cancelling``); it stops between trials."""


class Journal:
    """One search's rows in ``store``.

    Args:
        store: the store.
        problem: the search's problem name (stored with the search and each model).
        heartbeat: whether each completion heartbeats, so that a service worker takes the
            search over when its runner dies (a search; an ask/tell study is run by its
            caller, and never heartbeats).
    """

    def __init__(self, store: Store, problem: str, *, heartbeat: bool = True) -> None:
        self.store = store
        self.problem = problem
        self.heartbeat = heartbeat
        self.search_id: int | None = None
        self._with_model: set[int] = set()  # indices of the trials whose model is stored

    def open(
        self,
        name: str,
        config: Mapping[str, Any],
        objectives: Sequence[str],
        reference_point: Callable[[], list[float]],
        search_id: int | None = None,
        say: Callable[[str], None] = print,
        changes: Callable[[Mapping[str, Any]], Mapping[str, tuple[Any, Any]]] | None = None,
    ) -> list[float]:
        """Create the search, or take up ``search_id``; returns its reference point.

        ``changes(stored_config)`` says what a resume changes (and raises for a change
        that alters what was measured, before anything is written); an allowed change is
        said and ``config`` written back. ``reference_point`` is called only when the
        store has none yet.

        Raises:
            Cancelled: the search was cancelled before it started.
        """
        store = self.store
        if search_id is not None:
            found = store.get_search(search_id)
            changed = changes(found.config) if changes is not None else {}
            if changed:
                say(
                    f"resuming search {search_id} with "
                    + ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
                )
                store.set_search_config(search_id, dict(config))
            if found.ref_point is None:  # queued through the service: nothing ran yet
                store.set_reference_point(search_id, reference_point())
                found = store.get_search(search_id)
            ref_point = list(found.ref_point)
        else:
            ref_point = reference_point()
            search_id = store.create_search(
                name, self.problem, dict(config), list(objectives), ref_point
            )
        self.search_id = search_id
        if store.get_search(search_id).status in ("cancelling", "cancelled"):
            # cancelled between a worker's claim and this start: do not run it
            store.set_search_status(search_id, "cancelled")
            raise Cancelled(f"search {search_id} was cancelled before it started")
        return ref_point

    def set_status(self, status: str, error: str | None = None) -> None:
        self.store.set_search_status(self.search_id, status, error)

    def store_round(self, arms: Sequence[Trial], seed: int, sobol_drawn: int) -> None:
        """Write a round's arms in one transaction, with the Sobol points drawn so far.

        A process killed while a round is written leaves none of it in the store, so a
        resume proposes the whole round again (it counts rounds by the arms stored).
        """
        rows = [
            NewTrial(
                t.index, t.phase, t.params, t.parent, t.morph, seed, t.predicted, t.duplicate_of
            )  # fmt: skip
            for t in arms
        ]
        ids = self.store.add_trials(self.search_id, rows, sobol_drawn=sobol_drawn)
        for trial, trial_id in zip(arms, ids):
            trial.id = trial_id

    def complete(self, trial: Trial, state: SearchState) -> None:
        """Complete the trial in the store: one transaction, model swap included.

        Only Pareto members keep their model: the trial's is stored when it joins the
        front, and those of the trials it pushes off go in the same transaction.
        """
        result = trial.result
        front = {t.index for t in state.pareto()}
        model = None
        if trial.index in front and result.model is not None:
            model = record.model_payload(result.model, self.problem)
        leaving = self._with_model - front
        self.store.complete_trial(
            trial.id,
            result.status,
            record.metrics_of(result),
            failure_reason=result.failure_reason,
            history=list(result.history),
            model=model,
            drop_models=[state.trials[i].id for i in sorted(leaving)],
        )
        self._with_model = (self._with_model - leaving) | ({trial.index} if model else set())
        # The store holds the model now; keeping every one in memory would fill it.
        trial.result = replace(result, model=None)
        if self.heartbeat:
            self.store.heartbeat(self.search_id)

    def cancelling(self) -> bool:
        """Whether the search has been asked to stop."""
        return self.store.get_search(self.search_id).status == "cancelling"

    def close_cancelled(self, trials: Iterable[Trial]) -> None:
        """The arms that never ran (or were cut off) are closed, not left ``running``."""
        for trial in trials:
            self.store.complete_trial(trial.id, FAILED, {}, failure_reason=CANCELLED_REASON)

    def restore(self, state: SearchState, ax: AxBackend) -> list[Trial]:
        """Rebuild the trials and the Ax experiment from the store; returns those to re-run.

        Trials that were running when the process died are run again. Ax's Sobol sequence
        is fast-forwarded past the arms drawn before, so it goes on where it was.
        """
        rec = self.store.get_search(self.search_id)
        with_model = set(self.store.model_trial_ids(self.search_id))
        rerun = []
        for tr in self.store.list_trials(self.search_id):
            trial = Trial(
                tr.index, tr.phase, dict(tr.params), dict(tr.predicted), tr.parent_index,
                tr.morph, id=tr.id, duplicate_of=tr.duplicate_of,
            )  # fmt: skip
            state.trials.append(trial)
            state.seen.add(state.identify(trial.params))
            trial.ax_index = ax.attach(trial.params)
            if tr.status == "running":
                rerun.append(trial)
                if trial.morph and trial.morph.endswith(WARM):
                    # The parent's trained weights lived in the process that died (the store
                    # keeps only the int8 model): the child trains from scratch, and says so.
                    trial.morph = trial.morph.removesuffix(WARM) + COLD
                    self.store.set_trial_morph(trial.id, trial.morph)
                continue
            trial.result = record.result_of(tr)
            if tr.status == COMPLETED:
                ax.complete(trial.ax_index, {o: trial.value(o) for o in state.objectives})
            else:
                ax.fail(trial.ax_index)
            if tr.id in with_model:
                self._with_model.add(tr.index)
        ax.fast_forward(rec.sobol_drawn)
        state.sobol_drawn = rec.sobol_drawn
        return rerun

    def finish(
        self,
        problem: Problem,
        state: SearchState,
        data: Any,
        directory: Path,
        extra_summary: Mapping[str, Any],
        wall_seconds: float,
        deploy_check: str = "none",
        say: Callable[[str], None] = print,
    ) -> None:
        """Score the front once on the test split, check it in the runtime when
        ``deploy_check`` asks, and write the result files."""
        pareto = state.pareto()
        record.score_test(self.store, problem, [t.id for t in pareto], data)
        extra_summary = dict(extra_summary)
        if deploy_check != "none":
            stored = [self.store.get_trial(t.id) for t in pareto]
            members = [t for t in stored if t.has_model]
            extra_summary["deploy_check"] = record.check_deployed(
                self.store, members, deploy_check, say
            )
        record.export_search(
            self.store,
            self.search_id,
            directory,
            problem.space.names,
            extra_summary=extra_summary,
            wall_seconds=wall_seconds,
        )
