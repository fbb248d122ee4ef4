"""Every key of one candidate as one dataclass: sparsemod's own and each pruning method's.

sparsemod declares its own keys in :mod:`sparsemod.settings`
(:class:`~sparsemod.settings.CandidateCore`); each pruning method declares its keys in its
``Options`` (:mod:`sparsemod.compress.options`), found through the registry. Here the two
are joined: :data:`SPECS` has every key's declaration, and :class:`CandidateSettings` a
field for each, so that ``[TRAIN]``, ``[TEST]`` and the evaluator, which extend it, take a
method's new key without naming it. The pruning methods' keys follow ``finetune_epochs``,
beside the other pruning keys, in README's table.
"""

from __future__ import annotations

from dataclasses import field, make_dataclass
from typing import Any

from sparsemod import settings
from sparsemod.compress.registry import OPTIONS
from sparsemod.spec import Spec

__all__ = ["SPECS", "CandidateSettings"]


def _joined() -> dict[str, Spec]:
    specs: dict[str, Spec] = {}
    for key, spec in settings.SPECS.items():
        if key in OPTIONS:
            raise ValueError(f"key {key!r} is declared by sparsemod and by a pruning method")
        specs[key] = spec
        if key == "finetune_epochs":
            specs.update(OPTIONS)
    return specs


SPECS: dict[str, Spec] = _joined()
"""Every key's declaration: :data:`sparsemod.settings.SPECS` and the pruning methods'."""

CandidateSettings: Any = make_dataclass(
    "CandidateSettings",
    [(key, Any, field(default=spec.default)) for key, spec in OPTIONS.items()],
    bases=(settings.CandidateCore,),
    frozen=True,
)
CandidateSettings.__module__ = __name__  # pickled with the configs it is a base of
CandidateSettings.__doc__ = """How one candidate is trained, compressed and measured: every key.

:class:`~sparsemod.settings.CandidateCore`'s, and each pruning method's own keys
(:data:`sparsemod.compress.registry.OPTIONS`), all with the defaults of :data:`SPECS`.
``[TRAIN]`` (:class:`~sparsemod.config.TrainConfig`), ``[TEST]``
(:class:`~sparsemod.config.TestConfig`) and the evaluator
(:class:`~sparsemod.eval_settings.EvalSettings`) extend it.
"""
