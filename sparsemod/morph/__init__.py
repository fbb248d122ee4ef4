"""Network morphism: one-step mutations of a parameter dict, and warm starts from a parent.

The morphism rounds of the search take the current Pareto networks and try their
neighbours. :func:`morphs` lists every single-step change of one parameter dict, chosen by
the *role* each parameter plays (width, depth, kernel size, pruning keep ratio, anything
else). :func:`inherit_weights` then copies a trained parent's weights into a freshly built
child, Net2Net-style, so that a widened or deepened child starts out computing what its
parent computed instead of from scratch.

Both work on names only: nothing here knows which builder made a network beyond the
naming conventions of the built-in spaces (``b{k}_*``, ``fc{k}_units``, ``units{k}``).
"""

from sparsemod.morph.operators import (
    FLOAT_FACTOR,
    LINEAR_STEP,
    ROLES,
    WIDEN_FACTOR,
    Morph,
    infer_roles,
    morphs,
)
from sparsemod.morph.warm_start import inherit_weights

__all__ = [
    "FLOAT_FACTOR",
    "LINEAR_STEP",
    "ROLES",
    "WIDEN_FACTOR",
    "Morph",
    "infer_roles",
    "inherit_weights",
    "morphs",
]
