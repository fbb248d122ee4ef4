"""Compression: pruning (``prune``) and quantization (``quantize``)."""

from __future__ import annotations

from sparsemod.compress.prune import (
    PRUNERS,
    GlobalMagnitude,
    Pruner,
    PruneStep,
    get_pruner,
    make_permanent,
    prunable_weights,
    sparsity,
)
from sparsemod.compress.quantize import SCHEMES, check_scheme, quantize

__all__ = [
    "PRUNERS",
    "SCHEMES",
    "GlobalMagnitude",
    "PruneStep",
    "Pruner",
    "check_scheme",
    "get_pruner",
    "make_permanent",
    "prunable_weights",
    "quantize",
    "sparsity",
]
