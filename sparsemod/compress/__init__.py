"""Compression: pruning methods and quantization schemes.

The pruning protocol is :mod:`.base` (a :class:`Pruner` returns :class:`PruneStep` s,
:mod:`.step`), the masks and their helpers are :mod:`.masks`, what a method that
trains gets is :mod:`.context`, and a method's own keys are its ``Options``
(:mod:`.options`). Pruning methods (``prune_method``), each in its own
module: ``magnitude`` and ``magnitude_layerwise`` (:mod:`.magnitude`), ``l1_structured``
(:mod:`.structured`), ``imp`` (:mod:`.lottery`), ``snip`` (:mod:`.snip`),
``dynamic_sparse`` (:mod:`.dynamic_sparse`); :mod:`.registry` names them.
Quantization schemes (``quant_scheme``), one class each behind the protocol of
:mod:`.scheme` (``apply``, ``predict_layout``, ``save`` / ``load``): ``none``, ``post``,
``dynamic`` and ``both`` (:mod:`.schemes`, built on :mod:`.pt2e`, :mod:`.dynamic_int8` and
:mod:`.static_int8`); :mod:`.quantize` names them.
"""

from __future__ import annotations

from sparsemod.compress.base import Pruner
from sparsemod.compress.context import PruneContext
from sparsemod.compress.magnitude import GlobalMagnitude, LayerwiseMagnitude
from sparsemod.compress.masks import (
    apply_masks,
    make_permanent,
    masks_of,
    prunable_weights,
    sparsity,
)
from sparsemod.compress.options import PrunerOptions, option
from sparsemod.compress.quantize import SCHEMES, check_scheme, get_scheme, quantize
from sparsemod.compress.registry import PRUNERS, get_pruner
from sparsemod.compress.scheme import QuantLayout, QuantScheme
from sparsemod.compress.step import PruneStep

__all__ = [
    "PRUNERS",
    "SCHEMES",
    "GlobalMagnitude",
    "LayerwiseMagnitude",
    "PruneContext",
    "PrunerOptions",
    "PruneStep",
    "Pruner",
    "QuantLayout",
    "QuantScheme",
    "apply_masks",
    "check_scheme",
    "get_pruner",
    "get_scheme",
    "make_permanent",
    "masks_of",
    "option",
    "prunable_weights",
    "quantize",
    "sparsity",
]
