"""sparsemod: multi-objective, hardware-aware neural architecture search for small devices."""

from __future__ import annotations

__version__ = "0.1.0"
