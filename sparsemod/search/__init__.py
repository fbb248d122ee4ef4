"""The search: the only package that imports Ax (in ``ax_backend``)."""

from __future__ import annotations

from sparsemod.search.loop import Cancelled, Search, SearchOutcome, Trial, run_search

__all__ = ["Cancelled", "Search", "SearchOutcome", "Trial", "run_search"]
