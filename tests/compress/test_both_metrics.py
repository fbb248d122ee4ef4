"""The objectives of ``both`` models (static int8 layers beside dynamic RNNs), by hand."""

from __future__ import annotations

import torch
from torch import nn

from sparsemod import objectives
from sparsemod.builders.rnn import LastStep
from sparsemod.compress import quantize
from sparsemod.compress.dynamic_int8 import DynamicInt8RNN
from sparsemod.compress.static_int8 import QuantizeActivation, StaticInt8Layer


def _lstm() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(LastStep(nn.LSTM(4, 8, batch_first=True)), nn.Linear(8, 3)).eval()


def test_lstm_then_static_linear_by_hand():
    x = torch.randn(1, 5, 4)
    q = quantize(_lstm(), "both", [torch.randn(16, 5, 4)], x)
    assert isinstance(q.get_submodule("0.rnn"), DynamicInt8RNN)
    assert isinstance(q.get_submodule("1"), StaticInt8Layer)
    # LSTM as in tests/objectives/test_objectives.py: int8 matrices 128 + 256 B, 64 row
    # scales * 4 B, 64 zero points, 64 float biases * 4 B = 960; the linear's input (scale,
    # zero point)
    # 5 B; the linear: 24 int8 weights + 3 scales * 4 B + 3 zero points + 3 float biases
    assert objectives.model_size_bytes(q) == 960 + 5 + (24 + 12 + 3 + 12) == 1016
    # input 80 B + LSTM output / hidden / cell 224 B; then 224 + the uint8 copy of the last
    # step (8 B); then 8 + 3 float logits. Peak 304.
    assert objectives.working_memory_bytes(q, x) == 304
    assert objectives.flops(q, x) == 2 * (5 * 4 * 8 * 12 + 24) == 3888


class _ConvLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3, padding=1)
        self.bn = nn.BatchNorm2d(2)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(2, 2, 3, padding=1)
        self.rnn = nn.LSTM(2, 3, batch_first=True)
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.pool(torch.relu(self.bn(self.conv1(x)))))
        out, _ = self.rnn(x.flatten(2).transpose(1, 2))
        return self.fc(out[:, -1])


def test_conv_front_end_with_int8_activations_by_hand():
    torch.manual_seed(0)
    m = _ConvLSTM().eval()
    x = torch.randn(1, 1, 4, 4)
    q = quantize(m, "both", [torch.randn(8, 1, 4, 4)], x)
    seen: dict[str, torch.dtype] = {}
    for name in ("conv1", "pool", "conv2", "fc"):
        q.get_submodule(name).register_forward_hook(
            lambda mod, args, out, name=name: seen.update({name: (args[0].dtype, out.dtype)})
        )
    assert torch.allclose(q(x), m(x), atol=0.05)
    # conv1 reads and writes uint8 (its only consumer, the pooling, feeds conv2); conv2
    # writes float for the LSTM; the linear reads a uint8 copy of the LSTM's last step
    u8, f32 = torch.uint8, torch.float32
    assert seen == {
        "conv1": (u8, u8),
        "pool": (u8, u8),
        "conv2": (u8, f32),
        "fc": (u8, f32),
    }
    assert sum(isinstance(mod, QuantizeActivation) for mod in q.modules()) == 2
    # input (scale, zero point) 5 B;
    # conv1: 18 int8 + 2 scales * 4 + 2 zero points + 2 folded biases * 4 + output pair 5 = 41
    # conv2: 36 int8 + 8 + 2 + 8 = 54 (float output, no pair)
    # LSTM(2, 3): 24 + 36 int8 B, 24 rows * (4 + 1) B, biases 24 floats * 4 B = 276
    # the linear's input pair 5; the linear: 6 int8 + 2 * 4 + 2 + 2 * 4 = 24
    assert objectives.model_size_bytes(q) == 5 + 41 + 54 + 276 + 5 + 24 == 405
    # input 64 B float, its uint8 copy 16 B -> 80; conv1 out uint8 32 B; pool 8 B;
    # conv2 out float 32 B; the transpose writes 32 B; LSTM out 4*3 + h 3 + c 3 floats = 72 B
    # beside the transpose's 32 -> 104 (the peak); uint8 last step 3 B; logits 8 B.
    assert objectives.working_memory_bytes(q, x) == 104
    # conv1 2*16 outputs * 9, conv2 2*4 * 18, LSTM 4 steps * 4 gates * 3 * (2 + 3), fc 6
    assert objectives.flops(q, x) == 2 * (288 + 144 + 240 + 6) == 1356
    # the float network does the same multiply-accumulates
    assert objectives.flops(m, x) == 1356
