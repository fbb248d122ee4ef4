"""Tests for the MLP builder."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsemod.builders import BUILDERS, build_mlp, mlp_space
from sparsemod.errors import BuildError, ConfigError


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_space_names_and_registry() -> None:
    assert mlp_space().names == [
        "num_layers", "units1", "units2", "units3", "activation", "dropout", "lr", "keep_ratio",
    ]  # fmt: skip
    assert BUILDERS["mlp"] == (build_mlp, mlp_space)


def test_reference_parameter_count() -> None:
    model = build_mlp(mlp_space().reference, (1, 8, 8), 10)
    expected = (
        (64 * 128 + 128)  # fc1 on the flattened 1x8x8 input
        + (128 * 64 + 64)  # fc2
        + (64 * 10 + 10)  # out; units3 unused with num_layers=2
    )
    assert _count(model) == expected == 17226


def test_reference_forward_shape_and_child_names() -> None:
    model = build_mlp(mlp_space().reference, (1, 8, 8), 10).eval()
    assert model(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    assert list(dict(model.named_children())) == [
        "flatten", "fc1", "fc1_act", "fc1_drop", "fc2", "fc2_act", "fc2_drop", "out",
    ]  # fmt: skip


def test_three_tanh_layers_on_flat_input() -> None:
    params = dict(mlp_space().reference, num_layers=3, units1=16, units2=32, units3=16)
    params["activation"] = "tanh"
    model = build_mlp(params, (20,), 4)
    expected = (20 * 16 + 16) + (16 * 32 + 32) + (32 * 16 + 16) + (16 * 4 + 4)
    assert _count(model) == expected == 1476
    assert isinstance(model.fc3_act, nn.Tanh)
    assert model(torch.randn(3, 20)).shape == (3, 4)


def test_bad_input_shape_raises_build_error() -> None:
    with pytest.raises(BuildError):
        build_mlp(mlp_space().reference, (), 10)
    with pytest.raises(BuildError):
        build_mlp(mlp_space().reference, (0, 4), 10)


def test_unknown_param_is_named() -> None:
    with pytest.raises(ConfigError, match="units4"):
        build_mlp(dict(mlp_space().reference, units4=16), (8,), 2)


def test_missing_param_is_named() -> None:
    params = dict(mlp_space().reference)
    del params["activation"]
    with pytest.raises(ConfigError, match="activation"):
        build_mlp(params, (8,), 2)


@pytest.mark.parametrize(
    ("name", "value"), [("units1", 8), ("num_layers", 4), ("activation", "gelu"), ("lr", 1.0)]
)
def test_out_of_range_param_is_named(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=name):
        build_mlp(dict(mlp_space().reference, **{name: value}), (8,), 2)


def test_same_seed_same_weights() -> None:
    torch.manual_seed(7)
    a = build_mlp(mlp_space().reference, (1, 8, 8), 10).state_dict()
    torch.manual_seed(7)
    b = build_mlp(mlp_space().reference, (1, 8, 8), 10).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fx_trace_matches_module() -> None:
    torch.manual_seed(0)
    model = build_mlp(mlp_space().reference, (1, 8, 8), 10).eval()
    traced = torch.fx.symbolic_trace(model)
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(traced(x), model(x))
