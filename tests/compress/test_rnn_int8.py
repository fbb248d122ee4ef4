"""The TFLM int8 twin of an LSTM network: hand counts, and against TFLM itself.

The runtime comparison exports the float network with ``sparsemod.deploy.tflite``
(litert-torch unrolls the LSTM, AI Edge Quantizer quantizes it) and runs the test split
through tflite-micro's interpreter; skipped, with the reason, where those are missing.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from torch import nn

from sparsemod.builders.rnn import LastStep, build_rnn, rnn_space
from sparsemod.compress.rnn_int8 import (
    RnnInt8,
    _multipliers,
    affine,
    fake,
    is_static_rnn,
    requantize,
)
from sparsemod.compress.schemes import PostStatic
from sparsemod.core.results import ModelArtifact
from sparsemod.data.digits import load_digits_sequences
from sparsemod.data.splits import tensors_of
from sparsemod.errors import CompressionError
from sparsemod.eval_settings import EvalSettings, calibration_batches

RUNTIMES = ("litert_torch", "ai_edge_quantizer", "tflite_micro")
MISSING = [m for m in RUNTIMES if importlib.util.find_spec(m) is None]


def _lstm(hidden=16, layers=1, steps=8, features=8, seed=0, cell="lstm") -> nn.Module:
    torch.manual_seed(seed)
    params = {**rnn_space().reference, "hidden": hidden, "num_layers": layers, "cell": cell}
    return build_rnn(params, (steps, features), 10).eval()


def test_activation_grid_is_ai_edge_quantizers():
    # [min(lo, 0), max(hi, 0)] over 255 steps, the zero point rounded
    assert affine(torch.tensor(0.5), torch.tensor(2.0)) == (2.0 / 255, -128)
    scale, zero = affine(torch.tensor(-1.0), torch.tensor(3.0))
    assert scale == pytest.approx(4.0 / 255) and zero == round(-128 + 1.0 / scale) == -64
    x = torch.tensor([-2.0, -1.0, 0.0, 0.0123, 3.0, 5.0])
    q = fake(x, scale, zero)
    assert q[2] == 0.0  # zero is on the grid
    assert q[0] == -128 * scale + 64 * scale  # clamped at -128
    assert q[-1] == pytest.approx(127 * scale + 64 * scale)  # clamped at 127


def test_requantization_is_tflms_integer_rounding():
    # QuantizeMultiplier: 0.5 = 2^30 / 2^31, shift 0; 0.25 = the same, shift -1
    m, shift = _multipliers(torch.tensor([0.5, 0.25, 3.0], dtype=torch.float64))
    assert m.tolist() == [1 << 30, 1 << 30, 3 << 29] and shift.tolist() == [0, -1, 2]
    acc = torch.tensor([3, -3, 6, 100, -101])
    out = requantize(acc, torch.full((5,), 1 << 30), torch.tensor([0, 0, -1, 0, -1]))
    # 1.5 -> 2 but -1.5 -> -1 (gemmlowp's nudge rounds halves up); 6 / 4 = 1.5 -> 2 after
    # two roundings; 100 / 2 = 50; -101 / 4 = -25.25 -> -25
    assert out.tolist() == [2, -1, 2, 50, -25]
    assert requantize(torch.tensor([7]), m[2:], shift[2:]).tolist() == [21]


def test_ranges_are_a_moving_average_over_samples_in_order():
    model = _lstm(hidden=8, steps=3, features=2)
    twin = RnnInt8(model, torch.zeros(1, 3, 2))
    x = torch.zeros(3, 3, 2)
    x[:, 0, 0] = torch.tensor([1.0, 2.0, 3.0])  # per-sample max of the input: 1, 2, 3
    twin.calibrate([x[:2], x[2:]])  # batches are cut into samples, in order
    lo, hi = twin.ranges[twin.names.index("input")]
    # 1 -> 0.95 * 1 + 0.05 * 2 -> 0.95 * 1.05 + 0.05 * 3
    assert float(hi) == pytest.approx(1.1475) and float(lo) == 0.0
    reordered = RnnInt8(model, torch.zeros(1, 3, 2)).calibrate([x.flip(0)])
    assert float(reordered.ranges[0, 1]) == pytest.approx(0.95**2 * 3 + 0.05 * 0.95 * 2 + 0.05)


def test_the_unrolled_graph_has_the_converters_tensors():
    twin = RnnInt8(_lstm(hidden=8, steps=3, features=2), torch.zeros(1, 3, 2))
    # step 0 has no recurrent product (b_hh is a constant) and no forget gate; the last
    # step's h is written straight into the concatenated sequence
    assert twin.names == [
        "input", "l0.ih", "l0.b_hh", "l0.g0", "l0.ig0", "l0.h0",
        "l0.hh1", "l0.g1", "l0.ig1", "l0.fc1", "l0.c1", "l0.h1",
        "l0.hh2", "l0.g2", "l0.ig2", "l0.fc2", "l0.c2", "l0.seq", "fc2",
    ]  # fmt: skip
    two = RnnInt8(_lstm(hidden=8, layers=2, steps=2, features=2), torch.zeros(1, 2, 2))
    assert [n for n in two.names if n.endswith(".seq")] == ["l0.seq", "l1.seq"]
    assert len(two.names) == 1 + 2 * 11 + 1  # per layer: ih, b_hh, 3 at step 0, 5 at step 1, seq


def test_the_int8_twin_stays_close_to_the_float_network():
    model = _lstm(hidden=32)
    x = torch.randn(64, 8, 8)
    twin = RnnInt8(model, x[:1]).calibrate([x])
    with torch.no_grad():
        ref, out = model(x), twin(x)
    # an untrained network's logits lie close together: most argmaxes still agree
    assert (ref.argmax(1) == out.argmax(1)).float().mean() >= 0.85
    assert (out - ref).abs().mean() < 0.15 * ref.abs().mean()
    # every output is on the logits' int8 grid
    scale, zero = twin.params("fc2")
    codes = out / scale + zero
    assert torch.allclose(codes, codes.round(), atol=1e-3)


def test_post_quantizes_an_lstm_network_to_its_twin_and_stores_it_to_load_back():
    model = _lstm(hidden=16)
    x = torch.randn(16, 8, 8)
    scheme = PostStatic()
    deployed = scheme.apply(model, [x], x[:1])
    assert isinstance(deployed, RnnInt8)
    fmt, data = scheme.save(deployed, x[:1])
    assert fmt == "rnn_int8"
    params = {**rnn_space().reference, "hidden": 16}
    artifact = ModelArtifact(fmt, data, params, (8, 8), 10, "post")

    def build():
        return build_rnn(params, (8, 8), 10)

    loaded = scheme.load(artifact, build)
    assert torch.equal(loaded(x), deployed(x))
    assert torch.equal(loaded.ranges, deployed.ranges)


def test_a_network_the_twin_does_not_take_is_refused_by_name():
    gru = build_rnn({**rnn_space().reference, "cell": "gru"}, (8, 8), 10)
    assert is_static_rnn(gru) and is_static_rnn(_lstm())
    both_ways = nn.Sequential(LastStep(nn.GRU(8, 16, batch_first=True, bidirectional=True)),
                              nn.Linear(32, 10))  # fmt: skip
    assert not is_static_rnn(both_ways)
    with pytest.raises(CompressionError, match="cannot quantize this recurrent network"):
        PostStatic().apply(both_ways, [torch.randn(4, 8, 8)], torch.randn(1, 8, 8))
    with pytest.raises(CompressionError, match="one-directional GRU"):
        RnnInt8(both_ways, torch.zeros(1, 8, 8))
    odd = nn.Sequential(_lstm()[0], nn.Tanh(), nn.Linear(64, 10))
    with pytest.raises(CompressionError, match=r"layer 1 \(Tanh\)"):
        RnnInt8(odd, torch.zeros(1, 8, 8))
    with pytest.raises(CompressionError, match="at least one input batch"):
        RnnInt8(_lstm(), torch.zeros(1, 8, 8)).calibrate([])


def test_a_gru_step_has_the_converters_tensors():
    params = {**rnn_space().reference, "cell": "gru", "hidden": 8}
    twin = RnnInt8(build_rnn(params, (2, 2), 10), torch.zeros(1, 2, 2))
    # step 0: the recurrent biases are constants, h - n is 0 - n; the last h goes
    # straight into the concatenated sequence
    assert twin.names == [
        "input", "l0.ih", "l0.b_h0", "l0.b_h1", "l0.b_h2",
        "l0.r0", "l0.z0", "l0.rn0", "l0.n0", "l0.d0", "l0.zd0", "l0.h0",
        "l0.hh1", "l0.r1", "l0.z1", "l0.rn1", "l0.n1", "l0.d1", "l0.zd1", "l0.seq", "fc2",
    ]  # fmt: skip


def _trained(hidden: int, layers: int, epochs: int, seed: int, cell: str = "lstm"):
    splits = load_digits_sequences(0)
    x, y = tensors_of(splits.train)
    model = _lstm(hidden, layers, seed=seed, cell=cell)
    model.train()
    opt = torch.optim.Adam(model.parameters(), 0.005)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 32):
            idx = order[i : i + 32]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval(), splits


@pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} (sparsemod[tflite])")
@pytest.mark.parametrize(
    ("cell", "hidden", "layers", "epochs"),
    # one of each cell (the one-layer LSTM: tests/deploy/test_tflite.py's search)
    [("lstm", 16, 2, 3), ("gru", 12, 2, 3)],
)
def test_the_twin_predicts_what_tflm_runs(cell, hidden, layers, epochs):
    from tflite_micro.python.tflite_micro import runtime

    from sparsemod.deploy.tflite_quantize import recurrent_int8

    model, splits = _trained(hidden, layers, epochs, seed=hidden, cell=cell)
    xte, yte = tensors_of(splits.test)
    calibration = list(calibration_batches(splits, EvalSettings()))
    twin = RnnInt8(model, xte[:1]).calibrate(calibration)
    interpreter = runtime.Interpreter.from_bytes(
        recurrent_int8(model, xte[:1], calibration), arena_size=1 << 20
    )
    inp = interpreter.get_input_details(0)["quantization_parameters"]
    out = interpreter.get_output_details(0)["quantization_parameters"]
    # the same grids, computed here from the float network's ranges
    assert twin.params("input")[1] == inp["zero_points"][0]
    assert twin.params("input")[0] == pytest.approx(inp["scales"][0], rel=1e-5)
    assert twin.params(twin.names[-1])[1] == out["zero_points"][0]
    assert twin.params(twin.names[-1])[0] == pytest.approx(out["scales"][0], rel=1e-5)
    scale, zero = inp["scales"][0], inp["zero_points"][0]
    tflm = []
    for x in xte.numpy():
        q = np.clip(np.round(x[None] / scale) + zero, -128, 127).astype(np.int8)
        interpreter.set_input(q, 0)
        interpreter.invoke()
        tflm.append(interpreter.get_output(0).astype(np.int64))
    tflm = np.concatenate(tflm)
    o_scale, o_zero = twin.params(twin.names[-1])
    ours = torch.round(twin(xte).double() / o_scale).long().numpy() + o_zero
    # TFLM's integer arithmetic replayed: the same predictions, and the int8 logits equal
    # but for a step on a few values (0 on the GRU, 4 of 2,700 on the LSTM when measured)
    assert (ours.argmax(1) == tflm.argmax(1)).all()
    assert np.abs(ours - tflm).max() <= 1
    assert (ours != tflm).mean() <= 0.005
