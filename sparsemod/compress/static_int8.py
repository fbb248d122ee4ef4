"""``quant_scheme = both`` for recurrent networks: static int8 layers beside dynamic LSTM / GRU.

PT2E cannot quantize LSTM / GRU, and ``torch.export`` inlines sparsemod's dynamic RNN into
dozens of elementwise ops that no longer read as one layer, so for a network with an RNN
``both`` is built from sparsemod's own modules on a ``torch.fx`` graph:

* LSTM / GRU become :class:`~sparsemod.compress.dynamic_int8.DynamicInt8RNN` (int8 weights,
  float activations quantized on the fly);
* every conv / linear becomes a :class:`StaticInt8Layer`: int8 weights per output channel,
  a batch norm and ReLU that follow it folded in, a calibrated (scale, zero point) for its
  uint8 input and, when every consumer reads int8, for its uint8 output;
* where a float tensor (the network input, an RNN's output) feeds a static layer, a
  :class:`QuantizeActivation` with calibrated (scale, zero point) writes its uint8 copy;
* max pooling, flatten, dropout and reshapes pass uint8 tensors through.

Activations between static layers are real ``uint8`` tensors, so the working memory the
objectives read from the recorded dtypes is 1 byte an element there. Each module follows
the :class:`~sparsemod.objectives.tracer.DeployedLayer` protocol: it reports what it stores
through ``deployed_tensors()`` (an activation's (scale, zero point) once, by the module
that writes it) and its multiply-accumulates through ``macs()``. A network without an RNN
is quantized by PT2E exactly as ``post`` (see :class:`sparsemod.compress.schemes.Both`).
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import fx, nn

from sparsemod.compress.dynamic_int8 import DynamicInt8RNN, quantize_rows
from sparsemod.errors import CompressionError
from sparsemod.objectives.tracer import symbolic_trace

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
# Ops that give a uint8 tensor for a uint8 tensor, with the same scale and zero point.
_PASS_MODULES = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.Flatten,
    nn.Unflatten,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
)
_PASS_FUNCTIONS = {torch.flatten, operator.getitem, torch.squeeze, torch.unsqueeze}
_PASS_METHODS = {"flatten", "view", "reshape", "squeeze", "unsqueeze", "contiguous"}
_RELU_FUNCTIONS = {F.relu, torch.relu}


def activation_qparams(lo: float, hi: float) -> tuple[float, int]:
    """(scale, zero point) of asymmetric uint8 quantization of the range [lo, hi]."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max((hi - lo) / 255.0, 1e-8)
    return scale, int(min(255, max(0, round(-lo / scale))))


def _quantize_uint8(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.round(x / scale) + zero.float(), 0, 255).to(torch.uint8)


class QuantizeActivation(nn.Module):
    """Writes the uint8 copy of a float activation, with a calibrated scale and zero point."""

    def __init__(self, qparams: tuple[float, int] = (1.0, 0)) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor([qparams[0]], dtype=torch.float32))
        self.register_buffer("zero_point", torch.tensor([qparams[1]], dtype=torch.uint8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _quantize_uint8(x, self.scale, self.zero_point)

    def deployed_tensors(self) -> list[tuple[torch.Tensor, str]]:
        return [(self.scale, "scale"), (self.zero_point, "zero_point")]


class StaticInt8Layer(nn.Module):
    """A conv / linear layer with int8 weights reading a uint8 activation.

    Args:
        layer: the float layer, with any batch norm already folded into it.
        relu: apply ReLU to the output (a folded ``ReLU``).
        input_qparams: (scale, zero point) of the uint8 input.
        output_qparams: (scale, zero point) of the uint8 output; ``None`` gives float.
    """

    fusable_root = True

    def __init__(
        self,
        layer: nn.Module,
        relu: bool,
        input_qparams: tuple[float, int] = (1.0, 0),
        output_qparams: tuple[float, int] | None = None,
    ) -> None:
        super().__init__()
        if getattr(layer, "padding_mode", "zeros") != "zeros":
            raise CompressionError(f"static int8 supports zero padding, not {layer.padding_mode}")
        self.dims = 0 if isinstance(layer, nn.Linear) else layer.weight.dim() - 2
        if self.dims:
            self.stride, self.padding = layer.stride, layer.padding
            self.dilation, self.groups = layer.dilation, layer.groups
        self.relu = relu
        q, scale = quantize_rows(layer.weight)
        self.register_buffer("weight_int8", q)
        self.register_buffer("scale", scale)
        self.register_buffer("zero_point", torch.zeros_like(scale, dtype=torch.int8))
        bias = None if layer.bias is None else layer.bias.detach().clone().float()
        self.register_buffer("bias", bias)
        self.register_buffer("input_scale", torch.tensor([input_qparams[0]]))
        self.register_buffer(
            "input_zero_point", torch.tensor([input_qparams[1]], dtype=torch.uint8)
        )
        self.quantized_output = output_qparams is not None
        if output_qparams is not None:
            self.register_buffer("output_scale", torch.tensor([output_qparams[0]]))
            self.register_buffer(
                "output_zero_point", torch.tensor([output_qparams[1]], dtype=torch.uint8)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8:
            raise CompressionError(f"a static int8 layer reads uint8, got {x.dtype}")
        xf = (x.float() - self.input_zero_point.float()) * self.input_scale
        w = self.weight_int8.float() * self.scale.view(-1, *[1] * (self.weight_int8.dim() - 1))
        if self.dims:
            y = _CONV_FN[self.dims](
                xf, w, self.bias, self.stride, self.padding, self.dilation, self.groups
            )
        else:
            y = F.linear(xf, w, self.bias)
        if self.relu:
            y = F.relu(y)
        if self.quantized_output:
            return _quantize_uint8(y, self.output_scale, self.output_zero_point)
        return y

    def deployed_tensors(self) -> list[tuple[torch.Tensor, str]]:
        out = [(self.weight_int8, "weight"), (self.scale, "scale"), (self.zero_point, "zero_point")]
        if self.bias is not None:
            out.append((self.bias, "bias"))
        if self.quantized_output:
            out += [(self.output_scale, "scale"), (self.output_zero_point, "zero_point")]
        return out

    def macs(self, in_shape: tuple[int, ...]) -> int:
        w = self.weight_int8.shape
        if not self.dims:
            return math.prod(in_shape[:-1]) * w[0] * w[1]
        positions = 1
        for i in range(self.dims):
            size, k = in_shape[2 + i], w[2 + i]
            pad = self.padding
            if isinstance(pad, str):
                positions *= size if pad == "same" else size - self.dilation[i] * (k - 1)
                continue
            span = size + 2 * pad[i] - self.dilation[i] * (k - 1) - 1
            positions *= span // self.stride[i] + 1
        return in_shape[0] * positions * w[0] * math.prod(w[1:])


class _Calibrating(nn.Module):
    """A float layer (batch norm folded, ReLU flag) that records its input and output range."""

    def __init__(self, layer: nn.Module, relu: bool) -> None:
        super().__init__()
        self.layer, self.relu = layer, relu
        self.seen = {"in": [math.inf, -math.inf], "out": [math.inf, -math.inf]}

    def _record(self, key: str, t: torch.Tensor) -> None:
        r = self.seen[key]
        r[0], r[1] = min(r[0], float(t.min())), max(r[1], float(t.max()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._record("in", x)
        y = self.layer(x)
        y = F.relu(y) if self.relu else y
        self._record("out", y)
        return y

    def qparams(self, key: str) -> tuple[float, int]:
        lo, hi = self.seen[key]
        return activation_qparams(lo, hi) if lo <= hi else (1.0, 0)


def fold_batch_norm(layer: nn.Module, bn: nn.Module) -> nn.Module:
    """A copy of ``layer`` with the (eval-mode) batch norm that follows it folded in."""
    layer = copy.deepcopy(layer)
    with torch.no_grad():
        inv = torch.rsqrt(bn.running_var + bn.eps)
        if bn.affine:
            inv = inv * bn.weight
        bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
        new_bias = (bias - bn.running_mean) * inv + (bn.bias if bn.affine else 0.0)
        layer.weight.mul_(inv.view(-1, *[1] * (layer.weight.dim() - 1)))
        layer.bias = nn.Parameter(new_bias.detach().clone())
    return layer


def _set(gm: fx.GraphModule, target: str, module: nn.Module) -> None:
    parent, _, name = target.rpartition(".")
    setattr(gm.get_submodule(parent) if parent else gm, name, module)


def _module(gm: fx.GraphModule, n: fx.Node) -> nn.Module | None:
    return gm.get_submodule(n.target) if n.op == "call_module" else None


def _is_relu(gm: fx.GraphModule, n: fx.Node) -> bool:
    return (
        isinstance(_module(gm, n), nn.ReLU)
        or (n.op == "call_function" and n.target in _RELU_FUNCTIONS)
        or (n.op == "call_method" and n.target == "relu")
    )


def _passes(gm: fx.GraphModule, n: fx.Node) -> bool:
    m = _module(gm, n)
    if m is not None:
        return isinstance(m, _PASS_MODULES)
    if n.op == "call_function":
        return n.target in _PASS_FUNCTIONS
    return n.op == "call_method" and n.target in _PASS_METHODS


def swap_rnns(model: nn.Module) -> nn.Module:
    """Replace every LSTM / GRU by its dynamic int8 twin, in place."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (nn.LSTM, nn.GRU)):
                setattr(parent, name, DynamicInt8RNN(child))
    return model


def _fuse(gm: fx.GraphModule) -> list[fx.Node]:
    """Fold batch norm and ReLU into each conv / linear; the calibrating layer nodes."""
    layers = []
    for n in list(gm.graph.nodes):
        m = _module(gm, n)
        if not isinstance(m, _LAYERS):
            continue
        users = list(n.users)
        if len(users) == 1 and isinstance(_module(gm, users[0]), _BN):
            m = fold_batch_norm(m, gm.get_submodule(users[0].target))
            users[0].replace_all_uses_with(n)
            gm.graph.erase_node(users[0])
            users = list(n.users)
        relu = len(users) == 1 and _is_relu(gm, users[0])
        if relu:
            users[0].replace_all_uses_with(n)
            gm.graph.erase_node(users[0])
        _set(gm, n.target, _Calibrating(m, relu))
        layers.append(n)
    return layers


def convert_both(model: nn.Module, calibration: Iterable[torch.Tensor] | None) -> fx.GraphModule:
    """Static int8 layers and dynamic int8 RNNs in one model (see the module docstring).

    Args:
        model: a float eval-mode model on the CPU; it is changed (pass a copy).
        calibration: input batches for the activation ranges; ``None`` builds the structure
            only (to load a saved state dict into).

    Returns:
        The quantized model, a ``torch.fx.GraphModule`` in eval mode.

    Raises:
        CompressionError: the model cannot be traced, or has an RNN other than LSTM / GRU.
    """
    swap_rnns(model.eval())
    try:
        gm = symbolic_trace(model)
    except Exception as exc:  # fx raises many kinds; the user needs the reason
        raise CompressionError(
            f"quant_scheme 'both' needs a network torch.fx can trace: {exc}"
        ) from exc
    layers = _fuse(gm)
    gm.recompile()
    if calibration is not None:
        seen = 0
        with torch.no_grad():
            for batch in calibration:
                gm(batch.cpu())
                seen += 1
        if seen == 0:
            raise CompressionError("static quantization needs at least one calibration batch")
    is_layer = set(layers)

    def wants_int8(n: fx.Node) -> bool:
        users = list(n.users)
        return bool(users) and all(
            u in is_layer or (_passes(gm, u) and wants_int8(u)) for u in users
        )

    out_q = {n: gm.get_submodule(n.target).qparams("out") for n in layers if wants_int8(n)}

    def source_qparams(n: fx.Node) -> tuple[float, int] | None:
        """The qparams of ``n`` when it is a uint8 tensor, else None."""
        if n in is_layer:
            return out_q.get(n)
        if _passes(gm, n) and n.args and isinstance(n.args[0], fx.Node):
            return source_qparams(n.args[0])
        return None

    quantizers: dict[fx.Node, fx.Node] = {}
    for n in layers:
        cal = gm.get_submodule(n.target)
        src = n.args[0]
        in_q = source_qparams(src)
        if in_q is None:
            if src not in quantizers:
                name = f"act_quant_{len(quantizers)}"
                gm.add_submodule(name, QuantizeActivation(cal.qparams("in")))
                with gm.graph.inserting_after(src):
                    quantizers[src] = gm.graph.call_module(name, (src,))
            n.replace_input_with(src, quantizers[src])
            quant = gm.get_submodule(quantizers[src].target)
            in_q = (float(quant.scale), int(quant.zero_point))
        _set(gm, n.target, StaticInt8Layer(cal.layer, cal.relu, in_q, out_q.get(n)))
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm.eval()
