"""The protocol every quantization scheme plugs into: :class:`QuantScheme`.

A scheme (``quant_scheme``) is one class, registered by its ``name`` in
:mod:`sparsemod.compress.quantize`, that knows three things about itself:

* ``apply(model, calibration, example)``: the deployed network made from a trained (and
  pruned) float one;
* ``predict_layout(model, example)``: how to count the deployed network's costs before
  training, from the float network (:class:`QuantLayout`);
* ``save(deployed, example)`` / ``load(artifact, build)``: its artifact, in one of
  :data:`ARTIFACT_FORMATS`.

The evaluator calls these and never compares scheme names. The schemes themselves are in
:mod:`sparsemod.compress.schemes`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from sparsemod.compress.pt2e import load_exported
from sparsemod.compress.rnn_int8 import RnnInt8
from sparsemod.compress.structured import shrink_to_state
from sparsemod.core.results import ModelArtifact
from sparsemod.errors import ConfigError

# ``exported``: ``torch.export.save`` of a PT2E int8 program, loaded without the builder.
# ``state_dict``: the deployed model's state dict, loaded into the builder's network once the
# scheme has rebuilt it (:meth:`QuantScheme.rebuild`).
# ``rnn_int8``: the state dict of an LSTM network's TFLM int8 twin (:mod:`.rnn_int8`: the
# float network and its activations' ranges), loaded into the builder's network wrapped.
ARTIFACT_FORMATS = ("exported", "state_dict", "rnn_int8")


@dataclass(frozen=True)
class QuantLayout:
    """How to count a deployed network's costs before training, from its float twin.

    Args:
        model: the network to measure: the float network itself, or one quantized for real
            where no count from the float network is exact.
        int8_layers: float layers of these types count as int8 stores them (see
            :func:`sparsemod.objectives.model_size_bytes`).
        activation_bytes: bytes an activation element takes (None: its dtype's size; see
            :func:`sparsemod.objectives.working_memory_bytes`).
        extra_size_bytes: bytes the deployed network stores that ``model`` does not hold,
            such as the (scale, zero point) of each activation.
    """

    model: nn.Module
    int8_layers: tuple[type[nn.Module], ...] = ()
    activation_bytes: int | None = None
    extra_size_bytes: int = 0


def cpu_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` on the CPU, in eval mode (the original is not touched)."""
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    return torch.load(buf, map_location="cpu", weights_only=False).eval()


class QuantScheme:
    """A quantization scheme. Subclasses set ``name`` and implement :meth:`apply`.

    ``int8_layers`` are the float layer types the scheme stores as int8; the default
    :meth:`predict_layout` counts them so.
    """

    name: ClassVar[str]
    int8_layers: ClassVar[tuple[type[nn.Module], ...]] = ()

    def apply(
        self, model: nn.Module, calibration: Iterable[torch.Tensor], example: torch.Tensor
    ) -> nn.Module:
        """Quantize a trained (and pruned) float model for deployment.

        Args:
            model: the float model; it is not changed.
            calibration: input batches for static calibration (read by static schemes).
            example: one input batch, used to export the model.

        Returns:
            The deployed model, on the CPU, in eval mode.

        Raises:
            CompressionError: the model cannot be quantized with this scheme.
        """
        raise NotImplementedError

    def predict_layout(self, model: nn.Module, example: torch.Tensor) -> QuantLayout:
        """How to count the deployed costs of ``model`` (untrained, pruned) before training.

        Args:
            model: the float network in eval mode, structurally compressed.
            example: one input of batch size 1.

        Returns:
            What to measure and how (see :class:`QuantLayout`).
        """
        return QuantLayout(model, self.int8_layers)

    def save(self, deployed: nn.Module, example: torch.Tensor) -> tuple[str, bytes]:
        """The artifact of a model :meth:`apply` returned: (format, data).

        The default is ``state_dict``, which :meth:`load` reads back with :meth:`rebuild`
        (``rnn_int8`` for an LSTM network's TFLM int8 twin).
        """
        buf = io.BytesIO()
        torch.save(deployed.state_dict(), buf)
        return "rnn_int8" if isinstance(deployed, RnnInt8) else "state_dict", buf.getvalue()

    def rebuild(self, model: nn.Module) -> nn.Module:
        """The builder's float network made into this scheme's deployed structure.

        A ``state_dict`` artifact loads into what this returns; the default is the float
        network itself.
        """
        return model

    def load(self, artifact: ModelArtifact, build: Callable[[], nn.Module]) -> nn.Module:
        """The deployed model an artifact of this scheme holds, in eval mode on the CPU.

        Args:
            artifact: what :meth:`save` wrote, with the candidate's parameters and shapes.
            build: gives the builder's float network for the artifact's parameters (read
                only for ``state_dict`` artifacts).

        Raises:
            ConfigError: the artifact's format is not one of :data:`ARTIFACT_FORMATS`.
        """
        if artifact.format == "exported":
            return load_exported(artifact.data)
        if artifact.format not in ARTIFACT_FORMATS:
            raise ConfigError(f"model format {artifact.format!r} is not one of "
                              f"{', '.join(ARTIFACT_FORMATS)}")  # fmt: skip
        model = build()
        state = torch.load(io.BytesIO(artifact.data), map_location="cpu", weights_only=True)
        if artifact.format == "rnn_int8":
            model = RnnInt8(model, torch.zeros(1, *artifact.input_shape))
            model.load_state_dict(state)
            return model.eval()
        shrink_to_state(model, state)
        model = self.rebuild(model)
        model.load_state_dict(state)
        return model.eval()
