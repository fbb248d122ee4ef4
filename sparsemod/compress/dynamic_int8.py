"""Dynamic int8 layers: int8 weights, activations quantized on the fly (``quant_scheme = dynamic``).

Neither torchao nor a non-deprecated torch API quantizes LSTM / GRU dynamically, so these
are sparsemod's own small layers. They keep the weights as real int8 tensors (symmetric,
per output channel) and run anywhere torch runs; each follows the
:class:`~sparsemod.objectives.tracer.DeployedLayer` protocol. ``both`` reuses
:class:`DynamicInt8RNN` for the recurrent layers (:mod:`sparsemod.compress.static_int8`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sparsemod.errors import CompressionError
from sparsemod.objectives.flops import rnn_macs


def quantize_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per output channel: ``w ≈ q * scale[:, None]``; zeros stay zero."""
    flat = w.detach().reshape(w.shape[0], -1)
    scale = flat.abs().amax(dim=1).clamp(min=1e-12) / 127.0
    q = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.reshape(w.shape), scale.to(torch.float32)


def _fake_quant_activation(x: torch.Tensor) -> torch.Tensor:
    """Round an activation through uint8 with a per-tensor range, as dynamic quant does."""
    lo = torch.clamp(x.detach().amin(), max=0.0)
    hi = torch.clamp(x.detach().amax(), min=0.0)
    scale = torch.clamp((hi - lo) / 255.0, min=1e-12)
    zero = torch.round(-lo / scale)
    return (torch.clamp(torch.round(x / scale) + zero, 0, 255) - zero) * scale


class DynamicInt8Linear(nn.Module):
    """A Linear layer stored as int8 weights with a float scale per output channel."""

    fusable_root = True

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        q, scale = quantize_rows(linear.weight)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight_int8", q)
        self.register_buffer("scale", scale)
        self.register_buffer("zero_point", torch.zeros_like(scale, dtype=torch.int8))
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight_int8.to(x.dtype) * self.scale[:, None]
        return F.linear(_fake_quant_activation(x), w, self.bias)

    def deployed_tensors(self) -> list[tuple[torch.Tensor, str]]:
        out = [(self.weight_int8, "weight"), (self.scale, "scale"), (self.zero_point, "zero_point")]
        return out + ([(self.bias, "bias")] if self.bias is not None else [])

    def macs(self, in_shape: tuple[int, ...]) -> int:
        rows = 1
        for d in in_shape[:-1]:
            rows *= d
        return rows * self.in_features * self.out_features


class DynamicInt8RNN(nn.Module):
    """An LSTM / GRU whose weight matrices are int8 with a float scale per row."""

    def __init__(self, rnn: nn.RNNBase) -> None:
        super().__init__()
        if rnn.mode not in ("LSTM", "GRU") or getattr(rnn, "proj_size", 0):
            raise CompressionError(f"dynamic int8 supports LSTM and GRU, not {rnn.mode}")
        self.mode = rnn.mode
        self.input_size, self.hidden_size = rnn.input_size, rnn.hidden_size
        self.num_layers, self.bidirectional = rnn.num_layers, rnn.bidirectional
        self.batch_first, self.has_bias = rnn.batch_first, rnn.bias
        self.names = list(rnn._flat_weights_names)
        for name in self.names:
            t = getattr(rnn, name).detach()
            key = name.replace(".", "_")
            if name.startswith("weight"):
                q, scale = quantize_rows(t)
                self.register_buffer(key + "_int8", q)
                self.register_buffer(key + "_scale", scale)
                self.register_buffer(key + "_zero_point", torch.zeros_like(scale, dtype=torch.int8))
            else:
                self.register_buffer(key, t.clone())

    def _weights(self, dtype: torch.dtype) -> list[torch.Tensor]:
        out = []
        for name in self.names:
            if name.startswith("weight"):
                q = getattr(self, name + "_int8")
                out.append(q.to(dtype) * getattr(self, name + "_scale")[:, None])
            else:
                out.append(getattr(self, name))
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, object]:
        dirs = 2 if self.bidirectional else 1
        batch = x.shape[0] if self.batch_first else x.shape[1]
        h0 = torch.zeros(
            self.num_layers * dirs, batch, self.hidden_size, dtype=x.dtype, device=x.device
        )
        x = _fake_quant_activation(x)
        weights = self._weights(x.dtype)
        if self.mode == "LSTM":
            out, h, c = torch._VF.lstm(
                x,
                (h0, h0.clone()),
                weights,
                self.has_bias,
                self.num_layers,
                0.0,
                False,
                self.bidirectional,
                self.batch_first,
            )
            return out, (h, c)
        out, h = torch._VF.gru(
            x,
            h0,
            weights,
            self.has_bias,
            self.num_layers,
            0.0,
            False,
            self.bidirectional,
            self.batch_first,
        )
        return out, h

    def deployed_tensors(self) -> list[tuple[torch.Tensor, str]]:
        out = []
        for name in self.names:
            key = name.replace(".", "_")
            if name.startswith("weight"):
                out += [
                    (getattr(self, key + "_int8"), "weight"),
                    (getattr(self, key + "_scale"), "scale"),
                    (getattr(self, key + "_zero_point"), "zero_point"),
                ]
            else:
                out.append((getattr(self, key), "bias"))
        return out

    def macs(self, in_shape: tuple[int, ...]) -> int:
        return rnn_macs(
            self.mode,
            in_shape,
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.bidirectional,
            self.batch_first,
        )


def swap_dynamic(model: nn.Module) -> nn.Module:
    """Replace every Linear / LSTM / GRU by its dynamic int8 twin, in place.

    Raises:
        CompressionError: the model has none of those layers.
    """
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, DynamicInt8Linear(child))
                swapped += 1
            elif isinstance(child, (nn.LSTM, nn.GRU)):
                setattr(parent, name, DynamicInt8RNN(child))
                swapped += 1
    if swapped == 0:
        raise CompressionError(
            "quant_scheme 'dynamic' found no Linear, LSTM or GRU layer to quantize; "
            "use 'post' for convolutional networks"
        )
    return model.eval()
