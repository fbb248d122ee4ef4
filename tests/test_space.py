"""sparsemod.space: a bad parameter is named when the space is made; a space survives JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sparsemod.errors import ConfigError
from sparsemod.problems import get_problem
from sparsemod.space import FixedParam, FloatParam, IntParam, SearchSpace, choice


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: IntParam("a", 5, 2), "parameter 'a': low 5 must be below high 2"),
        (lambda: FloatParam("b", 0.5, 0.5), r"low 0.5 must be below high 0.5 \(one value is a"),
        (lambda: IntParam("a", 0, 3, log=True), "a log scale needs low > 0, got 0"),
        (lambda: IntParam("a", 1.5, 3), "bound 1.5 is not a finite integer"),
        (lambda: FloatParam("b", 0.0, float("inf")), "bound inf is not a finite number"),
        (lambda: FloatParam("b", "0", 1.0), "bound '0' is not a finite number"),
        (lambda: choice("c", []), "a choice needs at least one value"),
        (lambda: choice("c", [1, None]), r"values \[None\] are not numbers or text"),
        (lambda: IntParam("", 1, 2), "parameter name '' is not a non-empty string"),
        (lambda: SearchSpace((IntParam("a", 1, 2), IntParam("a", 1, 3))), "names repeated"),
    ],
)
def test_a_bad_parameter_is_named_when_the_space_is_made(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_numpy_bounds_are_numbers():
    assert IntParam("a", np.int64(1), np.int64(4)).check(3) == 3
    assert FloatParam("b", np.float32(0.5), 2).check(1.0) == 1.0


@pytest.mark.parametrize("name", ["digits_cnn", "digits_mlp", "digits_rnn"])
def test_every_space_survives_json(name):
    space = get_problem(name).space
    again = SearchSpace.from_dict(json.loads(json.dumps(space.to_dict())))
    assert again == space
    assert again.validate(space.reference) == space.validate(space.reference)


def test_a_mixed_space_survives_json_and_a_bad_one_is_named():
    space = SearchSpace(
        (IntParam("n", 1, 8, log=True), choice("act", ["relu", "tanh"]), choice("k", [3, 5]),
         FloatParam("lr", 1e-4, 0.1, log=True), FixedParam("bits", 8))
    )  # fmt: skip
    assert SearchSpace.from_dict(json.loads(json.dumps(space.to_dict()))) == space
    with pytest.raises(ConfigError, match="parameter kind 'matrix' is not one of"):
        SearchSpace.from_dict({"parameters": [{"kind": "matrix", "name": "m"}]})
    with pytest.raises(ConfigError, match="parameter 'n': .*high"):  # a missing bound
        SearchSpace.from_dict({"parameters": [{"kind": "int", "name": "n", "low": 1}]})
