"""The search: the only package that imports Ax (in ``ax_backend``).

* :mod:`~sparsemod.search.study`: :class:`Study`, ask/tell: the phases, Ax, the journal;
* :mod:`~sparsemod.search.problem_study`: :class:`ProblemStudy`, a study over a problem's
  builder (costs from building each candidate, the morphisms, the evaluation settings);
* :mod:`~sparsemod.search.loop`: :class:`Search`, a problem's study driven by sparsemod's
  evaluator and an executor (what ``python main.py`` runs);
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
from sparsemod.search.problem_study import ProblemStudy, problem_study
from sparsemod.search.study import Study

__all__ = [
    "Cancelled", "ProblemStudy", "Search", "SearchOutcome", "Study", "Trial", "problem_study",
    "run_search",
]  # fmt: skip
