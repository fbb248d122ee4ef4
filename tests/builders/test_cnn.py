"""Tests for the SpArSe-style CNN builder."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsemod.builders import BUILDERS, build_cnn, cnn_space
from sparsemod.errors import BuildError, ConfigError


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _one_block(kind: str, **over: object) -> dict:
    params = dict(cnn_space().reference)
    params.update(
        num_blocks=1,
        b1_layers=1,
        b1_type=kind,
        b1_filters=8,
        b1_kernel=3,
        b1_pool="none",
        num_fc=0,
    )
    params.update(over)
    return params


def test_space_has_exactly_the_documented_parameters() -> None:
    names = ["num_blocks"]
    for b in (1, 2, 3):
        names += [f"b{b}_layers", f"b{b}_type", f"b{b}_filters", f"b{b}_kernel", f"b{b}_pool"]
    names += ["num_fc", "fc1_units", "fc2_units", "dropout", "lr", "keep_ratio"]
    space = cnn_space()
    assert space.names == names
    assert space["b1_kernel"].ordered
    assert space["b1_filters"].log
    assert BUILDERS["cnn"] == (build_cnn, cnn_space)


def test_reference_parameter_count() -> None:
    model = build_cnn(cnn_space().reference, (1, 8, 8), 10)
    expected = (
        (1 * 16 * 9 + 16)  # conv1
        + 2 * 16  # bn1
        + (16 * 32 * 9 + 32)  # conv2
        + 2 * 32  # bn2
        + (32 * 2 * 2 * 64 + 64)  # fc1: 8x8 pooled twice is 2x2
        + (64 * 10 + 10)  # out
    )
    assert expected == 13802
    assert _count(model) == expected


def test_reference_forward_shape_and_child_names() -> None:
    model = build_cnn(cnn_space().reference, (1, 8, 8), 10)
    model.eval()
    assert model(torch.randn(4, 1, 8, 8)).shape == (4, 10)
    assert list(dict(model.named_children())) == [
        "b1_l1_conv", "b1_l1_bn", "b1_l1_relu", "b1_pool",
        "b2_l1_conv", "b2_l1_bn", "b2_l1_relu", "b2_pool",
        "flatten", "fc1", "fc1_relu", "fc1_drop", "out",
    ]  # fmt: skip


def test_standard_block_count() -> None:
    model = build_cnn(_one_block("standard"), (3, 4, 4), 2)
    expected = (3 * 8 * 9 + 8) + 2 * 8 + (8 * 4 * 4 * 2 + 2)  # conv, bn, out
    assert _count(model) == expected == 498


def test_downsampled_block_count() -> None:
    model = build_cnn(_one_block("downsampled"), (3, 4, 4), 2)
    expected = (
        (3 * 4 * 1 + 4)  # 1x1 reduce to 8 // 2 = 4 channels
        + 2 * 4  # its bn
        + (4 * 8 * 9 + 8)  # 3x3 conv
        + 2 * 8  # its bn
        + (8 * 4 * 4 * 2 + 2)  # out
    )
    assert _count(model) == expected == 594


def test_depthwise_block_count() -> None:
    model = build_cnn(_one_block("depthwise"), (3, 4, 4), 2)
    expected = (
        (3 * 1 * 9 + 3)  # depthwise 3x3, one filter per input channel
        + 2 * 3  # its bn
        + (3 * 8 + 8)  # pointwise 1x1
        + 2 * 8  # its bn
        + (8 * 4 * 4 * 2 + 2)  # out
    )
    assert _count(model) == expected == 342


def test_kernel_5_layers_pooling_and_two_fc() -> None:
    params = _one_block(
        "standard", b1_layers=2, b1_kernel=5, b1_pool="avg", num_fc=2, fc1_units=16, fc2_units=8
    )
    model = build_cnn(params, (1, 6, 6), 3)
    expected = (
        (1 * 8 * 25 + 8) + 2 * 8  # layer 1
        + (8 * 8 * 25 + 8) + 2 * 8  # layer 2
        + (8 * 3 * 3 * 16 + 16)  # fc1: 6x6 pooled once is 3x3
        + (16 * 8 + 8)  # fc2
        + (8 * 3 + 3)  # out
    )  # fmt: skip
    assert _count(model) == expected == 3179
    assert isinstance(model.b1_pool, nn.AvgPool2d)
    assert model(torch.randn(2, 1, 6, 6)).shape == (2, 3)


def test_unused_blocks_are_ignored() -> None:
    ref = dict(cnn_space().reference)
    other = dict(ref, b3_type="depthwise", b3_filters=64, b3_pool="max", fc2_units=256)
    torch.manual_seed(0)
    a = build_cnn(ref, (1, 8, 8), 10)
    torch.manual_seed(0)
    b = build_cnn(other, (1, 8, 8), 10)
    assert str(a) == str(b)
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


def test_feature_map_collapse_raises_build_error() -> None:
    params = dict(cnn_space().reference, num_blocks=3, b3_pool="max")
    with pytest.raises(BuildError) as err:
        build_cnn(params, (1, 4, 4), 10)
    assert str(err.value) == (
        "block 3 pooling: feature map is 1x1, too small to pool "
        "(input 1x4x4, blocks 1-2 already halved it)"
    )


def test_first_block_too_small_to_pool() -> None:
    with pytest.raises(BuildError, match=r"block 1 pooling: feature map is 1x8.*\(input 2x1x8\)"):
        build_cnn(cnn_space().reference, (2, 1, 8), 10)


@pytest.mark.parametrize("shape", [(8, 8), (1, 1, 8, 8)])
def test_input_must_be_3d(shape: tuple[int, ...]) -> None:
    with pytest.raises(BuildError, match="channels, height, width"):
        build_cnn(cnn_space().reference, shape, 10)


def test_unknown_param_is_named() -> None:
    with pytest.raises(ConfigError, match="b4_layers"):
        build_cnn(dict(cnn_space().reference, b4_layers=1), (1, 8, 8), 10)


def test_missing_param_is_named() -> None:
    params = dict(cnn_space().reference)
    del params["b3_kernel"]  # even an unused block's parameters must be present
    with pytest.raises(ConfigError, match="b3_kernel"):
        build_cnn(params, (1, 8, 8), 10)


@pytest.mark.parametrize(
    ("name", "value"), [("b1_filters", 65), ("num_blocks", 0), ("b2_kernel", 7), ("dropout", 0.6)]
)
def test_out_of_range_param_is_named(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=name):
        build_cnn(dict(cnn_space().reference, **{name: value}), (1, 8, 8), 10)


def test_same_seed_same_weights() -> None:
    params = dict(cnn_space().reference, b2_type="depthwise", num_fc=2)
    torch.manual_seed(123)
    a = build_cnn(params, (3, 16, 16), 10).state_dict()
    torch.manual_seed(123)
    b = build_cnn(params, (3, 16, 16), 10).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kind", ["standard", "downsampled", "depthwise"])
def test_fx_trace_matches_module(kind: str) -> None:
    params = dict(cnn_space().reference, b1_type=kind, b2_type=kind, num_fc=2)
    torch.manual_seed(0)
    model = build_cnn(params, (3, 8, 8), 10).eval()
    traced = torch.fx.symbolic_trace(model)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(traced(x), model(x))
