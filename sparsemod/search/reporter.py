"""Who hears about a search's progress: the console is one reporter, anything else another.

The loop calls a :class:`Reporter` with a line for each event (start, phase end, resume)
and with each finished trial. :class:`ConsoleReporter` prints them, one line a trial, as
``python main.py`` and the service's worker show them.
"""

from __future__ import annotations

import math
import sys
from typing import Protocol, TextIO

from sparsemod.core.results import STOPPED
from sparsemod.evaluate import COMPLETED
from sparsemod.search.state import SearchState, Trial


class Reporter(Protocol):
    """Receives a search's progress."""

    def message(self, line: str) -> None:
        """An event of the search, as one line."""
        ...

    def trial(self, trial: Trial, label: str, state: SearchState) -> None:
        """``trial`` finished (completed or failed); ``label`` names its phase and round."""
        ...


class SilentReporter:
    """Hears nothing (an ask/tell study's default: its caller has the trials)."""

    def message(self, line: str) -> None:
        pass

    def trial(self, trial: Trial, label: str, state: SearchState) -> None:
        pass


class ConsoleReporter:
    """Prints each event and each trial to ``out`` (standard output by default)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out if out is not None else sys.stdout

    def message(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def trial(self, trial: Trial, label: str, state: SearchState) -> None:
        r = trial.result
        head = f"[{label}] trial {trial.index}"
        if trial.parent is not None:
            head += f" <- {trial.parent} ({trial.morph})"
        if r.status == STOPPED:
            self.message(
                f"{head} stopped after {r.stop_epoch} epochs: validation error "
                f"{r.stop_val_error:.4f}, predicted final {r.predicted_error:.4f}, cannot join "
                f"the front | {r.total_seconds:.1f} s"
            )
            return
        if r.status != COMPLETED:
            # All of it: under debug the reason ends with the traceback (DESIGN.md).
            self.message(f"{head} FAILED: {r.failure_reason or 'no reason recorded'}")
            return
        self.message(
            f"{head}: error {r.error:.4f}, size {format_bytes(r.model_size_bytes)}, "
            f"memory {format_bytes(r.working_memory_bytes)}, latency {r.latency_s * 1e3:.3g} ms, "
            f"{r.total_seconds:.1f} s | pareto {len(state.pareto())}, "
            f"HV {state.hypervolume():.4f}"
        )


def format_bytes(n: float | None) -> str:
    """``n`` bytes for a progress line: ``512 B``, ``2.1 KiB``, ``-`` when unknown."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "-"
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{int(n)} B"
