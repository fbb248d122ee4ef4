"""Recurrent classifiers for sequences: an LSTM or GRU read to the end, then a linear head."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from sparsemod.errors import BuildError, ConfigError
from sparsemod.space import FloatParam, IntParam, SearchSpace, choice

_CELLS: dict[str, type[nn.LSTM | nn.GRU]] = {"lstm": nn.LSTM, "gru": nn.GRU}

_REFERENCE: dict[str, Any] = {
    "cell": "lstm",
    "num_layers": 1,
    "hidden": 64,
    "dropout": 0.0,
    "lr": 0.005,
    "keep_ratio": 0.5,
}


class LastStep(nn.Module):
    """Run a batch-first recurrent layer and keep only its output at the last time step.

    ``nn.LSTM`` and ``nn.GRU`` return ``(output, state)``, which ``nn.Sequential`` cannot
    pass on; this wrapper is the one non-standard module the builders use. Its forward has no
    control flow on tensor values, so ``torch.fx`` traces through it with the recurrent
    layer as a leaf.

    Args:
        rnn: an ``nn.LSTM`` or ``nn.GRU`` built with ``batch_first=True``.
    """

    def __init__(self, rnn: nn.LSTM | nn.GRU) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return out[:, -1]


def rnn_space() -> SearchSpace:
    """The RNN search space, with a one-layer LSTM reference network.

    Returns:
        A space with ``cell``, ``num_layers``, ``hidden``, ``dropout``, and the training keys
        ``lr`` and ``keep_ratio``.
    """
    params = (
        choice("cell", list(_CELLS)),
        IntParam("num_layers", 1, 2),
        IntParam("hidden", 8, 128, log=True),
        FloatParam("dropout", 0.0, 0.5),
        FloatParam("lr", 1e-4, 1e-1, log=True),
        FloatParam("keep_ratio", 0.05, 1.0),
    )
    return SearchSpace(params, dict(_REFERENCE))


def build_rnn(
    params: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int
) -> nn.Sequential:
    """Build a recurrent classifier from one point of :func:`rnn_space`.

    ``dropout`` is applied between stacked recurrent layers (when there are two) and to the
    last time step's output before the head. ``lr`` and ``keep_ratio`` are ignored.

    Args:
        params: a complete parameter dict of :func:`rnn_space`.
        input_shape: ``(seq_len, features)`` of one sequence; batches are batch-first.
        num_classes: number of output logits.

    Returns:
        An ``nn.Sequential`` with children ``encoder`` (a :class:`LastStep` whose ``rnn`` is
        the ``nn.LSTM``/``nn.GRU``), ``dropout`` and ``out``.

    Raises:
        ConfigError: a parameter is unknown, missing or out of range, or ``num_classes`` < 1.
        BuildError: ``input_shape`` is not 2-dimensional positive integers.
    """
    p = rnn_space().validate(params)
    shape = tuple(input_shape)
    if len(shape) != 2:
        raise BuildError(
            f"the RNN needs sequences shaped (seq_len, features), got input shape {shape}"
        )
    if not all(isinstance(d, int) and d > 0 for d in shape):
        raise BuildError(f"input shape {shape} must be positive integers")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")

    num_layers, hidden, dropout = int(p["num_layers"]), int(p["hidden"]), float(p["dropout"])
    # torch warns when inter-layer dropout is asked of a single layer, where it does nothing.
    rnn = _CELLS[str(p["cell"])](
        shape[1],
        hidden,
        num_layers,
        batch_first=True,
        dropout=dropout if num_layers > 1 else 0.0,
    )
    return nn.Sequential(
        OrderedDict(
            [
                ("encoder", LastStep(rnn)),
                ("dropout", nn.Dropout(dropout)),
                ("out", nn.Linear(hidden, num_classes)),
            ]
        )
    )
