"""A user's own problem: a search space, a network builder and the data, in one file.

Point config.ini at it with ``problem = examples.custom_problem:problem`` (run from the
repository root), or register it for good through the entry-point group
``sparsemod.problems`` in your package's pyproject.toml.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

from sparsemod.errors import BuildError
from sparsemod.problems import Problem
from sparsemod.space import FloatParam, IntParam, SearchSpace, choice


def space() -> SearchSpace:
    """Two conv layers whose widths, kernel and pooling are searched, plus the usual."""
    return SearchSpace(
        (
            IntParam("conv1", 2, 32, log=True),
            IntParam("conv2", 2, 32, log=True),
            choice("kernel", [3, 5]),
            choice("pool", ["max", "avg"]),
            FloatParam("lr", 1e-3, 3e-2, log=True),
            FloatParam("keep_ratio", 0.1, 1.0),  # pruning keep ratio, searched
        ),
        reference={
            "conv1": 8,
            "conv2": 16,
            "kernel": 3,
            "pool": "max",
            "lr": 0.01,
            "keep_ratio": 0.5,
        },
    )


def build(params: dict, input_shape: tuple, num_classes: int) -> nn.Module:
    """The builder contract: params, the shape of one sample, the number of classes."""
    channels, height, width = input_shape
    if min(height, width) < 4:
        raise BuildError(f"input {height}x{width} is too small for two poolings")
    pool = nn.MaxPool2d if params["pool"] == "max" else nn.AvgPool2d
    k = params["kernel"]
    return nn.Sequential(
        nn.Conv2d(channels, params["conv1"], k, padding=k // 2),
        nn.ReLU(),
        pool(2),
        nn.Conv2d(params["conv1"], params["conv2"], k, padding=k // 2),
        nn.ReLU(),
        pool(2),
        nn.Flatten(),
        nn.Linear(params["conv2"] * (height // 4) * (width // 4), num_classes),
    )


def data(seed: int) -> list[TensorDataset]:
    """[train, val, test]: here the embedded digits, split by hand to show the format."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(y)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    return [
        TensorDataset(x[:1200], y[:1200]),
        TensorDataset(x[1200:1500], y[1200:1500]),
        TensorDataset(x[1500:], y[1500:]),
    ]


def problem() -> Problem:
    return Problem("custom_digits", space(), build, data)
