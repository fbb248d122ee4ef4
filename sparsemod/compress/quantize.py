"""Quantization: every scheme by the name ``quant_scheme`` gives it, and :func:`quantize`.

The protocol is :mod:`.scheme` (:class:`~sparsemod.compress.scheme.QuantScheme`), the
schemes are :mod:`.schemes` (``none``, ``post``, ``dynamic``, ``both``), built on
:mod:`.pt2e`, :mod:`.dynamic_int8` and :mod:`.static_int8`. The names are declared once,
with the ``quant_scheme`` key (:data:`sparsemod.settings.QUANT_SCHEMES`); the registry
holds exactly those (a test checks).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from sparsemod.compress.pt2e import has_recurrent, is_exported, load_exported, save_exported
from sparsemod.compress.scheme import QuantLayout, QuantScheme
from sparsemod.compress.schemes import Both, DynamicInt8, NoQuant, PostStatic
from sparsemod.errors import ConfigError

# In the order of their declaration; tests/compress/test_quantize.py checks the names match.
SCHEMES: dict[str, type[QuantScheme]] = {
    cls.name: cls for cls in (PostStatic, DynamicInt8, Both, NoQuant)
}


def check_scheme(scheme: str) -> str:
    """Raises ConfigError naming the value when ``scheme`` is not a known scheme."""
    if scheme not in SCHEMES:
        raise ConfigError(
            f"quant_scheme: {scheme!r} is not one of {list(SCHEMES)}", key="quant_scheme"
        )
    return scheme


def get_scheme(name: str) -> QuantScheme:
    """The quantization scheme registered under ``name``.

    Raises:
        ConfigError: no scheme has that name; the message lists those that exist.
    """
    return SCHEMES[check_scheme(name)]()


def quantize(
    model: nn.Module, scheme: str, calibration: Iterable[torch.Tensor], example_input: torch.Tensor
) -> nn.Module:
    """Quantize a trained (and pruned) float model for deployment.

    Args:
        model: the float model; it is not changed.
        scheme: ``none``, ``post``, ``dynamic`` or ``both``.
        calibration: input batches for static calibration (``post`` and ``both``).
        example_input: one input batch, used to export the model.

    Returns:
        The deployed model, on the CPU, in eval mode.

    Raises:
        ConfigError: unknown scheme.
        CompressionError: the model cannot be quantized with that scheme.
    """
    return get_scheme(scheme).apply(model, calibration, example_input)


__all__ = [
    "SCHEMES",
    "QuantLayout",
    "QuantScheme",
    "check_scheme",
    "get_scheme",
    "has_recurrent",
    "is_exported",
    "load_exported",
    "quantize",
    "save_exported",
]
