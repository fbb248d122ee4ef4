"""What every deployment runtime gives: an artifact, and the runtime's own report on it.

Each runtime is one module of this package (``tflite``, ``executorch``, ``onnx``) holding a
:class:`Runtime`: ``export`` turns a trained float network into the bytes the board loads,
fully int8; ``check`` loads those bytes in the runtime on this machine, runs data through
them and reads the runtime's own figures back. Every figure in a :class:`RuntimeReport`
comes from the runtime (its interpreter, its planner, the file's length), never from
sparsemod's cost model: it is the judge the objectives are held to.

The runtimes themselves (litert-torch, tflite-micro, executorch, onnx, onnxruntime) are
imported only inside the runtime modules, and only when a function that needs them runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from sparsemod.errors import SparsemodError


class DeployError(SparsemodError):
    """A network could not be exported to, or checked in, a runtime.

    The message is one line naming what is wrong: the format, the missing extra to
    install, the op and layer the runtime cannot run, or the two accuracies that disagree.
    """


class DeployCheckError(DeployError):
    """The artifact exported, but the runtime's check disagrees with sparsemod (the
    accuracy is off): not bad input, a failed check."""


class RuntimeMissing(DeployError):
    """The runtime a format needs is not installed; the message names the extra."""


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of an artifact, as the runtime sees it.

    ``scale`` and ``zero_point`` map the int8 values to real ones
    (``real = scale * (q - zero_point)``); both are ``None`` for a float tensor.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None


@dataclass(frozen=True)
class Artifact:
    """The bytes one runtime loads, and how to feed them.

    ``format`` is the runtime's name (``tflite``, ``executorch``, ``onnx``); ``suffix`` the
    file suffix (``.tflite``, ``.pte``, ``.onnx``). ``meta`` holds what the exporter knows
    that a reader may want (the quantizer used, the converter's version).
    """

    format: str
    suffix: str
    data: bytes
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def size_bytes(self) -> int:
        """The artifact's length in bytes: what it takes in flash."""
        return len(self.data)


@dataclass(frozen=True)
class RuntimeReport:
    """What the runtime says about an artifact, read from the runtime itself.

    ``memory_bytes`` is the working memory the runtime plans for one inference (TFLM's
    arena, ExecuTorch's planned buffers, onnxruntime's none: ``None``). ``memory_split``
    names its parts as the runtime names them (TFLM: ``activations`` = the arena's head,
    ``persistent`` = its tail). ``accuracy`` is top-1 over the data ``check`` was given.
    """

    runtime: str
    artifact_bytes: int
    accuracy: float
    samples: int
    memory_bytes: int | None = None
    memory_split: Mapping[str, int] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)


class Runtime(Protocol):
    """One deployment runtime (see the module docstring)."""

    name: str
    extra: str  # the pip extra that installs it: ``pip install "sparsemod[<extra>]"``
    requires: tuple[str, ...]  # the modules it imports (to say early that one is missing)

    def export(
        self,
        model: nn.Module,
        example: torch.Tensor,
        calibration: Iterable[torch.Tensor],
    ) -> Artifact:
        """Quantize ``model`` (a trained float network, eval mode) to int8 and export it.

        Args:
            model: the float network, pruned and fine-tuned; it is not changed.
            example: one input batch (batch size 1) that fixes the input shape.
            calibration: input batches the activation ranges are calibrated on (the
                training split, never the test split).
        """
        ...

    def check(
        self, artifact: Artifact, data: Iterable[tuple[torch.Tensor, torch.Tensor]]
    ) -> RuntimeReport:
        """Load ``artifact`` in the runtime, run ``data`` (inputs, labels) through it and
        read the runtime's figures back."""
        ...


def require(module: str, runtime: str, extra: str) -> Any:
    """Import ``module`` for ``runtime``, or say which extra installs it.

    Args:
        module: the dotted module name (``litert_torch``, ``onnxruntime``, ...).
        runtime: the format it serves, for the message.
        extra: the pip extra that installs it.

    Returns:
        The imported module.

    Raises:
        DeployError: the module is not installed (one line naming the extra).
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RuntimeMissing(
            f"format {runtime!r} needs {module}, which is not installed ({exc}); "
            f'install it with: pip install "sparsemod[{extra}]"'
        ) from exc


def missing_runtime(format: str) -> str | None:
    """What a format lacks on this machine, as one line naming the extra; None if nothing."""
    import importlib.util

    from sparsemod.deploy import get_runtime

    runtime = get_runtime(format)
    for module in runtime.requires:
        if importlib.util.find_spec(module) is None:
            return (
                f"format {format!r} needs {module}, which is not installed; install it with: "
                f'pip install "sparsemod[{runtime.extra}]"'
            )
    return None


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename,
    so that ``path`` is either the whole new content or what it was before.

    Args:
        path: the file to write (its folder must exist).
        data: the bytes.

    Returns:
        The path written.
    """
    import os
    import tempfile

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def gather(data: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> tuple[np.ndarray, np.ndarray]:
    """All (inputs, labels) batches as two numpy arrays (float inputs, flat labels).

    Raises:
        DeployError: there is no data.
    """
    xs, ys = [], []
    for x, y in data:
        xs.append(torch.as_tensor(x).detach().cpu().float().numpy())
        ys.append(torch.as_tensor(y).detach().cpu().numpy().reshape(-1))
    if not xs:
        raise DeployError("check: no data to run through the artifact")
    return np.concatenate(xs), np.concatenate(ys)


def quantize_input(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Float samples to the artifact's int8 input: ``round(x / scale) + zero_point``.

    Args:
        x: float samples.
        spec: the artifact's input (a float input passes unchanged).

    Returns:
        The int8 (or float32) array to feed.
    """
    if spec.scale is None or spec.zero_point is None:
        return x.astype(np.float32)
    q = np.round(x / spec.scale) + spec.zero_point
    return np.clip(q, -128, 127).astype(np.int8)
