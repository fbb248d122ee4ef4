"""What the converter decides from the calibrated ranges, told by one forward pass.

litert-torch's quantizer leaves an average pool unannotated, so the converter quantizes
it with its input's range and requantizes its output to the next op's range with a
QUANTIZE op. When the two ranges are the same (the pool's input is constant over space,
e.g. behind ReLUs that are all off, so averaging changes nothing) it leaves the QUANTIZE
out. The example stands in for the calibration data: such a map is constant for every
input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


@contextlib.contextmanager
def range_keeping_pools(model: nn.Module) -> Iterator[set[str]]:
    """Watch ``model``'s average pools while the block runs it (the tracer's one pass).

    Args:
        model: the float network; forward hooks on its average pools, removed after.

    Yields:
        A set that the block's forward passes fill with the names of the average pools
        whose output range is their input's: after those the converter puts no QUANTIZE.
    """
    pools = {m: n for n, m in model.named_modules() if isinstance(m, (nn.AvgPool1d, nn.AvgPool2d))}
    same: set[str] = set()

    def hook(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        x = inputs[0]
        low = x.min().clamp(max=0) == out.min().clamp(max=0)
        if low and x.max().clamp(min=0) == out.max().clamp(min=0):
            same.add(pools[module])

    handles = [m.register_forward_hook(hook) for m in pools]
    try:
        yield same
    finally:
        for h in handles:
            h.remove()
