"""A deployed model's metadata: what rebuilds a :class:`~sparsemod.evaluate.ModelArtifact`.

The same dict is stored with the model in the store (and served as ``model.meta`` by the
API) and, with the file's ``index``, ``format`` and ``file`` added, written beside it as
``models/trial_<index>.json``. This module is the only place that writes or reads it.

It imports no torch: ``ModelArtifact`` is imported only when one is built back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sparsemod.evaluate import ModelArtifact

PROBLEM_KEY = "problem"
"""The key that names the model's problem (as ``summary.json`` and the API's searches do)."""

_OLD_PROBLEM_KEYS = ("problem_name",)
# models/*.json written before the metadata had one writer say "problem_name".


def artifact_metadata(artifact: ModelArtifact, problem: str) -> dict[str, Any]:
    """What rebuilds ``artifact`` besides its bytes and format, as a JSON-ready dict.

    Args:
        artifact: the deployed model.
        problem: the registered name of its problem.

    Returns:
        ``params``, ``input_shape``, ``num_classes``, ``quant_scheme`` and ``problem``.
    """
    return {
        "params": dict(artifact.params),
        "input_shape": list(artifact.input_shape),
        "num_classes": int(artifact.num_classes),
        "quant_scheme": artifact.quant_scheme,
        PROBLEM_KEY: problem,
    }


def artifact_problem(metadata: Mapping[str, Any]) -> str | None:
    """The problem that ``metadata`` names, under today's key or an older one.

    Args:
        metadata: as :func:`artifact_metadata` wrote it, now or in an older version.

    Returns:
        The problem's name, or ``None`` when the metadata names none.
    """
    for key in (PROBLEM_KEY, *_OLD_PROBLEM_KEYS):
        if metadata.get(key):
            return str(metadata[key])
    return None


def artifact_from(
    metadata: Mapping[str, Any], data: bytes, format: str | None = None
) -> ModelArtifact:
    """The model that ``metadata`` and ``data`` describe.

    Args:
        metadata: as :func:`artifact_metadata` wrote it (any version).
        data: the model's bytes.
        format: how ``data`` is encoded; ``metadata["format"]`` (the sidecar's) when omitted.

    Returns:
        The artifact, ready for :func:`sparsemod.evaluate.load_model`.

    Raises:
        KeyError: a key is missing (callers that read files say which file).
    """
    from sparsemod.evaluate import ModelArtifact

    return ModelArtifact(
        metadata["format"] if format is None else format,
        bytes(data),
        dict(metadata["params"]),
        tuple(metadata["input_shape"]),
        int(metadata["num_classes"]),
        metadata["quant_scheme"],
    )
