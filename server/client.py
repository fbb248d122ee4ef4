"""Loading a model downloaded from ``GET /api/v1/trials/{id}/model``.

The response's ``X-Sparsemod-Format`` header says how its bytes are encoded:

* ``exported``: ``torch.export.save`` of the int8 PT2E network. Load it with
  ``torch.export.load(io.BytesIO(data)).module()``; nothing of sparsemod is needed.
* ``state_dict``: the builder's weights; rebuilding the network needs the trial's
  parameters and problem (``GET /api/v1/trials/{id}`` gives them as ``model.meta``).

:func:`load_model_bytes` does either, and returns the network in eval mode on the CPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from sparsemod.errors import ConfigError
from sparsemod.results.artifact import artifact_from, artifact_problem


def load_model_bytes(
    data: bytes, format: str, meta: Mapping[str, Any] | None = None
) -> torch.nn.Module:
    """The network a downloaded model holds.

    Args:
        data: the response's bytes.
        format: its ``X-Sparsemod-Format`` header.
        meta: ``model.meta`` of ``GET /api/v1/trials/{id}``, needed for ``state_dict``.

    Returns:
        The network, in eval mode, on the CPU.

    Raises:
        ConfigError: an unknown format, or ``state_dict`` without ``meta`` or without its
            problem.
    """
    from sparsemod.evaluate import load_model

    if format == "exported":
        from sparsemod.compress.quantize import load_exported

        # torch.export.load(io.BytesIO(data)).module(), allowed to switch to eval mode
        return load_exported(data)
    if format not in ("state_dict", "rnn_int8"):
        raise ConfigError(f"model format {format!r} is not 'exported', 'state_dict' or 'rnn_int8'")
    if meta is None:
        raise ConfigError(f"a {format} model needs its meta (GET /api/v1/trials/{{id}})")
    from sparsemod.problems import get_problem

    problem = artifact_problem(meta)
    if problem is None:
        raise ConfigError("the model's meta names no problem (GET /api/v1/trials/{id})")
    return load_model(artifact_from(meta, data, format), get_problem(problem))
