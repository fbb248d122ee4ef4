"""Quantization: the one module that knows how a network becomes int8.

Schemes (``quant_scheme``):

* ``post``: static post-training int8 through PT2E (``torch.export`` + torchao's
  ``prepare_pt2e`` / ``convert_pt2e`` with the X86 quantizer), calibrated on training
  batches. The eager and FX paths of ``torch.ao.quantization`` are deprecated in torch 2.13
  and PT2E is the path PyTorch points to, so that is the one we take. The result is a
  ``GraphModule`` with int8 weights, per-channel scales and int8 activations; it is saved
  with ``torch.export.save``.
* ``dynamic``: int8 weights (per output channel, symmetric) for Linear / LSTM / GRU with
  the activations quantized on the fly, as dynamic quantization does. Neither torchao nor
  a non-deprecated torch API quantizes LSTM / GRU dynamically, so these are sparsemod's
  own small layers (:mod:`sparsemod.compress.dynamic_int8`); they keep the
  weights as real int8 tensors and run anywhere torch runs.
* ``both``: static int8 where the layers allow it, dynamic where they do not, in one
  model. A network without LSTM / GRU is all static, and ``both`` is ``post`` exactly. With
  an LSTM / GRU, the RNN becomes a dynamic int8 RNN and every conv / linear a static int8
  layer with calibrated uint8 activations (:mod:`sparsemod.compress.static_int8`); the
  model is a ``torch.fx.GraphModule`` saved as a state dict.
* ``none``: the float network.
"""

from __future__ import annotations

import contextlib
import io
import logging
import types
import warnings
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from sparsemod.compress.dynamic_int8 import swap_dynamic
from sparsemod.compress.static_int8 import convert_both
from sparsemod.errors import CompressionError, ConfigError
from sparsemod.settings import QUANT_SCHEMES

SCHEMES = QUANT_SCHEMES  # declared with the quant_scheme key (sparsemod.settings)


def check_scheme(scheme: str) -> str:
    """Raises ConfigError naming the value when ``scheme`` is not a known scheme."""
    if scheme not in SCHEMES:
        raise ConfigError(
            f"quant_scheme: {scheme!r} is not one of {list(SCHEMES)}", key="quant_scheme"
        )
    return scheme


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
    check_scheme(scheme)
    model = _cpu_copy(model)
    if scheme == "none":
        return model
    if scheme == "dynamic":
        return swap_dynamic(model)
    if scheme == "both" and has_recurrent(model):
        return convert_both(model, calibration)
    return _static_pt2e(model, calibration, example_input.cpu())


def has_recurrent(model: nn.Module) -> bool:
    """Whether the model has an LSTM / GRU / RNN layer (which PT2E cannot quantize)."""
    return any(isinstance(m, nn.RNNBase) for m in model.modules())


def is_exported(model: nn.Module) -> bool:
    """Whether a deployed model is a PT2E program (saved with :func:`save_exported`)."""
    return isinstance(model, torch.fx.GraphModule) and any(
        n.op == "call_function" and "quantize_per_tensor" in str(n.target)
        for n in model.graph.nodes
    )


def _cpu_copy(model: nn.Module) -> nn.Module:
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    return torch.load(buf, map_location="cpu", weights_only=False).eval()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # torchao logs its failed probes of optional CUDA kernels and torch.export warns about
    # its internals; neither concerns the user.
    for name in ("torchao", "torch.utils._pytree", "torch._export", "torch.export"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _export(model: nn.Module, example_input: torch.Tensor) -> torch.export.ExportedProgram:
    x = (
        example_input[:2]
        if example_input.shape[0] >= 2
        else example_input.repeat(2, *[1] * (example_input.dim() - 1))
    )
    batch = torch.export.Dim("batch", min=1)
    return torch.export.export(model, (x,), dynamic_shapes=({0: batch},))


def _static_pt2e(
    model: nn.Module, calibration: Iterable[torch.Tensor], example_input: torch.Tensor
) -> nn.Module:
    with _quiet():
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

        if any(isinstance(m, nn.RNNBase) for m in model.modules()):
            raise CompressionError(
                "quant_scheme 'post' (static int8) cannot quantize LSTM / GRU layers; "
                "use 'dynamic' or 'both' for recurrent networks"
            )
        model.eval()  # export the inference graph: dropout off, batch norm on running stats
        try:
            graph = _export(model, example_input).module()
        except Exception as exc:
            raise CompressionError(f"torch.export could not capture the model: {exc}") from exc
        quantizer = xiq.X86InductorQuantizer()
        quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(graph, quantizer)
        seen = 0
        with torch.no_grad():
            for batch in calibration:
                prepared(batch.cpu())
                seen += 1
        if seen == 0:
            raise CompressionError("static quantization needs at least one calibration batch")
        converted = convert_pt2e(prepared)
    return _inference_only(converted)


def _inference_only(module: nn.Module) -> nn.Module:
    """Let an exported int8 module take ``eval()`` / ``train()`` calls, as no-ops.

    Exported modules refuse both. torchao's ``allow_exported_model_train_eval`` accepts
    them by rewriting dropout and batch-norm patterns, exporting those patterns again on
    every call (0.2 s each, most of a trial's time when accuracy is measured a few times).
    The graph here was exported from a network in eval mode, so it is already the
    inference graph: there is nothing to switch, and a quantized graph cannot be trained.
    """

    def train(self: nn.Module, mode: bool = True) -> nn.Module:
        return self

    def eval(self: nn.Module) -> nn.Module:
        return self

    for m in module.modules():
        m.training = False
    module.train = types.MethodType(train, module)  # type: ignore[method-assign]
    module.eval = types.MethodType(eval, module)  # type: ignore[method-assign]
    return module


def save_exported(model: nn.Module, example_input: torch.Tensor) -> bytes:
    """Serialise a PT2E model with ``torch.export.save`` (a pickle would not load back)."""
    buf = io.BytesIO()
    with _quiet():
        torch.export.save(_export(model, example_input.cpu()), buf)
    return buf.getvalue()


def load_exported(data: bytes) -> nn.Module:
    """The runnable module saved by :func:`save_exported`."""
    with _quiet():
        # The import registers the int8 ops (quantized_decomposed) the saved graph calls;
        # a process that never quantized (the search's, with worker processes) lacks them.
        import torchao.quantization.pt2e  # noqa: F401

        module = torch.export.load(io.BytesIO(data)).module()
    return _inference_only(module)
