"""Static int8 of an LSTM or GRU network, as TensorFlow Lite Micro runs it.

The deployed TFLM model of a recurrent network (``sparsemod.deploy.tflite``) is the float
network converted by litert-torch, which unrolls the recurrent layer over the sequence,
then quantized by AI Edge Quantizer's ``static_wi8_ai8`` recipe. :class:`RnnInt8` runs that
same int8 graph in torch, tensor for tensor, so that the accuracy a search stores for a
recurrent network under ``runtime = tflm`` is the accuracy of the network as it ships:

* per layer, one FULLY_CONNECTED over the whole sequence (input to gates, ``b_ih``), then
  per step a SLICE of it; at step 0 (``h = 0``) the recurrent product is ``b_hh``, an int8
  constant; later a FULLY_CONNECTED of ``h`` (with ``b_hh``) and SLICEs of its gates;
* an LSTM step: ADD of the two projections, LOGISTIC (int8 out: scale 1/256, zero point
  -128) and TANH (1/128, 0) of the gates, MUL and ADD for ``c`` (no forget gate at step
  0, ``c = 0``), TANH and MUL for ``h``;
* a GRU step: ADD and LOGISTIC for ``r`` and ``z``; MUL of ``r`` by the recurrent part of
  ``n``, ADD and TANH for ``n``; SUB ``h - n``, MUL by ``z`` and ADD ``n`` for the new ``h``;
* the steps' ``h`` are concatenated (a QUANTIZE to the concatenation's range for every step
  but the last, which is written in it directly) and the next layer or the head reads it;
* weights: int8, symmetric per output channel (``max |w| / 127``); biases: int32 at the
  input scale times the weight scale;
* activations: int8, asymmetric over ``[min(lo, 0), max(hi, 0)]``, where ``lo`` / ``hi``
  are the float network's per-sample minimum / maximum on the calibration batches, sample
  by sample in order, averaged as AI Edge Quantizer does (``lo = 0.95 lo + 0.05 lo_new``).

Each int8 value is emulated as its float (``(q - zero_point) * scale``) and each op
computed in float and rounded to its output's grid. Against TFLM's integer kernels this
differs where a value lies within float rounding of a grid midpoint; on digits networks
the predictions agree on all but 0 to 2 of 270 test samples
(``tests/compress/test_rnn_int8.py``).

The supported networks are the recurrent builder's: a :class:`~sparsemod.builders.rnn.LastStep`
over a batch-first, one-directional ``nn.LSTM`` or ``nn.GRU`` with biases, then dropout,
linear and ReLU layers. Anything else raises ``CompressionError``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

import torch
from torch import nn

from sparsemod.errors import CompressionError

SMOOTHING = 0.95  # AI Edge Quantizer's moving average of each tensor's min / max
LOGISTIC = (1.0 / 256, -128)  # TFLM's fixed int8 output of LOGISTIC
TANH = (1.0 / 128, 0)  # and of TANH

Quant = Callable[[str, torch.Tensor], torch.Tensor]


def _rnn_of(model: nn.Module) -> nn.LSTM | nn.GRU:
    if not isinstance(model, nn.Sequential) or not len(model):
        raise CompressionError("static int8 of a recurrent network needs an nn.Sequential "
                               f"whose first layer reads the sequence, got {type(model).__name__}")
    encoder = model[0]
    rnn = getattr(encoder, "rnn", None)
    if type(encoder).__name__ != "LastStep" or not isinstance(rnn, nn.LSTM | nn.GRU):
        raise CompressionError(f"static int8 of a recurrent network supports a LastStep over "
                               f"an nn.LSTM or nn.GRU as its first layer, got "
                               f"{type(encoder).__name__}")  # fmt: skip
    if not rnn.batch_first or rnn.bidirectional or rnn.proj_size or not rnn.bias:
        raise CompressionError(f"static int8 supports a batch-first, one-directional "
                               f"{type(rnn).__name__} with biases and no projection")
    for i, layer in enumerate(model[1:], 1):
        if not isinstance(layer, nn.Linear | nn.Dropout | nn.ReLU):
            raise CompressionError(f"static int8 of a recurrent network: layer {i} "
                                   f"({type(layer).__name__}) after the {type(rnn).__name__} "
                                   "is not supported (linear, ReLU and dropout are)")
    return rnn


def is_static_rnn(model: nn.Module) -> bool:
    """Whether ``model`` is a network :class:`RnnInt8` takes."""
    try:
        _rnn_of(model)
    except CompressionError:
        return False
    return True


def affine(lo: torch.Tensor, hi: torch.Tensor) -> tuple[float, int]:
    """AI Edge Quantizer's asymmetric int8 (scale, zero point) of the range [lo, hi]."""
    lo64, hi64 = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = max(hi64 - lo64, 1e-9) / 255
    return scale, int(round(-128 - lo64 / scale))


def fake(x: torch.Tensor, scale: float, zero: int) -> torch.Tensor:
    """``x`` rounded to the int8 grid of (scale, zero point), as a float."""
    q = torch.clamp(torch.round(x / scale) + zero, -128, 127)
    return (q - zero) * scale


def _weight(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8 weight (as floats) and its scales."""
    scale = w.abs().amax(dim=1).clamp_min(1e-9) / 127
    return torch.clamp(torch.round(w / scale[:, None]), -127, 127) * scale[:, None], scale


def _bias(b: torch.Tensor, in_scale: float, w_scale: torch.Tensor) -> torch.Tensor:
    step = in_scale * w_scale
    return torch.round(b / step) * step


def _moving(values: torch.Tensor) -> torch.Tensor:
    """The moving average over per-sample values in order (the first one starts it)."""
    n = len(values)
    weights = (1 - SMOOTHING) * SMOOTHING ** torch.arange(n - 1, -1, -1, dtype=torch.float64)
    weights[0] = SMOOTHING ** (n - 1)
    return (weights * values.double()).sum()


class RnnInt8(nn.Module):
    """The static int8 network TFLM runs for an LSTM network (see the module docstring).

    Args:
        model: the trained float network (it is deep-copied; its weights are quantized on
            the fly, so the float network stays recoverable: :attr:`network`).
        example: one input ``(1, seq_len, features)``: the graph is unrolled over its length.

    Raises:
        CompressionError: a network this module does not emulate.
    """

    def __init__(self, model: nn.Module, example: torch.Tensor) -> None:
        super().__init__()
        _rnn_of(model)
        self.network = copy.deepcopy(model).eval()
        self.names = self._names(example[:1])
        self.register_buffer("ranges", torch.zeros(len(self.names), 2, dtype=torch.float64))
        self._index = {n: i for i, n in enumerate(self.names)}

    def _names(self, example: torch.Tensor) -> list[str]:
        seen: list[str] = []
        with torch.no_grad():
            self._run(example.float(), lambda name, x: seen.append(name) or x, False)
        return seen

    @torch.no_grad()
    def calibrate(self, batches: Iterable[torch.Tensor]) -> RnnInt8:
        """Set every activation's range from the float network, sample by sample in order.

        Raises:
            CompressionError: no calibration batch.
        """
        lows: dict[str, list[torch.Tensor]] = {n: [] for n in self.names}
        highs: dict[str, list[torch.Tensor]] = {n: [] for n in self.names}

        def record(name: str, x: torch.Tensor) -> torch.Tensor:
            flat = x.reshape(x.shape[0], -1)
            lows[name].append(flat.amin(1))
            highs[name].append(flat.amax(1))
            return x

        seen = 0
        for batch in batches:
            self._run(batch.detach().cpu().float(), record, False)
            seen += 1
        if not seen:
            raise CompressionError("static int8 calibration needs at least one input batch")
        for name, i in self._index.items():
            self.ranges[i, 0] = _moving(torch.cat(lows[name]))
            self.ranges[i, 1] = _moving(torch.cat(highs[name]))
        return self

    def params(self, name: str) -> tuple[float, int]:
        """The (scale, zero point) of one activation, as the int8 flatbuffer stores it."""
        lo, hi = self.ranges[self._index[name]]
        return affine(lo, hi)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The int8 network's output, dequantized."""
        return self._run(x.float(), lambda name, t: fake(t, *self.params(name)), True)

    def _run(self, x: torch.Tensor, q: Quant, int8: bool) -> torch.Tensor:
        """The network's forward, ``q`` applied to each activation TFLM stores: in int8
        (weights and biases on their grids, fixed LOGISTIC / TANH outputs) or in float."""
        rnn = self.network[0].rnn
        layer = self._lstm if isinstance(rnn, nn.LSTM) else self._gru
        seq, source = q("input", x), "input"
        for k in range(rnn.num_layers):
            seq, source = layer(rnn, k, seq, source, q, int8), f"l{k}.seq"
        h = seq[:, -1]
        for j, layer in enumerate(self.network[1:], 1):
            if isinstance(layer, nn.Linear):
                h = nn.functional.linear(h, *self._affine(layer.weight, layer.bias, source, int8))
                fused = j + 1 < len(self.network) and isinstance(self.network[j + 1], nn.ReLU)
                h, source = q(f"fc{j}", torch.relu(h) if fused else h), f"fc{j}"
        return h

    def _affine(self, w: torch.Tensor, b: torch.Tensor | None, source: str, int8: bool):
        """A fully connected op's weight and bias: int8 / int32 on their grids, or float."""
        if not int8:
            return w, b
        wq, scale = _weight(w)
        return wq, None if b is None else _bias(b, self.params(source)[0], scale)

    def _lstm(self, rnn: nn.LSTM, k: int, seq: torch.Tensor, source: str, q: Quant,
              int8: bool) -> torch.Tensor:
        gates, w_hh, b_hh, (sig, tanh) = self._projection(rnn, k, seq, source, q, int8)
        n = rnn.hidden_size
        steps, c, h, hs = seq.shape[1], None, None, []
        for t in range(steps):
            if h is None:  # h = 0: the recurrent product is the constant b_hh
                g = q(f"l{k}.g0", gates[:, 0] + q(f"l{k}.b_hh", b_hh.expand(len(seq), -1)))
            else:
                hh = nn.functional.linear(h, *self._affine(w_hh, b_hh, f"l{k}.h{t - 1}", int8))
                g = q(f"l{k}.g{t}", q(f"l{k}.hh{t}", hh) + gates[:, t])
            i, f, gg, o = g[:, :n], g[:, n : 2 * n], g[:, 2 * n : 3 * n], g[:, 3 * n :]
            ig = q(f"l{k}.ig{t}", sig(i) * tanh(gg))
            c = ig if c is None else q(f"l{k}.c{t}", q(f"l{k}.fc{t}", sig(f) * c) + ig)
            h = self._step_out(q, f"l{k}.h{t}", sig(o) * tanh(c), t == steps - 1, hs)
        # the steps' h concatenated: each earlier step requantized into the sequence's range
        return q(f"l{k}.seq", torch.stack(hs, 1))

    def _gru(self, rnn: nn.GRU, k: int, seq: torch.Tensor, source: str, q: Quant,
             int8: bool) -> torch.Tensor:
        gates, w_hh, b_hh, (sig, tanh) = self._projection(rnn, k, seq, source, q, int8)
        n, batch = rnn.hidden_size, len(seq)
        steps, h, hs = seq.shape[1], None, []
        for t in range(steps):
            x = gates[:, t]
            if h is None:  # h = 0: the recurrent parts are the biases, int8 constants
                b = [q(f"l{k}.b_h{j}", b_hh[j * n : (j + 1) * n].expand(batch, -1))
                     for j in range(3)]  # fmt: skip
                hr, hz, hn, prev = *b, torch.zeros_like(b[0])
            else:
                hh = nn.functional.linear(h, *self._affine(w_hh, b_hh, f"l{k}.h{t - 1}", int8))
                hh = q(f"l{k}.hh{t}", hh)
                hr, hz, hn, prev = hh[:, :n], hh[:, n : 2 * n], hh[:, 2 * n :], h
            r = sig(q(f"l{k}.r{t}", hr + x[:, :n]))
            z = sig(q(f"l{k}.z{t}", hz + x[:, n : 2 * n]))
            nn_ = tanh(q(f"l{k}.n{t}", x[:, 2 * n :] + q(f"l{k}.rn{t}", r * hn)))
            d = q(f"l{k}.zd{t}", q(f"l{k}.d{t}", prev - nn_) * z)
            h = self._step_out(q, f"l{k}.h{t}", d + nn_, t == steps - 1, hs)
        return q(f"l{k}.seq", torch.stack(hs, 1))

    @staticmethod
    def _step_out(q: Quant, name: str, h: torch.Tensor, last: bool, hs: list) -> torch.Tensor:
        """A step's h: on its own grid, but for the last step, which is written in the
        concatenation's (its caller rounds the whole sequence to that one)."""
        hs.append(h if last else q(name, h))
        return hs[-1]

    def _projection(self, rnn: nn.RNNBase, k: int, seq: torch.Tensor, source: str, q: Quant,
                    int8: bool):
        """Layer ``k``'s input projection over the sequence, its recurrent weight and bias,
        and the gate nonlinearities (on their fixed int8 grids, or float)."""
        w_hh, b_ih, b_hh = (getattr(rnn, f"{n}_l{k}") for n in ("weight_hh", "bias_ih", "bias_hh"))
        ih = nn.functional.linear(seq, *self._affine(getattr(rnn, f"weight_ih_l{k}"), b_ih,
                                                      source, int8))  # fmt: skip
        sig = (lambda t: fake(torch.sigmoid(t), *LOGISTIC)) if int8 else torch.sigmoid
        tanh = (lambda t: fake(torch.tanh(t), *TANH)) if int8 else torch.tanh
        return q(f"l{k}.ih", ih), w_hh, b_hh, (sig, tanh)
