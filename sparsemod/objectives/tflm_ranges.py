"""What the converter decides from the calibrated ranges, told by one forward pass.

litert-torch's quantizer leaves an average pool unannotated, so the converter quantizes
it with its input's range and requantizes its output to the next op's range with a
QUANTIZE op. When the two ranges are the same (the pool's input is constant over space,
e.g. behind ReLUs that are all off, so averaging changes nothing) it leaves the QUANTIZE
out. The example stands in for the calibration data: such a map is constant for every
input.
"""

from __future__ import annotations

import torch
from torch import nn


def range_keeping_pools(model: nn.Module, example: torch.Tensor) -> set[str]:
    """The average pools (module names) whose output range is their input's on ``example``.

    Args:
        model: the float network; run once in eval mode, then left as it was.
        example: one input batch.

    Returns:
        The names of the average pools after which the converter puts no QUANTIZE.
    """
    pools = {m: n for n, m in model.named_modules() if isinstance(m, (nn.AvgPool1d, nn.AvgPool2d))}
    same: set[str] = set()
    if not pools:
        return same

    def hook(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        x = inputs[0]
        low = x.min().clamp(max=0) == out.min().clamp(max=0)
        if low and x.max().clamp(min=0) == out.max().clamp(min=0):
            same.add(pools[module])

    handles = [m.register_forward_hook(hook) for m in pools]
    training = model.training
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        model.train(training)
        for h in handles:
            h.remove()
    return same
