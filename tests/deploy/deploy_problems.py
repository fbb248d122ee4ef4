"""The built-in problems narrowed to their reference network, for the deploy tests.

A tiny search of one of these trains the problem's known-good reference network (only
``keep_ratio`` is left free, in a narrow range, since Ax needs a parameter to draw), so its
Pareto model is accurate enough that re-quantizing it for a runtime moves the test
accuracy by a sample at most: the deploy check's 0.5 points are then a test of the
export, not of a weak network's noise. The deploy tests put this folder on ``sys.path``
and name these problems ``deploy_problems:<function>``.
"""

from __future__ import annotations

from dataclasses import replace

from sparsemod.problems import Problem, get_problem
from sparsemod.space import FixedParam, FloatParam, IntParam, SearchSpace


def _reference(builtin: str, name: str) -> Problem:
    base = get_problem(builtin)
    ref = dict(base.space.reference)
    free = FloatParam("keep_ratio", 0.5, 0.6)
    params = [
        free if p.name == free.name else FixedParam(p.name, ref[p.name])
        for p in base.space.parameters
    ]
    return replace(base, name=name, space=SearchSpace(params, reference=ref))


def reference_cnn() -> Problem:
    return _reference("digits_cnn", "deploy_problems:reference_cnn")


def reference_mlp() -> Problem:
    return _reference("digits_mlp", "deploy_problems:reference_mlp")


def reference_rnn() -> Problem:
    return _reference("digits_rnn", "deploy_problems:reference_rnn")


def reference_mlp_lut() -> Problem:
    """The MLP's reference network with the LUT index width searched (3 to 5 bits)."""
    base = reference_mlp()
    params = [*base.space.parameters, IntParam("lut_bits", 3, 5)]
    space = SearchSpace(params, reference={**base.space.reference, "lut_bits": 4})
    return replace(base, name="deploy_problems:reference_mlp_lut", space=space)
