"""Static int8 through PT2E: ``torch.export`` + torchao's ``prepare_pt2e`` / ``convert_pt2e``.

The eager and FX paths of ``torch.ao.quantization`` are deprecated in torch 2.13 and PT2E
is the path PyTorch points to, so that is the one ``post`` takes (and ``both`` for a
network without an RNN): the X86 quantizer, calibrated on training batches. The result is
a ``GraphModule`` with int8 weights, per-channel scales and int8 activations, saved with
``torch.export.save`` (a pickle would not load back).
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

from sparsemod.errors import CompressionError


def has_recurrent(model: nn.Module) -> bool:
    """Whether the model has an LSTM / GRU / RNN layer (which PT2E cannot quantize)."""
    return any(isinstance(m, nn.RNNBase) for m in model.modules())


def is_exported(model: nn.Module) -> bool:
    """Whether a deployed model is a PT2E program (saved with :func:`save_exported`)."""
    return isinstance(model, torch.fx.GraphModule) and any(
        n.op == "call_function" and "quantize_per_tensor" in str(n.target)
        for n in model.graph.nodes
    )


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


def static_pt2e(
    model: nn.Module, calibration: Iterable[torch.Tensor], example_input: torch.Tensor
) -> nn.Module:
    """Static int8 of a float model through PT2E, calibrated on ``calibration``.

    Args:
        model: the float model on the CPU; it is put in eval mode and exported.
        calibration: input batches for the activation ranges (at least one).
        example_input: one input batch on the CPU, to export the model.

    Returns:
        The int8 ``GraphModule``; ``eval()`` and ``train()`` are no-ops on it.

    Raises:
        CompressionError: the model has an LSTM / GRU, ``torch.export`` cannot capture it,
            or there was no calibration batch.
    """
    with _quiet():
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

        if any(isinstance(m, nn.RNNBase) for m in model.modules()):
            raise CompressionError(
                "quant_scheme 'post' (static int8) cannot quantize this recurrent network "
                "(a GRU, or an LSTM in another form than a LastStep followed by linear, ReLU "
                "and dropout layers); use 'dynamic', or 'both' under runtime = ideal"
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
