"""Problems whose networks fail on purpose, for the failure tests of every executor.

Worker processes and Ray workers find them by name (``faulty_problems:mixed``), so this
directory must be on their ``sys.path`` (or ``PYTHONPATH``). Each fault strikes only in
training mode: the search process builds and measures the networks in eval mode to cost
them before any trial runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from sparsemod.errors import BuildError
from sparsemod.problems import Problem, get_problem

BASE = get_problem("digits_mlp")

# faulty_problems:mixed picks its fault by the first layer's width
FAULT_OF_UNITS1 = {17: "bug", 18: "shape", 19: "diverge", 20: "build", 21: "out_of_memory"}


def injected_bug() -> None:
    """Stands for a bug in sparsemod (its name is looked for in the traceback)."""
    raise TypeError("injected bug: unsupported operand type(s)")


class Faulty(nn.Module):
    """The digits MLP, with a fault that strikes in its training forward pass."""

    def __init__(self, net: nn.Module, fault: str) -> None:
        super().__init__()
        self.net = net
        self.fault = fault

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if not self.training or isinstance(out, torch.fx.Proxy):
            return out  # in eval mode, or torch.fx tracing (to measure the size)
        if self.fault == "bug":
            injected_bug()
        if self.fault == "shape":
            _ = torch.zeros(2, 3) @ torch.zeros(2, 3)  # RuntimeError: shapes cannot be multiplied
        if self.fault == "diverge":
            return out * float("nan")
        if self.fault == "out_of_memory":
            _ = torch.empty(2**50, dtype=torch.uint8)  # a petabyte: the allocator refuses
        return out


def _build(fault: str | None) -> Any:
    def build(params: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int):
        which = fault or FAULT_OF_UNITS1.get(int(params["units1"]))
        if which == "build":
            raise BuildError("this candidate does not build (on purpose)")
        net = BASE.build(params, input_shape, num_classes)
        return net if which is None else Faulty(net, which)

    return build


def mixed() -> Problem:
    """The fault is chosen by ``units1`` (see ``FAULT_OF_UNITS1``); other widths train."""
    return Problem("faulty_mixed", BASE.space, _build(None), BASE.data)


def always_bug() -> Problem:
    """Every network meets :func:`injected_bug` in training."""
    return Problem("faulty_always_bug", BASE.space, _build("bug"), BASE.data)


def always_shape_mismatch() -> Problem:
    """Every network's training forward multiplies two matrices that do not fit."""
    return Problem("faulty_always_shape", BASE.space, _build("shape"), BASE.data)


def always_diverges() -> Problem:
    """Every network's training loss is NaN."""
    return Problem("faulty_always_diverges", BASE.space, _build("diverge"), BASE.data)


def never_builds() -> Problem:
    """Every network raises BuildError in its builder (the search finds it while costing)."""
    return Problem("faulty_never_builds", BASE.space, _build("build"), BASE.data)
