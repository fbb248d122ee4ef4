"""Latency measured on the device: the ``.tflite`` artifact handed to the ``latency_hook``.

The artifact is what ``sparsemod deploy --format tflite`` writes for the same network (the
``tflite`` runtime's export: litert-torch's int8 quantizer, calibrated on training
batches); the hook (:mod:`sparsemod.hooks`) flashes or runs it and returns seconds.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from sparsemod.deploy.base import DeployError, RuntimeMissing
from sparsemod.errors import BuildError
from sparsemod.hooks import measure_latency


def hook_latency(
    spec: str,
    model: nn.Module,
    example: torch.Tensor,
    calibration: Iterable[torch.Tensor],
    lut_bits: int = 0,
) -> float:
    """Export ``model`` to its ``.tflite`` artifact and return the seconds the hook measures.

    Args:
        spec: the ``latency_hook`` value, ``package.module:function``.
        model: the trained, pruned float network (eval mode); it is not changed.
        example: one input of batch size 1.
        calibration: training batches the int8 activation ranges are calibrated on.
        lut_bits: under ``compression = lut``, the candidate's ``lut_bits``: the artifact's
            weights are LUT-compressed as the search counted them
            (:mod:`sparsemod.deploy.tflite_lut`); 0: no LUT.

    Returns:
        The hook's latency, a finite number of seconds > 0.

    Raises:
        LatencyHookError: the hook raised, or returned no number of seconds > 0.
        BuildError: litert-torch cannot export this network (the candidate has no artifact
            to measure).
        RuntimeMissing: litert-torch or tflite-micro is not installed (the message names
            the extra).
    """
    from sparsemod.deploy import get_runtime

    try:
        artifact = get_runtime("tflite").export(model, example, calibration)
        if lut_bits:
            from sparsemod.deploy.tflite_lut import compress_lut

            artifact = compress_lut(artifact, lut_bits)
    except RuntimeMissing:
        raise
    except DeployError as exc:
        raise BuildError(
            f"latency_hook: the network exports to no .tflite artifact: {exc}"
        ) from exc
    return measure_latency(spec, artifact)
