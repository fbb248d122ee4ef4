"""The search: the only package that imports Ax (in ``ax_backend``).

* :mod:`~sparsemod.search.loop`: :class:`Search`, which drives the phases, the executor
  and the journal;
* :mod:`~sparsemod.search.phases`: Sobol, GP (pool or Ax) and morph phases, the stopper;
* :mod:`~sparsemod.search.state`: the trials, the front and the history;
* :mod:`~sparsemod.search.costs`: exact costs before training, limits, reference point;
* :mod:`~sparsemod.search.journal`: every write to the store;
* :mod:`~sparsemod.search.reporter`: the progress lines.
"""

from __future__ import annotations

from sparsemod.search.loop import Cancelled, Search, SearchOutcome, Trial, run_search

__all__ = ["Cancelled", "Search", "SearchOutcome", "Trial", "run_search"]
