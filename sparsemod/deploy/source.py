"""The float network of a stored Pareto trial, and the data to calibrate and check it on.

A search keeps the deployed model of each Pareto member (``sparsemod.evaluate``'s
``ModelArtifact``): for ``quant_scheme = post`` the ``torch.export``-ed x86 PT2E int8
graph, for ``none`` / ``dynamic`` / ``both`` with an RNN the state dict of the builder's
network (with sparsemod's int8 layers swapped in). A runtime's exporter quantizes a float
network with its own quantizer, so the float network is recovered from that model:

* ``exported``: the graph itself, pruned and with batch norm folded, with every
  quantize / dequantize pair of an activation taken out and every int8 weight replaced by
  its float value (``q * scale``). These are the weights sparsemod scored; a symmetric
  per-channel quantizer with the range -127..127 gives the same int8 values back (but for
  a channel whose extreme was -128). ``torch.export`` also keeps each layer's trained
  float weight beside the int8 one, but a network re-quantized from those drifts further
  from the scored accuracy (on tiny digits networks, 4 test samples in 270 against 1).
* ``state_dict``: the model is rebuilt (``load_model``) and each int8 layer of sparsemod
  is swapped back for its float twin, holding the dequantized weights (symmetric per
  output channel, so a per-channel symmetric quantizer gives the same int8 values back).

The calibration batches are the ones the search calibrated on (the training split, the
search's seed and batch size); the check data is the test split the Pareto set was scored
on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from sparsemod.compress.dynamic_int8 import DynamicInt8Linear, DynamicInt8RNN
from sparsemod.compress.quantize import load_exported
from sparsemod.deploy.base import DeployError
from sparsemod.evaluate import ModelArtifact, load_model
from sparsemod.problems import Problem
from sparsemod.settings import default

_QD = "quantized_decomposed"


@dataclass(frozen=True)
class Source:
    """What an exporter needs for one trial.

    Attributes:
        model: the trained float network, eval mode, on the CPU.
        example: one input sample (batch size 1).
        calibration: the training batches the search calibrated on.
        test: the test split as (inputs, labels) batches.
        how: how the float network was recovered (for the report).
        lut_bits: under the search's ``compression = lut``, the trial's ``lut_bits`` (its
            weights are clustered, and a ``tflite`` export LUT-compresses them as the
            search counted); 0: no LUT.
    """

    model: nn.Module
    example: torch.Tensor
    calibration: list[torch.Tensor]
    test: list[tuple[torch.Tensor, torch.Tensor]]
    how: str
    lut_bits: int = 0


def float_network(artifact: ModelArtifact, problem: Problem) -> tuple[nn.Module, str]:
    """The float network a stored deployed model was quantized from.

    Args:
        artifact: the stored model.
        problem: its problem (rebuilds state-dict models).

    Returns:
        The float network (eval mode, CPU) and a few words on how it was recovered.

    Raises:
        DeployError: the model's format is unknown or cannot be taken back to float.
    """
    if artifact.format == "exported":
        return _strip_exported(load_exported(artifact.data))
    if artifact.format not in ("state_dict", "rnn_int8"):
        raise DeployError(f"model format {artifact.format!r} is not one of "
                          "exported, state_dict, rnn_int8")  # fmt: skip
    model = load_model(artifact, problem)
    if artifact.format == "rnn_int8":  # the twin quantizes its float network on the fly
        return model.network.eval(), "the stored TFLM int8 LSTM network's float weights"
    if artifact.quant_scheme == "none":
        return model, "the stored float state dict"
    swapped = _swap_to_float(model)
    how = f"the stored {artifact.quant_scheme} int8 model, {swapped} layers dequantized"
    return model.eval(), how


def _op(node: fx.Node, name: str) -> bool:
    return node.op == "call_function" and str(node.target).startswith(f"{_QD}.{name}")


def _strip_exported(module: fx.GraphModule) -> tuple[nn.Module, str]:
    graph = module.graph
    dequantized = 0
    for node in list(graph.nodes):
        if node.op == "call_module" and node.target == "_guards_fn":
            graph.erase_node(node)
    for node in list(graph.nodes):
        if _op(node, "dequantize_per_tensor") and _op(node.args[0], "quantize_per_tensor"):
            quant = node.args[0]
            node.replace_all_uses_with(quant.args[0])
            graph.erase_node(node)
            if not quant.users:
                graph.erase_node(quant)
        elif _op(node, "dequantize_per_channel"):
            args = [getattr(module, a.target) if isinstance(a, fx.Node) else a for a in node.args]
            weight = torch.ops.quantized_decomposed.dequantize_per_channel.default(*args)
            dequantized += 1
            name = f"_float_weight_{dequantized}"
            module.register_buffer(name, weight)
            with graph.inserting_before(node):
                new = graph.get_attr(name)
            node.replace_all_uses_with(new)
            graph.erase_node(node)
    left = [n.target for n in graph.nodes if n.op == "call_function" and _QD in str(n.target)]
    if left:
        raise DeployError(f"the stored int8 graph has quantized ops sparsemod cannot undo: {left}")
    graph.eliminate_dead_code()
    # The int8 weights the float copies replaced are attributes no node reads any more.
    used = {n.target for n in graph.nodes if n.op == "get_attr"}
    for name in [*dict(module.named_parameters()), *dict(module.named_buffers())]:
        if name not in used:
            owner, _, leaf = name.rpartition(".")
            delattr(module.get_submodule(owner), leaf)
    module.recompile()
    return module, (
        f"the stored int8 graph, quantization taken out, {dequantized} weights dequantized"
    )


class _FloatLayer(nn.Module):
    """A static int8 layer of sparsemod's ``both`` scheme, back in float."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        w = layer.weight_int8.float() * layer.scale.view(-1, *[1] * (layer.weight_int8.dim() - 1))
        if layer.dims:
            conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[layer.dims]
            self.layer = conv(
                w.shape[1] * layer.groups,
                w.shape[0],
                tuple(w.shape[2:]),
                stride=layer.stride,
                padding=layer.padding,
                dilation=layer.dilation,
                groups=layer.groups,
                bias=layer.bias is not None,
            )
        else:
            self.layer = nn.Linear(w.shape[1], w.shape[0], bias=layer.bias is not None)
        _load(self.layer, w, layer.bias)
        self.relu = nn.ReLU() if layer.relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.layer(x))


def _load(layer: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)


def _float_rnn(q: DynamicInt8RNN) -> nn.Module:
    cls = nn.LSTM if q.mode == "LSTM" else nn.GRU
    rnn = cls(
        q.input_size,
        q.hidden_size,
        num_layers=q.num_layers,
        bias=q.has_bias,
        batch_first=q.batch_first,
        bidirectional=q.bidirectional,
    )
    with torch.no_grad():
        for name, value in zip(q.names, q._weights(torch.float32), strict=True):
            getattr(rnn, name).copy_(value)
    return rnn


def _float_twin(child: nn.Module) -> nn.Module | None:
    from sparsemod.compress.static_int8 import QuantizeActivation, StaticInt8Layer

    if isinstance(child, DynamicInt8Linear):
        linear = nn.Linear(child.in_features, child.out_features, bias=child.bias is not None)
        _load(linear, child.weight_int8.float() * child.scale[:, None], child.bias)
        return linear
    if isinstance(child, DynamicInt8RNN):
        return _float_rnn(child)
    if isinstance(child, StaticInt8Layer):
        return _FloatLayer(child)
    if isinstance(child, QuantizeActivation):
        return nn.Identity()
    return None


def _swap_to_float(model: nn.Module) -> int:
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            twin = _float_twin(child)
            if twin is not None:
                setattr(parent, name, twin)
                swapped += 1
    return swapped


def trial_source(problem: Problem, artifact: ModelArtifact, config: dict[str, Any]) -> Source:
    """The float network of a stored model and the data of the search that found it.

    Args:
        problem: the search's problem.
        artifact: the trial's stored model.
        config: the search's stored configuration (its seed and training batch size).

    Returns:
        The :class:`Source` to export and check.
    """
    from sparsemod.data import tensors_of
    from sparsemod.eval_settings import calibration_batches
    from sparsemod.evaluate import EvalSettings, _example_input

    model, how = float_network(artifact, problem)
    seed = int(config.get("seed", 0))
    splits = problem.load(seed)
    settings = EvalSettings(batch_size=int(config.get("train_batch_size", 64)), seed=seed)
    calibration = [b.cpu() for b in calibration_batches(splits, settings)]
    tensors = tensors_of(splits.test)
    if tensors is not None:
        test = [(tensors[0], tensors[1])]
    else:
        test = list(_batches(splits.test, splits.collate_fn))
    bits = 0
    if config.get("compression") == "lut":
        bits = int(artifact.params.get("lut_bits", config.get("lut_bits", default("lut_bits"))))
    return Source(model.eval(), _example_input(splits), calibration, test, how, bits)


def _batches(dataset: Any, collate_fn: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    loader = torch.utils.data.DataLoader(dataset, batch_size=256, collate_fn=collate_fn)
    yield from ((torch.as_tensor(x), torch.as_tensor(y)) for x, y in loader)
