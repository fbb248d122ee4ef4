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

Each int8 value is carried as its float (``(q - zero_point) * scale``). The gates'
LOGISTIC and TANH are computed in float and rounded to their fixed grids; FULLY_CONNECTED,
ADD, SUB, MUL and the QUANTIZE into the concatenation use TFLM's integer arithmetic (int32
accumulators, ``QuantizeMultiplier``'s Q31 multipliers and gemmlowp's two roundings, the
ADD / SUB kernels' 20-bit shift), where rounding once in float would differ from TFLM by a
step on about one value in a thousand, and those steps add up over a sequence. On the
digits networks of ``tests/compress/test_rnn_int8.py`` the logits equal TFLM's int8
outputs on every test sample (a one-layer LSTM, a two-layer GRU) or all but 4 of 2,700
(a two-layer LSTM, by one step), and the predictions are TFLM's.

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
_FIXED = {"sigmoid": LOGISTIC, "tanh": TANH}
_LEFT_SHIFT = 20  # TFLM's int8 ADD / SUB: inputs shifted up 20 bits before rescaling

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


def _f32(x: float | torch.Tensor) -> torch.Tensor:
    """A scale as the flatbuffer stores it (float32), in float64 for TFLM's double maths."""
    return torch.as_tensor(x, dtype=torch.float32).double()


def _multipliers(real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """TFLM's ``QuantizeMultiplier``: each real multiplier as a Q31 integer and a shift."""
    mantissa, shift = torch.frexp(real)
    fixed = torch.floor(mantissa * 2**31 + 0.5).long()  # std::round of a positive number
    over = fixed == 2**31
    fixed, shift = torch.where(over, fixed // 2, fixed), shift.long() + over.long()
    tiny = shift < -31
    return torch.where(tiny, 0, fixed), torch.where(tiny, 0, shift)


def requantize(acc: torch.Tensor, multiplier: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """TFLM's ``MultiplyByQuantizedMultiplier`` on int64 tensors: gemmlowp's rounding
    doubling high multiply, then a rounding right shift (two roundings, as its FULLY_CONNECTED
    requantizes an int32 accumulator)."""
    acc = torch.bitwise_left_shift(acc, shift.clamp(min=0))
    right = (-shift).clamp(min=0)
    product = acc * multiplier
    nudge = torch.where(product >= 0, 1 << 30, 1 - (1 << 30))
    high = torch.div(product + nudge, 1 << 31, rounding_mode="trunc")
    mask = torch.bitwise_left_shift(torch.ones_like(right), right) - 1
    threshold = torch.bitwise_right_shift(mask, 1) + (high < 0).long()
    carry = (torch.bitwise_and(high, mask) > threshold).long()
    return torch.bitwise_right_shift(high, right) + carry


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
                fused = j + 1 < len(self.network) and isinstance(self.network[j + 1], nn.ReLU)
                h = self._fc(h, layer.weight, layer.bias, source, f"fc{j}", q, int8, fused)
                source = f"fc{j}"
        return h

    def _fc(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, source: str,
            name: str, q: Quant, int8: bool, relu: bool = False) -> torch.Tensor:
        """A FULLY_CONNECTED op reading activation ``source`` and writing ``name``: in
        float, or as TFLM computes it in int8 (int8 weights per output channel, an int32
        accumulator with the int32 bias, requantized per channel)."""
        if not int8:
            y = nn.functional.linear(x, w, b)
            return q(name, torch.relu(y) if relu else y)
        s_in, (s_out, z_out) = self.params(source)[0], self.params(name)
        wq, w_scale = _weight(w)
        acc = torch.round(x.double() / s_in) @ torch.round(wq / w_scale[:, None]).double().T
        if b is not None:
            acc = acc + torch.round(b.double() / (_f32(s_in) * _f32(w_scale)))
        out = requantize(acc.long(), *_multipliers(_f32(s_in) * _f32(w_scale) / _f32(s_out)))
        out = torch.clamp(out + z_out, z_out if relu else -128, 127)
        return q(name, ((out - z_out) * s_out).float())

    def _lstm(self, rnn: nn.LSTM, k: int, seq: torch.Tensor, source: str, q: Quant,
              int8: bool) -> torch.Tensor:
        gates, w_hh, b_hh, (sig, tanh) = self._projection(rnn, k, seq, source, q, int8)
        n, ih, op = rnn.hidden_size, f"l{k}.ih", self._op(q, int8)
        steps, c, h, hs = seq.shape[1], None, None, []
        for t in range(steps):
            if h is None:  # h = 0: the recurrent product is the constant b_hh
                g = op("add", gates[:, 0], ih, q(f"l{k}.b_hh", b_hh.expand(len(seq), -1)),
                       f"l{k}.b_hh", f"l{k}.g0")  # fmt: skip
            else:
                hh = self._fc(h, w_hh, b_hh, f"l{k}.h{t - 1}", f"l{k}.hh{t}", q, int8)
                g = op("add", hh, f"l{k}.hh{t}", gates[:, t], ih, f"l{k}.g{t}")
            i, f, gg, o = g[:, :n], g[:, n : 2 * n], g[:, 2 * n : 3 * n], g[:, 3 * n :]
            ig = op("mul", sig(i), "sigmoid", tanh(gg), "tanh", f"l{k}.ig{t}")
            if c is None:
                c, c_name = ig, f"l{k}.ig0"
            else:
                fc = op("mul", sig(f), "sigmoid", c, c_name, f"l{k}.fc{t}")
                c_name = f"l{k}.c{t}"
                c = op("add", fc, f"l{k}.fc{t}", ig, f"l{k}.ig{t}", c_name)
            last = t == steps - 1  # written straight into the concatenation's grid
            out = f"l{k}.seq" if last else f"l{k}.h{t}"
            h = op("mul", sig(o), "sigmoid", tanh(c), "tanh", out, record=not last)
            hs.append(h)
        return self._sequence(hs, k, q, int8)

    def _gru(self, rnn: nn.GRU, k: int, seq: torch.Tensor, source: str, q: Quant,
             int8: bool) -> torch.Tensor:
        gates, w_hh, b_hh, (sig, tanh) = self._projection(rnn, k, seq, source, q, int8)
        n, ih, op, batch = rnn.hidden_size, f"l{k}.ih", self._op(q, int8), len(seq)
        steps, h, hs = seq.shape[1], None, []
        for t in range(steps):
            x = gates[:, t]
            if h is None:  # h = 0: the recurrent parts are the biases, int8 constants
                names = [f"l{k}.b_h{j}" for j in range(3)]
                hr, hz, hn = (q(names[j], b_hh[j * n : (j + 1) * n].expand(batch, -1))
                              for j in range(3))  # fmt: skip
                prev, prev_name = torch.zeros_like(hr), "zero"
            else:
                hh = self._fc(h, w_hh, b_hh, f"l{k}.h{t - 1}", f"l{k}.hh{t}", q, int8)
                hr, hz, hn = hh[:, :n], hh[:, n : 2 * n], hh[:, 2 * n :]
                names, prev, prev_name = [f"l{k}.hh{t}"] * 3, h, f"l{k}.h{t - 1}"
            r = sig(op("add", hr, names[0], x[:, :n], ih, f"l{k}.r{t}"))
            z = sig(op("add", hz, names[1], x[:, n : 2 * n], ih, f"l{k}.z{t}"))
            rn = op("mul", r, "sigmoid", hn, names[2], f"l{k}.rn{t}")
            new = tanh(op("add", x[:, 2 * n :], ih, rn, f"l{k}.rn{t}", f"l{k}.n{t}"))
            d = op("sub", prev, prev_name, new, "tanh", f"l{k}.d{t}")
            zd = op("mul", d, f"l{k}.d{t}", z, "sigmoid", f"l{k}.zd{t}")
            last = t == steps - 1
            out = f"l{k}.seq" if last else f"l{k}.h{t}"
            h = op("add", zd, f"l{k}.zd{t}", new, "tanh", out, record=not last)
            hs.append(h)
        return self._sequence(hs, k, q, int8)

    def _sequence(self, hs: list[torch.Tensor], k: int, q: Quant, int8: bool) -> torch.Tensor:
        """The steps' h concatenated: every step but the last QUANTIZEd into the
        concatenation's grid (the last one was written in it)."""
        name = f"l{k}.seq"
        if not int8:
            return q(name, torch.stack(hs, 1))
        (s_out, z_out), moved = self._grid(name), []
        for t, h in enumerate(hs[:-1]):
            s_in, z_in = self._grid(f"l{k}.h{t}")
            codes = requantize(self._codes(h, f"l{k}.h{t}") - z_in,
                               *_multipliers(_f32(s_in) / _f32(s_out)))  # fmt: skip
            moved.append((torch.clamp(codes + z_out, -128, 127) - z_out) * s_out)
        return torch.stack([*(m.float() for m in moved), hs[-1]], 1)

    def _grid(self, name: str) -> tuple[float, int]:
        """The (scale, zero point) of an activation: a calibrated one, a LOGISTIC / TANH
        output, or the zero constant a GRU's first step subtracts from."""
        if name in _FIXED:
            return _FIXED[name]
        return affine(torch.tensor(0.0), torch.tensor(0.0)) if name == "zero" else self.params(name)

    def _codes(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """The int8 codes of an activation already on its grid."""
        scale, zero = self._grid(name)
        return torch.round(x.double() / scale).long() + zero

    def _op(self, q: Quant, int8: bool):
        """``op(kind, a, a_name, b, b_name, out, record=True)``: an ADD, SUB or MUL of two
        activations writing ``out``: in float (``q`` records it unless ``record`` is
        False), or with TFLM's int8 kernels' integer arithmetic."""

        def op(kind: str, a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str,
               out: str, record: bool = True) -> torch.Tensor:
            if not int8:
                y = a + b if kind == "add" else a - b if kind == "sub" else a * b
                return q(out, y) if record else y
            (s1, z1), (s2, z2), (so, zo) = self._grid(a_name), self._grid(b_name), self._grid(out)
            x1, x2 = self._codes(a, a_name) - z1, self._codes(b, b_name) - z2
            if kind == "mul":
                y = requantize(x1 * x2, *_multipliers(_f32(s1) * _f32(s2) / _f32(so)))
            else:  # the ADD / SUB kernels: both inputs to twice the larger scale, 20 bits up
                twice = 2 * torch.maximum(_f32(s1), _f32(s2))
                x1 = requantize(x1 * (1 << _LEFT_SHIFT), *_multipliers(_f32(s1) / twice))
                x2 = requantize(x2 * (1 << _LEFT_SHIFT), *_multipliers(_f32(s2) / twice))
                y = requantize(x1 + x2 if kind == "add" else x1 - x2,
                               *_multipliers(twice / ((1 << _LEFT_SHIFT) * _f32(so))))  # fmt: skip
            return ((torch.clamp(y + zo, -128, 127) - zo) * so).float()

        return op

    def _projection(self, rnn: nn.RNNBase, k: int, seq: torch.Tensor, source: str, q: Quant,
                    int8: bool):
        """Layer ``k``'s input projection over the sequence, its recurrent weight and bias,
        and the gate nonlinearities (on their fixed int8 grids, or float)."""
        w_hh, b_ih, b_hh = (getattr(rnn, f"{n}_l{k}") for n in ("weight_hh", "bias_ih", "bias_hh"))
        ih = self._fc(seq, getattr(rnn, f"weight_ih_l{k}"), b_ih, source, f"l{k}.ih", q, int8)
        sig = (lambda t: fake(torch.sigmoid(t), *LOGISTIC)) if int8 else torch.sigmoid
        tanh = (lambda t: fake(torch.tanh(t), *TANH)) if int8 else torch.tanh
        return ih, w_hh, b_hh, (sig, tanh)
