"""The int8 flatbuffer's quantization, for :mod:`sparsemod.deploy.tflite`: litert-torch's
PT2E quantizer for most networks, AI Edge Quantizer for a recurrent one (why: that module's
docstring). Needs ``pip install "sparsemod[tflite]"``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable

import torch
from torch import nn

from sparsemod.deploy.base import DeployError, require

NAME = "tflite"
EXTRA = "tflite"


def pt2e_int8(model: nn.Module, example: torch.Tensor, calibration: Iterable[torch.Tensor]):
    """The network as a PT2E int8 graph with litert's symmetric per-channel quantizer."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    require("litert_torch", NAME, EXTRA)
    from litert_torch.quantize.pt2e_quantizer import (
        PT2EQuantizer,
        get_symmetric_quantization_config,
    )

    quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    pair = example.repeat(2, *[1] * (example.dim() - 1))
    try:
        graph = torch.export.export(
            model, (pair,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},)
        ).module()
        batched = True
    except Exception:  # a network that only exports at one batch size: calibrate sample-wise
        graph = torch.export.export(model, (example,)).module()
        batched = False
    prepared = prepare_pt2e(graph, quantizer)
    seen = 0
    with torch.no_grad():
        for batch in calibration:
            for x in [batch] if batched else batch.split(1):
                prepared(x.cpu())
            seen += 1
    if not seen:
        raise DeployError("tflite: calibration needs at least one input batch")
    quantized = convert_pt2e(prepared, fold_quantize=False)
    # The graph was exported in eval mode (dropout off, batch norm folded): only the flag
    # is left to set (torchao's move_exported_model_to_eval re-exports patterns, ~3 s).
    for m in quantized.modules():
        m.training = False
    return quantized, quantizer


def recurrent_int8(
    model: nn.Module, example: torch.Tensor, calibration: Iterable[torch.Tensor]
) -> bytes:
    """A recurrent network as a fully int8 flatbuffer (see the module docstring)."""
    litert_torch = require("litert_torch", NAME, EXTRA)
    require("ai_edge_quantizer", NAME, EXTRA)
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    with tempfile.TemporaryDirectory(prefix="sparsemod-tflite-") as tmp:
        path = os.path.join(tmp, "float.tflite")
        litert_torch.convert(model, (example,)).export(path)
        signature = Interpreter(model_path=path).get_signature_runner()
        (name,) = signature.get_input_details()
        samples = [
            {name: x.numpy()}
            for batch in calibration
            for x in batch.detach().cpu().float().split(1)
        ]
        if not samples:
            raise DeployError("tflite: calibration needs at least one input batch")
        q = quantizer.Quantizer(path)
        q.load_quantization_recipe(recipe.static_wi8_ai8())
        return _inline(bytes(q.quantize(q.calibrate({"serving_default": samples})).quantized_model))


def _inline(data: bytes) -> bytes:
    """The model with every buffer inside the flatbuffer.

    From 256 KiB of weights on, AI Edge Quantizer writes the large buffers after the
    flatbuffer, by offset; TFLM does not read those and would run the model without its
    weights. Reading the model back (the reader takes the data in) and writing it again
    with the quantizer's own writer puts them inside, as for a smaller model.
    """
    from ai_edge_litert.tools import flatbuffer_utils
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    root = schema.Model.GetRootAsModel(data, 0)
    if not any(root.Buffers(i).Offset() > 1 for i in range(root.BuffersLength())):
        return data
    model = tfl_flatbuffer_utils.read_model(data)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
