"""Tests for the recurrent (LSTM/GRU) builder."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsemod.builders import BUILDERS, build_rnn, rnn_space
from sparsemod.errors import BuildError, ConfigError


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_space_names_and_registry() -> None:
    assert rnn_space().names == ["cell", "num_layers", "hidden", "dropout", "lr", "keep_ratio"]
    assert BUILDERS["rnn"] == (build_rnn, rnn_space)


def test_reference_parameter_count() -> None:
    model = build_rnn(rnn_space().reference, (20, 6), 5)
    expected = (
        4 * (6 * 64 + 64 * 64 + 64 + 64)  # LSTM: 4 gates x (W_ih, W_hh, b_ih, b_hh)
        + (64 * 5 + 5)  # out
    )
    assert _count(model) == expected == 18757


def test_reference_forward_shape_and_structure() -> None:
    model = build_rnn(rnn_space().reference, (20, 6), 5).eval()
    assert model(torch.randn(3, 20, 6)).shape == (3, 5)
    assert list(dict(model.named_children())) == ["encoder", "dropout", "out"]
    assert isinstance(model.encoder.rnn, nn.LSTM)
    assert model.encoder.rnn.batch_first


def test_two_layer_gru_count_and_dropout() -> None:
    params = dict(rnn_space().reference, cell="gru", num_layers=2, hidden=8, dropout=0.2)
    model = build_rnn(params, (10, 3), 2)
    expected = (
        3 * (3 * 8 + 8 * 8 + 8 + 8)  # GRU layer 1: 3 gates
        + 3 * (8 * 8 + 8 * 8 + 8 + 8)  # GRU layer 2 reads the hidden state of layer 1
        + (8 * 2 + 2)  # out
    )
    assert _count(model) == expected == 762
    assert model.encoder.rnn.dropout == 0.2
    assert model.dropout.p == 0.2
    assert model(torch.randn(4, 10, 3)).shape == (4, 2)


def test_single_layer_has_no_inter_layer_dropout() -> None:
    model = build_rnn(dict(rnn_space().reference, dropout=0.3), (10, 3), 2)
    assert model.encoder.rnn.dropout == 0.0
    assert model.dropout.p == 0.3


def test_output_is_the_last_time_step() -> None:
    torch.manual_seed(0)
    model = build_rnn(rnn_space().reference, (7, 2), 3).eval()
    x = torch.randn(2, 7, 2)
    seq, _ = model.encoder.rnn(x)
    assert torch.equal(model(x), model.out(seq[:, -1]))


@pytest.mark.parametrize("shape", [(20,), (1, 20, 6)])
def test_input_must_be_2d(shape: tuple[int, ...]) -> None:
    with pytest.raises(BuildError, match="seq_len, features"):
        build_rnn(rnn_space().reference, shape, 5)


def test_unknown_param_is_named() -> None:
    with pytest.raises(ConfigError, match="bidirectional"):
        build_rnn(dict(rnn_space().reference, bidirectional=True), (20, 6), 5)


def test_missing_param_is_named() -> None:
    params = dict(rnn_space().reference)
    del params["hidden"]
    with pytest.raises(ConfigError, match="hidden"):
        build_rnn(params, (20, 6), 5)


@pytest.mark.parametrize(
    ("name", "value"), [("hidden", 129), ("num_layers", 3), ("cell", "rnn"), ("keep_ratio", 0.0)]
)
def test_out_of_range_param_is_named(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=name):
        build_rnn(dict(rnn_space().reference, **{name: value}), (20, 6), 5)


def test_same_seed_same_weights() -> None:
    params = dict(rnn_space().reference, num_layers=2)
    torch.manual_seed(3)
    a = build_rnn(params, (20, 6), 5).state_dict()
    torch.manual_seed(3)
    b = build_rnn(params, (20, 6), 5).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_fx_trace_matches_module(cell: str) -> None:
    torch.manual_seed(0)
    model = build_rnn(dict(rnn_space().reference, cell=cell), (20, 6), 5).eval()
    traced = torch.fx.symbolic_trace(model)
    x = torch.randn(2, 20, 6)
    assert torch.equal(traced(x), model(x))
