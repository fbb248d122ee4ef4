"""Every hardware objective of one model from one trace."""

from __future__ import annotations

import torch
from torch import nn

from sparsemod.objectives.flops import graph_flops, latency_seconds
from sparsemod.objectives.memory import graph_working_memory
from sparsemod.objectives.size import graph_size_bytes
from sparsemod.objectives.tracer import trace


def measure_all(
    model: nn.Module,
    example_input: torch.Tensor,
    target_flops: float,
    *,
    int8_layers: tuple[type[nn.Module], ...] = (),
    activation_bytes: int | None = None,
) -> dict[str, float]:
    """All hardware objectives of one model from one trace, keyed as in a TrialResult.

    ``int8_layers`` and ``activation_bytes`` are as in :func:`model_size_bytes` and
    :func:`working_memory_bytes`.
    """
    gm = trace(model, example_input[:1])
    f = graph_flops(gm)
    return {
        "model_size_bytes": graph_size_bytes(gm, int8_layers),
        "working_memory_bytes": graph_working_memory(gm, activation_bytes),
        "flops": f,
        "latency_s": latency_seconds(f, target_flops),
    }
