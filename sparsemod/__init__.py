"""sparsemod: multi-objective, hardware-aware neural architecture search for small devices."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_results": "sparsemod.results.reading",
    "evaluate": "sparsemod.evaluate",
    "EvalSettings": "sparsemod.evaluate",
    "get_problem": "sparsemod.problems",
    "Problem": "sparsemod.problems",
    "Search": "sparsemod.search",
    "Study": "sparsemod.search",
    "SearchSpace": "sparsemod.space",
}


def __getattr__(name: str) -> Any:
    # Imported on first use: `import sparsemod` stays light (no torch, no Ax).
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sparsemod' has no attribute {name!r}")


__all__ = [
    "EvalSettings", "Problem", "Search", "SearchSpace", "Study", "evaluate", "get_problem",
    "load_results",
]  # fmt: skip
