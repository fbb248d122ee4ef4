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


# ----------------------------------------------------------------- conditional parameters

COND = SearchSpace(
    (
        IntParam("n", 1, 3),
        IntParam("c2", 4, 64, log=True, active_if={"n": [2, 3]}),
        choice("p3", ["max", "none"], active_if={"n": 3, "c2": [4, 8]}),
        FloatParam("lr", 1e-4, 1e-1, log=True),
    )
)


def test_active_if_holds_when_every_condition_and_its_parameters_do():
    assert COND.is_active("c2", {"n": 2}) and not COND.is_active("c2", {"n": 1})
    assert COND.is_active("p3", {"n": 3, "c2": 8})
    assert not COND.is_active("p3", {"n": 3, "c2": 16})
    assert not COND.is_active("p3", {"n": 2, "c2": 8})
    assert COND.is_active("lr", {})
    point = {"n": 1, "c2": 30, "p3": "none", "lr": 0.01}
    # inactive: the low end, the first choice; active values are kept
    assert COND.canonical(point) == {"n": 1, "c2": 4, "p3": "max", "lr": 0.01}
    assert COND.canonical({**point, "n": 3, "c2": 8}) == {**point, "n": 3, "c2": 8}


def test_a_conditional_space_round_trips_through_json():
    data = json.loads(json.dumps(COND.to_dict()))
    assert data["parameters"][2]["active_if"] == {"c2": [4, 8], "n": [3]}
    assert "active_if" not in data["parameters"][0]
    assert SearchSpace.from_dict(data) == COND


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ((IntParam("a", 1, 3, active_if={"b": [1]}),), r"'a': active_if names 'b', which is not"),
        ((IntParam("a", 1, 3, active_if={"a": [1]}),), r"'a': active_if names 'a', itself"),
        (
            (IntParam("a", 1, 3, active_if={"b": [7]}), IntParam("b", 1, 3)),
            r"'a': active_if: parameter 'b': 7 is outside \[1, 3\]",
        ),
        (
            (IntParam("a", 1, 3, active_if={"b": [1]}), FloatParam("b", 0.0, 1.0)),
            r"'a': active_if names 'b', a real-valued parameter",
        ),
        (
            (IntParam("a", 1, 3, active_if={"b": [1]}), IntParam("b", 1, 3, active_if={"a": [1]})),
            r"active_if conditions form a loop: a -> b -> a",
        ),
    ],
)
def test_bad_conditions_are_named_when_the_space_is_made(params, message):
    with pytest.raises(ConfigError, match=message):
        SearchSpace(params)


def test_an_empty_condition_is_refused():
    with pytest.raises(ConfigError, match="'a': active_if {} needs at least one parameter"):
        IntParam("a", 1, 3, active_if={})


def test_the_built_in_spaces_declare_their_unused_parameters():
    from sparsemod.builders.cnn import cnn_space
    from sparsemod.builders.mlp import mlp_space

    cnn = cnn_space()
    one = {**cnn.reference, "num_blocks": 1, "num_fc": 0}
    inactive = sorted(p.name for p in cnn.parameters if not cnn.is_active(p.name, one))
    blocks = [f"b{b}_{k}" for b in (2, 3) for k in ("layers", "type", "filters", "kernel", "pool")]
    assert inactive == sorted([*blocks, "fc1_units", "fc2_units", "dropout"])
    mlp = mlp_space()
    assert [mlp.is_active(f"units{i}", {"num_layers": 2}) for i in (1, 2, 3)] == [True, True, False]
