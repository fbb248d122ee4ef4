"""Every objective against a count made by hand, to the byte."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsemod import objectives
from sparsemod.builders.rnn import LastStep
from sparsemod.compress import GlobalMagnitude, make_permanent, quantize
from sparsemod.errors import MeasureError


def _chain(bn: bool = False, conv_bias: bool = True) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(1, 4, 3, padding=1, bias=conv_bias)]
    if bn:
        layers.append(nn.BatchNorm2d(4))
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10)]
    torch.manual_seed(0)
    return nn.Sequential(*layers).eval()


X = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def test_float_chain_by_hand():
    m = _chain()
    # conv: 4*1*3*3 = 36 weights * 4 B + 4 biases * 4 B; linear: 10*64 * 4 B + 10 * 4 B
    assert objectives.model_size_bytes(m) == 36 * 4 + 4 * 4 + 640 * 4 + 10 * 4 == 2760
    # input 1*8*8 floats = 256 B; conv out 4*8*8 floats = 1024 B (relu fused into it);
    # pool out 4*4*4 floats = 256 B; flatten is a view; linear out 10 floats = 40 B.
    # conv step: 256 + 1024; pool step: 1024 + 256; linear step: 256 + 40.
    assert objectives.working_memory_bytes(m, X) == 1280
    # conv: 4*8*8 outputs * 9 MACs; linear: 10 * 64 MACs; 2 FLOPs per MAC.
    assert objectives.flops(m, X) == 2 * (256 * 9 + 640) == 5888
    assert objectives.latency_seconds(5888, 1e6) == pytest.approx(5.888e-3)


def test_batch_norm_folds_into_the_layer_before_it():
    # after a conv with a bias, batch norm folds away: same size as without it
    assert objectives.model_size_bytes(_chain(bn=True)) == 2760
    # after a conv without a bias, folding gives the conv a bias: 4 channels * 4 B
    assert objectives.model_size_bytes(_chain(bn=True, conv_bias=False)) == 2760
    # a lone batch norm (not after a conv / linear) is a scale and a shift per channel
    lone = nn.Sequential(nn.BatchNorm2d(1), nn.Flatten(), nn.Linear(64, 2))
    assert objectives.model_size_bytes(lone) == 2 * 1 * 4 + 128 * 4 + 2 * 4
    # and it is not fused in memory: input 256 B, bn out 256 B
    assert objectives.working_memory_bytes(lone.eval(), X) == 512


def test_int8_chain_by_hand():
    m = _chain(bn=True)
    calib = [torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(2))]
    q = quantize(m, "post", calib, X)
    # conv: 36 int8 weights + 4 scales * 4 B + 4 zero points * 1 B + 4 float biases * 4 B
    conv = 36 + 16 + 4 + 16
    # linear: 640 int8 weights + 10 scales * 4 B + 10 zero points + 10 biases * 4 B
    linear = 640 + 40 + 10 + 40
    # activation quantization: the input's (scale, zero point) and the conv output's, which
    # pool and flatten share: 2 pairs * (4 + 1) B
    assert objectives.model_size_bytes(q) == conv + linear + 2 * 5 == 812
    # input 64 int8 B + conv out 256 int8 B; then 256 + pool out 64; then 64 + 10 floats
    assert objectives.working_memory_bytes(q, X) == 64 + 256
    assert objectives.flops(q, X) == 5888


def test_static_int8_logits_are_float_in_predicted_and_measured_memory():
    # The output sets the peak: 4 inputs -> 16 hidden -> 50 classes.
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 50)).eval()
    x = torch.randn(1, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    calib = [torch.randn(16, 1, 2, 2, generator=torch.Generator().manual_seed(2))]
    q = quantize(m, "post", calib, x)
    # fc1: int8 input 4 B + int8 hidden 16 B; out: the hidden 16 B + 50 logits, which
    # leave the int8 network dequantized, as floats: 200 B.
    assert objectives.working_memory_bytes(q, x) == 16 + 50 * 4 == 216
    # predicted from the float twin: the same count, logits at 4 bytes, the rest at 1
    assert objectives.working_memory_bytes(m, x, activation_bytes=1) == 216
    assert objectives.measure_all(m, x, 1e6, activation_bytes=1)["working_memory_bytes"] == 216


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(2, 2, 3, padding=1)
        self.fc = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu(self.conv1(x))
        b = self.conv2(a)
        return self.fc((a + b).flatten(1))


def test_residual_liveness_by_hand():
    m = _Residual().eval()
    x = torch.randn(1, 1, 4, 4)
    # input 16 floats = 64 B; a = 2*4*4 floats = 128 B; b = 128 B; a + b = 128 B; fc 12 B.
    # conv1: 64 + 128; conv2: a + b = 256 (the input is dead);
    # add: a, b and the sum are all alive = 384; fc: 128 + 12.
    # A plain chain rule (max of input + output) would say 256.
    assert objectives.working_memory_bytes(m, x) == 384
    # conv1 32 outputs * 9 MACs, conv2 32 * 18, fc 3 * 32
    assert objectives.flops(m, x) == 2 * (32 * 9 + 32 * 18 + 96) == 1920
    assert objectives.model_size_bytes(m) == (18 + 2 + 36 + 2 + 96 + 3) * 4


def test_sparse_storage_choices_by_hand():
    w = torch.zeros(16, 64)
    w.view(-1)[:100] = 1.0
    # 100 nnz floats = 400 B; mask = 1024/8 = 128 B; CSR = 100 column indices of 1 B
    # (64 columns) + 17 row pointers of 1 B (nnz 100 < 256) = 117 B -> CSR
    assert objectives.tensor_bytes(w, 32) == 400 + 117
    w.view(-1)[:500] = 1.0
    # 2000 B + min(mask 128, CSR 500 + 17 * 2) -> mask
    assert objectives.tensor_bytes(w, 32) == 2000 + 128
    w.view(-1)[:1000] = 1.0
    # 4000 + 128 > dense 4096 -> dense
    assert objectives.tensor_bytes(w, 32) == 4096
    assert objectives.tensor_bytes(w, 32, sparse=False) == 4096
    assert [objectives.index_width(v) for v in (0, 255, 256, 65535, 65536)] == [1, 1, 2, 2, 4]


def test_pruned_network_size_by_hand():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 16))
    step = GlobalMagnitude().prune(m, 100 / 1024)
    make_permanent(m)
    assert step.weights_kept == 100 and int((m[1].weight != 0).sum()) == 100
    # weight: 400 B + CSR 117 B (see above); bias 16 floats dense = 64 B
    assert objectives.model_size_bytes(m) == 400 + 117 + 64
    q = quantize(m, "dynamic", [], X)
    # int8: 100 B + CSR 117 B; 16 scales * 4 B; 16 zero points; 16 float biases
    assert objectives.model_size_bytes(q) == 100 + 117 + 64 + 16 + 64
    # unstructured pruning changes neither the FLOPs nor the working memory
    assert objectives.flops(m, X) == 2 * 16 * 64
    assert objectives.working_memory_bytes(m, X) == 256 + 64


def _lstm() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(LastStep(nn.LSTM(4, 8, batch_first=True)), nn.Linear(8, 3)).eval()


def test_lstm_by_hand():
    m = _lstm()
    x = torch.randn(1, 5, 4)
    # w_ih 32x4 + w_hh 32x8 floats, b_ih + b_hh 2*32 floats; linear 3x8 + 3
    assert objectives.model_size_bytes(m) == (128 + 256 + 64) * 4 + (24 + 3) * 4 == 1900
    # input 5*4 floats = 80 B; LSTM output 5*8 + hidden 8 + cell 8 floats = 224 B;
    # the last-step slice is a view; linear out 3 floats = 12 B. Peak: 80 + 224.
    assert objectives.working_memory_bytes(m, x) == 304
    # 5 steps * 4 gates * 8 hidden * (4 inputs + 8 hidden) MACs + linear 24 MACs
    assert objectives.flops(m, x) == 2 * (5 * 4 * 8 * 12 + 24) == 3888


def test_dynamic_int8_lstm_by_hand():
    q = quantize(_lstm(), "dynamic", [], torch.randn(1, 5, 4))
    x = torch.randn(1, 5, 4)
    # int8 matrices 128 + 256 B; 64 row scales * 4 B; 64 zero points; biases 64 floats;
    # linear 24 int8 + 3 scales * 4 + 3 zero points + 3 float biases
    assert objectives.model_size_bytes(q) == 384 + 256 + 64 + 256 + (24 + 12 + 3 + 12) == 1011
    # dynamic quantization keeps float activations: same memory and FLOPs as the float LSTM
    assert objectives.working_memory_bytes(q, x) == 304
    assert objectives.flops(q, x) == 3888


def test_batch_larger_than_one_is_cut_to_one():
    m = _chain()
    assert objectives.working_memory_bytes(m, torch.randn(7, 1, 8, 8)) == 1280
    assert objectives.flops(m, torch.randn(7, 1, 8, 8)) == 5888


def test_a_forward_that_fails_raises_its_own_error_not_a_measure_error():
    class Mismatched(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1) @ torch.zeros(3, 10)

    # a network that does not run is a bug to show, not a measurement that failed
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        objectives.working_memory_bytes(Mismatched(), X)
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        objectives.measure_all(Mismatched(), X, 1e6)


def test_untraceable_model_says_why():
    class Branchy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x if x.sum() > 0 else -x

    with pytest.raises(MeasureError, match="cannot be traced"):
        objectives.model_size_bytes(Branchy())
    with pytest.raises(MeasureError, match="must be > 0"):
        objectives.latency_seconds(10, 0)
