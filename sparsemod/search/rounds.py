"""Which phase asks next, and which round each arm belongs to: the study's schedule.

Each phase runs for its budget of rounds of ``batch_size`` arms. A round closes when it
is full or its phase gave fewer arms than asked; once all of its arms are told, its
hypervolume is recorded (in order) and the phase's stopper may end the phase. Sobol's
rounds depend on no result, so they may be asked for together.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sparsemod.search.phases import Phase
from sparsemod.search.state import SearchState, Trial


@dataclass
class Round:
    """One round of a phase: its arms (trial indices) and what it cost."""

    number: int  # 1-based, within its phase
    asked_at: float
    trials: list[int] = field(default_factory=list)
    closed: bool = False  # takes no more arms
    propose_seconds: float = 0.0
    done: bool = False  # its hypervolume is recorded
    closed_at: float = 0.0
    restored: bool = False  # asked before the study was loaded: its timings are unknown


@dataclass
class Run:
    """A phase and its rounds so far."""

    phase: Phase
    rounds: list[Round] = field(default_factory=list)
    hv: list[float] = field(default_factory=list)
    finished: bool = False

    def proposed(self) -> int:
        return sum(len(r.trials) for r in self.rounds)


class Schedule:
    """The phases of a study in order, with their rounds.

    Args:
        phases: the phases, in order (:func:`~sparsemod.search.phases.plan`).
        batch_size: arms per round.
        say: where the stopper's decisions are said.
    """

    def __init__(self, phases: Sequence[Phase], batch_size: int, say: Callable[[str], None]):
        self.runs = [Run(p) for p in phases]
        self.batch_size = batch_size
        self.say = say
        self._round_of: dict[int, Round] = {}

    def free(self, run: Run) -> int:
        """How many arms the phase may still be asked for now."""
        bs, phase = self.batch_size, run.phase
        if phase.all_at_once:
            return phase.rounds * bs - run.proposed()
        last = run.rounds[-1] if run.rounds else None
        if last is not None and not last.closed:
            return bs - len(last.trials)
        return bs if len(run.rounds) < phase.rounds else 0

    def place(self, run: Run, arms: list[Trial], asked: int, t0: float, t1: float) -> None:
        """Put the arms asked of the phase at ``t0`` (given at ``t1``) in its rounds; a
        phase that gave fewer than ``asked`` has no more to give for that round (Sobol:
        at all)."""
        touched: list[Round] = []
        for trial in arms:
            last = run.rounds[-1] if run.rounds else None
            if last is None or last.closed:
                last = Round(len(run.rounds) + 1, t1)
                run.rounds.append(last)
            last.trials.append(trial.index)
            self._round_of[trial.index] = last
            if len(last.trials) == self.batch_size:
                last.closed = True
            if not touched or touched[-1] is not last:
                touched.append(last)
        for r in touched:
            r.propose_seconds += (t1 - t0) / len(touched)
        if len(arms) < asked:
            touched[-1].closed = True
            if run.phase.all_at_once:
                run.finished = True

    def end(self, run: Run, state: SearchState) -> None:
        """The phase asks no more."""
        run.finished = True
        if run.rounds:
            run.rounds[-1].closed = True
        self.close(state)

    def label(self, trial: Trial) -> str:
        """``phase round/rounds`` of a trial, for its progress line."""
        r = self._round_of.get(trial.index)
        rounds = next((x.phase.rounds for x in self.runs if x.phase.name == trial.phase), 0)
        return f"{trial.phase} {r.number}/{rounds}" if r else trial.phase

    def close(self, state: SearchState) -> None:
        """Record the hypervolume of each round all of whose trials are told, in order; a
        phase whose stopper says so ends."""
        for run in self.runs:
            for i, r in enumerate(run.rounds):
                if r.done:
                    continue
                if not r.closed or any(state.trials[j].result is None for j in r.trials):
                    break
                hv = state.hypervolume(upto=max(r.trials))
                now = time.perf_counter()
                # rounds asked together (Sobol) share the wall time: each counts from the
                # end of the one before
                since = max([r.asked_at] + [q.closed_at for q in run.rounds[:i]])
                r.done, r.closed_at = True, now
                run.hv.append(hv)
                state.hv_history.append(hv)
                state.rounds.append(
                    {
                        "phase": run.phase.name, "round": r.number, "arms": len(r.trials),
                        "propose_seconds": r.propose_seconds,
                        "evaluate_seconds": 0.0 if r.restored else max(0.0, now - since),
                        "hypervolume": hv,
                    }
                )  # fmt: skip
                stopper = run.phase.stopper
                if not run.finished and stopper is not None and stopper.stops(run.hv):
                    self.say(
                        f"[{run.phase.name}] stopper: {stopper.reason()}; "
                        f"phase ends after round {r.number}"
                    )
                    run.finished = True

    def rebuild(self, state: SearchState) -> None:
        """A loaded study's rounds, from its stored trials (rounds of ``batch_size`` in
        the order they were asked); a phase is over when a later one has begun."""
        bs = self.batch_size
        for i, run in enumerate(self.runs):
            mine = [t for t in state.trials if t.phase == run.phase.name]
            for start in range(0, len(mine), bs):
                chunk = mine[start : start + bs]
                r = Round(len(run.rounds) + 1, 0.0, [t.index for t in chunk], len(chunk) == bs)
                r.restored = True
                run.rounds.append(r)
                for t in chunk:
                    self._round_of[t.index] = r
            later = {x.phase.name for x in self.runs[i + 1 :]}
            if any(t.phase in later for t in state.trials):
                self.end(run, state)
        self.close(state)
