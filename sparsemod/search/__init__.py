"""The search: the only package that imports Ax (in ``ax_backend``).

* :mod:`~sparsemod.search.study`: :class:`Study`, ask/tell: the phases, Ax, the journal;
* :mod:`~sparsemod.search.loop`: :class:`Search`, a study driven by sparsemod's evaluator
  and an executor (what ``python main.py`` runs);
* :mod:`~sparsemod.search.rounds`: which phase asks next, rounds, the stopper's ends;
* :mod:`~sparsemod.search.told`: a study's arguments and told values, checked;
* :mod:`~sparsemod.search.phases`: Sobol, GP (pool or Ax) and morph phases, the stopper;
* :mod:`~sparsemod.search.state`: the trials, the front and the history;
* :mod:`~sparsemod.search.costs`: exact costs before training, limits, reference point;
* :mod:`~sparsemod.search.journal`: every write to the store;
* :mod:`~sparsemod.search.reporter`: the progress lines.
"""

from __future__ import annotations

from sparsemod.search.loop import Cancelled, Search, SearchOutcome, Trial, run_search
from sparsemod.search.study import Study

__all__ = ["Cancelled", "Search", "SearchOutcome", "Study", "Trial", "run_search"]
