"""The quantization schemes (``quant_scheme``), one class each.

* ``none``: the float network.
* ``post``: static post-training int8 through PT2E (:mod:`.pt2e`), calibrated on training
  batches, saved with ``torch.export.save``; an LSTM network (which PT2E cannot quantize)
  becomes its TFLM int8 twin (:mod:`.rnn_int8`), the network TFLM runs.
* ``dynamic``: int8 weights (per output channel, symmetric) for Linear / LSTM / GRU with
  the activations quantized on the fly. Neither torchao nor a non-deprecated torch API
  quantizes LSTM / GRU dynamically, so these are sparsemod's own small layers
  (:mod:`.dynamic_int8`); they keep the weights as real int8 tensors and run anywhere
  torch runs.
* ``both``: static int8 where the layers allow it, dynamic where they do not, in one model.
  A network without LSTM / GRU is all static, and ``both`` is ``post`` exactly. With an
  LSTM / GRU, the RNN becomes a dynamic int8 RNN and every conv / linear a static int8
  layer with calibrated uint8 activations (:mod:`.static_int8`); the model is a
  ``torch.fx.GraphModule`` saved as a state dict.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from sparsemod.compress.dynamic_int8 import swap_dynamic
from sparsemod.compress.pt2e import has_recurrent, is_exported, save_exported, static_pt2e
from sparsemod.compress.rnn_int8 import RnnInt8, is_static_rnn
from sparsemod.compress.scheme import QuantLayout, QuantScheme, cpu_copy
from sparsemod.compress.static_int8 import convert_both
from sparsemod.objectives.size import SCALE_BYTES, ZERO_POINT_BYTES


class NoQuant(QuantScheme):
    """``none``: the float network, as trained and pruned."""

    name = "none"

    def apply(
        self, model: nn.Module, calibration: Iterable[torch.Tensor], example: torch.Tensor
    ) -> nn.Module:
        """A CPU copy of the float network (see :meth:`QuantScheme.apply`)."""
        return cpu_copy(model)


class PostStatic(QuantScheme):
    """``post``: static int8 through PT2E; the artifact is the exported program."""

    name = "post"
    int8_layers = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)

    def apply(
        self, model: nn.Module, calibration: Iterable[torch.Tensor], example: torch.Tensor
    ) -> nn.Module:
        """Static int8 of a copy of ``model`` (see :meth:`QuantScheme.apply`)."""
        if is_static_rnn(model):
            return RnnInt8(cpu_copy(model), example.cpu()).calibrate(calibration)
        return static_pt2e(cpu_copy(model), calibration, example.cpu())

    def predict_layout(self, model: nn.Module, example: torch.Tensor) -> QuantLayout:
        """Int8 conv / linear weights and activations, plus the activations' (scale, zero point).

        An LSTM network's layout is its (uncalibrated) TFLM int8 twin, which only
        ``runtime = tflm`` counts.

        Static int8 stores a (scale, zero point) per quantized activation: the input's and
        each conv / linear output's but the last (the logits leave in float); pooling and
        reshapes reuse their input's.
        """
        if is_static_rnn(model):
            return QuantLayout(RnnInt8(model, example))
        layers = sum(isinstance(m, self.int8_layers) for m in model.modules())
        return QuantLayout(
            model,
            self.int8_layers,
            activation_bytes=1,
            extra_size_bytes=layers * (SCALE_BYTES + ZERO_POINT_BYTES),
        )

    def save(self, deployed: nn.Module, example: torch.Tensor) -> tuple[str, bytes]:
        """``exported`` (``torch.export.save``) for a PT2E program, else a state dict."""
        if is_exported(deployed):
            return "exported", save_exported(deployed, example)
        return super().save(deployed, example)


class DynamicInt8(QuantScheme):
    """``dynamic``: int8 Linear / LSTM / GRU weights, activations quantized on the fly."""

    name = "dynamic"
    int8_layers = (nn.Linear, nn.LSTM, nn.GRU)

    def apply(
        self, model: nn.Module, calibration: Iterable[torch.Tensor], example: torch.Tensor
    ) -> nn.Module:
        """A copy of ``model`` with dynamic int8 layers (see :meth:`QuantScheme.apply`)."""
        return swap_dynamic(cpu_copy(model))

    def rebuild(self, model: nn.Module) -> nn.Module:
        """The float network with its dynamic int8 layers swapped in."""
        return swap_dynamic(model)


class Both(PostStatic):
    """``both``: ``post`` for a network without an RNN; with one, static and dynamic int8."""

    name = "both"

    def apply(
        self, model: nn.Module, calibration: Iterable[torch.Tensor], example: torch.Tensor
    ) -> nn.Module:
        """Static int8 layers beside dynamic int8 RNNs (see :meth:`QuantScheme.apply`)."""
        model = cpu_copy(model)
        if has_recurrent(model):
            return convert_both(model, calibration)
        return static_pt2e(model, calibration, example.cpu())

    def predict_layout(self, model: nn.Module, example: torch.Tensor) -> QuantLayout:
        """``post``'s layout without an RNN; with one, the untrained network quantized for real."""
        if not has_recurrent(model):
            return super().predict_layout(model, example)
        return QuantLayout(self.apply(model, [example], example))

    def rebuild(self, model: nn.Module) -> nn.Module:
        """The static / dynamic int8 structure, without calibration."""
        return convert_both(model.eval(), None)
