"""Which candidates are the same network: a fingerprint of a network as it would be trained.

Two points of a space can give one network: a parameter the network does not use (a
third layer's width when there are two layers, whether declared with ``active_if`` or
not), or two values the builder maps to the same layers. Training both spends a trial on
a result already known. :func:`network_fingerprint` hashes what decides the result:

* the built network: every module's type, name and configuration (its public attributes:
  channels, kernel, stride, padding, dropout rate, ...), and its initial weights, built
  under the search's seed as the evaluator builds it;
* the training keys the evaluator reads from the parameters (``lr``, ``keep_ratio``, and
  ``lut_bits`` under ``compression = lut``);
* the evaluation settings that change the result (pruning, quantization, runtime, seed,
  batch size, ...), all but the epochs.

The epochs are left out: a network trained in the Sobol phase is not trained again in a
later phase that trains longer (a morph child warm-started from it is a different
network). What a builder keeps outside its modules' attributes and weights (a closure in
``forward``) is not seen.
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import torch
from torch import nn

from sparsemod.eval_settings import EvalSettings
from sparsemod.evaluate import build_network
from sparsemod.problems import Problem
from sparsemod.train import seeded

TRAINING_KEYS = {"lr": "lr", "keep_ratio": "keep_ratio", "lut_bits": "lut_bits"}
"""Parameters the evaluator reads besides the builder, with the setting each overrides."""

# Settings that change neither the network nor its numbers (the epochs: see above).
_NOT_RESULT = frozenset(
    {"epochs", "debug", "device", "keep_model", "keep_trained", "model_front", "score_test"}
    | {"early_stop"}
)


def network_fingerprint(
    problem: Problem,
    params: Mapping[str, Any],
    settings: EvalSettings,
    input_shape: tuple[int, ...],
    num_classes: int,
) -> str:
    """A hex digest equal for two candidates exactly when they train the same network.

    Raises:
        BuildError: the parameters do not give a network.
        ConfigError: ``params`` are not a point of the space.
    """
    params = problem.space.validate(params)
    with seeded(settings.seed):
        model = build_network(problem, params, None, (tuple(input_shape), num_classes))
    return model_fingerprint(model, params, settings)


def model_fingerprint(model: nn.Module, params: Mapping[str, Any], settings: EvalSettings) -> str:
    """:func:`network_fingerprint` of ``model``, built from the validated ``params`` under
    ``settings.seed`` and not yet compressed or trained."""
    h = hashlib.sha256()
    _hash_model(h, model)
    for key, setting in TRAINING_KEYS.items():
        if key == "lut_bits" and settings.compression != "lut":
            continue  # read only under compression = lut
        h.update(f"{key}={float(params.get(key, getattr(settings, setting))):.10g};".encode())
    for f in fields(settings):
        if f.name not in _NOT_RESULT:
            h.update(f"{f.name}={getattr(settings, f.name)!r};".encode())
    return h.hexdigest()


def _hash_model(h: Any, model: nn.Module) -> None:
    for name, module in model.named_modules():
        h.update(f"[{name}:{type(module).__module__}.{type(module).__qualname__}".encode())
        for attr, value in sorted(vars(module).items()):
            if not attr.startswith("_") and attr != "training" and _plain(value):
                h.update(f" {attr}={value!r}".encode())
        h.update(b"]")
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())


def _plain(value: Any) -> bool:
    if isinstance(value, (str, bool, numbers.Number)) or value is None:
        return True
    return isinstance(value, tuple) and all(_plain(v) for v in value)
