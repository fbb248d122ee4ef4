"""Multi-layer perceptrons over a flattened input of any shape."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from torch import nn

from sparsemod.errors import BuildError, ConfigError
from sparsemod.space import FloatParam, IntParam, SearchSpace, choice

MAX_LAYERS = 3
_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}

_REFERENCE: dict[str, Any] = {
    "num_layers": 2,
    "units1": 128,
    "units2": 64,
    "units3": 32,
    "activation": "relu",
    "dropout": 0.1,
    "lr": 0.003,
    "keep_ratio": 0.5,
}


def mlp_space() -> SearchSpace:
    """The MLP search space, with a two-hidden-layer reference network.

    Returns:
        A space with ``num_layers``, ``units1``..``units3``, ``activation``, ``dropout``, and
        the training keys ``lr`` and ``keep_ratio``; ``units{i}`` is active when
        ``num_layers >= i``.
    """
    params = (
        IntParam("num_layers", 1, MAX_LAYERS),
        IntParam("units1", 16, 512, log=True),
        *(
            IntParam(
                f"units{i}", 16, 512, log=True,
                active_if={"num_layers": list(range(i, MAX_LAYERS + 1))},
            )  # fmt: skip
            for i in range(2, MAX_LAYERS + 1)
        ),
        choice("activation", list(_ACTIVATIONS)),
        FloatParam("dropout", 0.0, 0.5),
        FloatParam("lr", 1e-4, 1e-1, log=True),
        FloatParam("keep_ratio", 0.05, 1.0),
    )
    return SearchSpace(params, dict(_REFERENCE))


def build_mlp(
    params: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int
) -> nn.Sequential:
    """Build an MLP from one point of :func:`mlp_space`.

    Sizes after ``num_layers`` are ignored, as are ``lr`` and ``keep_ratio``.

    Args:
        params: a complete parameter dict of :func:`mlp_space`.
        input_shape: shape of one example, of any number of dimensions; it is flattened.
        num_classes: number of output logits.

    Returns:
        An ``nn.Sequential`` with children ``flatten``, ``fc1``, ``fc1_act``, ``fc1_drop``,
        ..., ``out``.

    Raises:
        ConfigError: a parameter is unknown, missing or out of range, or ``num_classes`` < 1.
        BuildError: ``input_shape`` is empty or has a dimension that is not a positive integer.
    """
    p = mlp_space().validate(params)
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
        raise BuildError(f"input shape {shape} must be one or more positive integers")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")

    act = _ACTIVATIONS[str(p["activation"])]
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    features = math.prod(shape)
    for i in range(1, int(p["num_layers"]) + 1):
        units = int(p[f"units{i}"])
        layers += [
            (f"fc{i}", nn.Linear(features, units)),
            (f"fc{i}_act", act()),
            (f"fc{i}_drop", nn.Dropout(float(p["dropout"]))),
        ]
        features = units
    layers.append(("out", nn.Linear(features, num_classes)))
    return nn.Sequential(OrderedDict(layers))
