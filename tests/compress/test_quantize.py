"""Quantization schemes: int8 weights for real, accuracy kept, models that save and load."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from sparsemod.builders import build_cnn, cnn_space
from sparsemod.compress import quantize
from sparsemod.compress.dynamic_int8 import DynamicInt8Linear, DynamicInt8RNN
from sparsemod.compress.quantize import load_exported, save_exported
from sparsemod.data import load_digits
from sparsemod.errors import CompressionError, ConfigError
from sparsemod.train import TrainSettings, accuracy, seeded, train


@pytest.fixture(scope="module")
def trained_cnn():
    splits = load_digits(0)
    with seeded(0):
        m = build_cnn(cnn_space().reference, splits.input_shape, splits.num_classes)
    train(m, splits, TrainSettings(epochs=3, lr=3e-3))
    return m.eval(), splits


def test_post_keeps_accuracy_and_stores_int8(trained_cnn):
    m, splits = trained_cnn
    x = splits.train.tensors[0]
    q = quantize(m, "post", [x[:128]], x[:1])
    int8 = [t for n, t in q.named_buffers() if t.dtype == torch.int8]
    assert sum(t.numel() for t in int8) == 16 * 9 + 32 * 16 * 9 + 128 * 64 + 64 * 10
    float_acc, int8_acc = accuracy(m, splits.val), accuracy(q, splits.val)
    assert float_acc > 0.9
    assert abs(float_acc - int8_acc) <= 0.02
    # the float model is left as it was
    assert all(p.dtype == torch.float32 for p in m.parameters())


def test_post_model_round_trips_through_torch_export(trained_cnn):
    m, splits = trained_cnn
    x = splits.val.tensors[0]
    q = quantize(m, "post", [splits.train.tensors[0][:64]], x[:1])
    back = load_exported(save_exported(q, x[:1]))
    assert torch.equal(back(x[:50]), q(x[:50]))


def test_post_model_loads_in_a_process_that_never_quantized(trained_cnn, tmp_path):
    # With worker processes the search process only loads models: the int8 ops the graph
    # calls must get registered by load_exported itself.
    m, splits = trained_cnn
    x = splits.val.tensors[0]
    q = quantize(m, "post", [splits.train.tensors[0][:64]], x[:1])
    (tmp_path / "model.pt2").write_bytes(save_exported(q, x[:1]))
    torch.save(x[:20], tmp_path / "x.pt")
    torch.save(q(x[:20]), tmp_path / "y.pt")
    code = (
        "import sys, torch\n"
        "from pathlib import Path\n"
        "from sparsemod.compress.quantize import load_exported\n"
        "assert 'torchao' not in sys.modules\n"
        "d = Path(sys.argv[1])\n"
        "m = load_exported((d / 'model.pt2').read_bytes())\n"
        "assert m.eval() is m and m.train() is m and not m.training\n"
        "y = m(torch.load(d / 'x.pt'))\n"
        "assert torch.equal(y, torch.load(d / 'y.pt')), 'outputs differ'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_dynamic_swaps_linear_and_rnn_layers():
    with seeded(0):
        m = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
        r = nn.GRU(3, 5, batch_first=True)
    q = quantize(m, "dynamic", [], torch.randn(1, 8))
    assert isinstance(q[0], DynamicInt8Linear) and isinstance(q[2], DynamicInt8Linear)
    assert q[0].weight_int8.dtype == torch.int8
    x = torch.randn(6, 8)
    assert torch.allclose(q(x), m(x), atol=0.05)
    holder = nn.Sequential()
    holder.add_module("rnn", r)
    qr = quantize(holder, "dynamic", [], torch.randn(1, 4, 3))
    assert isinstance(qr.rnn, DynamicInt8RNN)
    seq = torch.randn(2, 4, 3)
    out_q, _ = qr.rnn(seq)
    out_f, _ = r(seq)
    assert torch.allclose(out_q, out_f, atol=0.05)


def test_int8_keeps_pruned_zeros():
    lin = nn.Linear(10, 3)
    with torch.no_grad():
        lin.weight[:, :5] = 0
    q = DynamicInt8Linear(lin)
    assert int((q.weight_int8 == 0).sum()) >= 15


def test_bad_schemes_are_named():
    with pytest.raises(ConfigError, match="quant_scheme: 'int4'"):
        quantize(nn.Linear(2, 2), "int4", [], torch.randn(1, 2))
    with pytest.raises(CompressionError, match="no Linear, LSTM or GRU"):
        quantize(nn.Sequential(nn.Conv2d(1, 1, 1)), "dynamic", [], torch.randn(1, 1, 2, 2))
    lstm = nn.Sequential()
    lstm.add_module("rnn", nn.LSTM(2, 2))
    with pytest.raises(CompressionError, match="use 'dynamic'"):
        quantize(lstm, "post", [torch.randn(3, 1, 2)], torch.randn(3, 1, 2))
    with pytest.raises(CompressionError, match="calibration batch"):
        quantize(nn.Sequential(nn.Linear(2, 2)), "post", [], torch.randn(1, 2))
