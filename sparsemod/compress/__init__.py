"""Compression: pruning methods and quantization schemes.

Pruning methods (``prune_method``), each in its own module: ``magnitude`` and
``magnitude_layerwise`` (:mod:`.prune`), ``l1_structured`` (:mod:`.structured`), ``imp``
(:mod:`.lottery`), ``snip`` (:mod:`.snip`), ``dynamic_sparse`` (:mod:`.dynamic_sparse`).
Quantization schemes (``quant_scheme``): :mod:`.quantize` and :mod:`.static_int8`.
"""

from __future__ import annotations

from sparsemod.compress.context import PruneContext, PruneOptions
from sparsemod.compress.prune import (
    GlobalMagnitude,
    LayerwiseMagnitude,
    Pruner,
    PruneStep,
    apply_masks,
    make_permanent,
    masks_of,
    prunable_weights,
    sparsity,
)
from sparsemod.compress.quantize import SCHEMES, check_scheme, quantize
from sparsemod.compress.registry import PRUNERS, get_pruner

__all__ = [
    "PRUNERS",
    "SCHEMES",
    "GlobalMagnitude",
    "LayerwiseMagnitude",
    "PruneContext",
    "PruneOptions",
    "PruneStep",
    "Pruner",
    "apply_masks",
    "check_scheme",
    "get_pruner",
    "make_permanent",
    "masks_of",
    "prunable_weights",
    "quantize",
    "sparsity",
]
