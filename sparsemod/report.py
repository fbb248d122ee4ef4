"""Compatibility names: the code moved to :mod:`sparsemod.results`.

``sparsemod.search.loop`` still imports this module; new code imports the
``sparsemod.results`` modules directly.
"""

from __future__ import annotations

from sparsemod.results.files import write_results
from sparsemod.results.pareto import hypervolume, hypervolume_trace, pareto_mask
from sparsemod.results.reading import Results, load_results
from sparsemod.results.trials import OBJECTIVES, trials_frame

__all__ = [
    "OBJECTIVES",
    "Results",
    "hypervolume",
    "hypervolume_trace",
    "load_results",
    "pareto_mask",
    "trials_frame",
    "write_results",
]
