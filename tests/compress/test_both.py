"""``quant_scheme = both``: static int8 layers and a dynamic LSTM in one deployed model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsemod import objectives
from sparsemod.compress import quantize
from sparsemod.compress.dynamic_int8 import DynamicInt8RNN
from sparsemod.compress.quantize import is_exported
from sparsemod.compress.static_int8 import StaticInt8Layer
from sparsemod.evaluate import EvalSettings, evaluate, load_model, predict_costs
from sparsemod.problems import get_problem
from sparsemod.train import accuracy


@pytest.fixture(scope="module")
def rnn_result():
    problem = get_problem("digits_rnn")
    data = problem.load(0)
    settings = EvalSettings(
        epochs=3, pruning=False, quant_scheme="both", runtime="ideal", device="cpu"
    )
    return problem, data, settings, evaluate(problem, problem.space.reference, settings, data)


def test_digits_rnn_gets_a_static_int8_head_and_a_dynamic_lstm(rnn_result):
    problem, data, _, r = rnn_result
    assert r.ok, r.failure_reason
    deployed = load_model(r.model, problem)
    assert r.model.format == "state_dict"
    assert isinstance(deployed.get_submodule("encoder.rnn"), DynamicInt8RNN)
    head = deployed.get_submodule("out")
    assert isinstance(head, StaticInt8Layer) and head.weight_int8.dtype == torch.int8
    dtypes = []
    head.register_forward_hook(lambda mod, args, out: dtypes.append((args[0].dtype, out.dtype)))
    assert accuracy(deployed, data.val) == pytest.approx(r.accuracy_val)
    assert dtypes[0] == (torch.uint8, torch.float32)  # reads int8, gives float logits
    assert r.accuracy_val >= r.accuracy_val_float - 0.03


def test_digits_rnn_size_is_the_hand_count(rnn_result):
    problem, data, settings, r = rnn_result
    # LSTM(8 -> 64): int8 w_ih 256x8 = 2048 B and w_hh 256x64 = 16384 B; 512 row scales * 4 B
    # and 512 zero points; b_ih + b_hh 512 floats * 4 B
    lstm = 2048 + 16384 + 512 * 4 + 512 + 512 * 4
    # the head's input (scale, zero point) 5 B; head: 640 int8 + 10 scales * 4 B + 10 zero
    # points + 10 float biases * 4 B
    head = 5 + 640 + 40 + 10 + 40
    assert r.model_size_bytes == lstm + head == 23775
    deployed = load_model(r.model, problem)
    assert objectives.model_size_bytes(deployed) == r.model_size_bytes
    # input 8x8 floats + LSTM output 8x64, hidden 64, cell 64 floats; dynamic int8 keeps the
    # LSTM's activations float
    assert r.working_memory_bytes == (64 + 8 * 64 + 64 + 64) * 4 == 2816
    assert r.flops == 2 * (8 * 4 * 64 * (8 + 64) + 64 * 10)
    predicted = predict_costs(
        problem, problem.space.reference, settings, data.input_shape, data.num_classes
    )
    assert predicted["model_size_bytes"] == 23775
    assert predicted["working_memory_bytes"] == 2816 and predicted["flops"] == r.flops


def test_without_a_recurrent_layer_both_is_post():
    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 10),
    ).eval()
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    calib = [torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(2))]
    both, post = quantize(m, "both", calib, x), quantize(m, "post", calib, x)
    assert is_exported(both) and is_exported(post)
    # the same 812 B as tests/objectives/test_objectives.py counts for post
    assert objectives.model_size_bytes(both) == objectives.model_size_bytes(post) == 812
    assert torch.equal(both(x), post(x))
