"""Tests for network morphisms and warm starts from a parent's weights."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
import torch
from torch import nn

from sparsemod.builders import build_cnn, build_mlp, build_rnn, cnn_space, mlp_space, rnn_space
from sparsemod.errors import ConfigError
from sparsemod.morph import ROLES, Morph, infer_roles, inherit_weights, morphs
from sparsemod.space import FixedParam, FloatParam, IntParam, SearchSpace, choice

IMAGE = (1, 8, 8)
SEQUENCE = (6, 5)


# --------------------------------------------------------------------------- roles


def test_infer_roles_cnn() -> None:
    roles = infer_roles(cnn_space())
    assert set(roles) == set(cnn_space().names)
    assert set(roles.values()) <= set(ROLES)
    expected = {
        "num_blocks": "depth",
        "b1_layers": "depth",
        "b1_type": "other",
        "b1_filters": "width",
        "b2_kernel": "kernel",
        "b3_pool": "other",
        "num_fc": "depth",
        "fc1_units": "width",
        "fc2_units": "width",
        "dropout": "other",
        "lr": "other",
        "keep_ratio": "keep_ratio",
    }
    assert {k: roles[k] for k in expected} == expected


def test_infer_roles_mlp_and_rnn() -> None:
    assert infer_roles(mlp_space()) == {
        "num_layers": "depth",
        "units1": "width",
        "units2": "width",
        "units3": "width",
        "activation": "other",
        "dropout": "other",
        "lr": "other",
        "keep_ratio": "keep_ratio",
    }
    assert infer_roles(rnn_space()) == {
        "cell": "other",
        "num_layers": "depth",
        "hidden": "width",
        "dropout": "other",
        "lr": "other",
        "keep_ratio": "keep_ratio",
    }


def test_infer_roles_other_names_and_fixed_parameters_left_out() -> None:
    space = SearchSpace(
        (
            IntParam("hidden_size", 4, 64),
            IntParam("width", 4, 64),
            IntParam("stem_layers", 1, 4),
            choice("kernel", [3, 5, 7]),
            IntParam("units", 4, 8),  # no index: not a width by name
            FixedParam("epochs", 3),
        ),
        {"hidden_size": 8, "width": 8, "stem_layers": 1, "kernel": 3, "units": 4, "epochs": 3},
    )
    assert infer_roles(space) == {
        "hidden_size": "width",
        "width": "width",
        "stem_layers": "depth",
        "kernel": "kernel",
        "units": "other",
    }


# --------------------------------------------------------------------------- morphs


def _triples(ms: list[Morph]) -> list[tuple[str, str, Any]]:
    return [(m.op, m.param, m.params[m.param]) for m in ms]


def test_cnn_reference_morphs_exact() -> None:
    space = cnn_space()
    assert _triples(morphs(space, space.reference)) == [
        ("deepen", "num_blocks", 3),
        ("shallow", "num_blocks", 1),
        ("deepen", "b1_layers", 2),
        ("tweak", "b1_type", "downsampled"),
        ("tweak", "b1_type", "depthwise"),
        ("widen", "b1_filters", 24),
        ("narrow", "b1_filters", 11),
        ("kernel", "b1_kernel", 5),
        ("tweak", "b1_pool", "avg"),
        ("tweak", "b1_pool", "none"),
        ("deepen", "b2_layers", 2),
        ("tweak", "b2_type", "downsampled"),
        ("tweak", "b2_type", "depthwise"),
        ("widen", "b2_filters", 48),
        ("narrow", "b2_filters", 21),
        ("kernel", "b2_kernel", 5),
        ("tweak", "b2_pool", "avg"),
        ("tweak", "b2_pool", "none"),
        ("deepen", "num_fc", 2),
        ("shallow", "num_fc", 0),
        ("widen", "fc1_units", 96),
        ("narrow", "fc1_units", 43),
        ("tweak", "dropout", 0.15),
        ("tweak", "dropout", 0.05),
        ("tweak", "lr", 0.00375),
        ("tweak", "lr", 0.0024),
        ("keep_ratio", "keep_ratio", 0.625),
        ("keep_ratio", "keep_ratio", 0.4),
    ]


def test_cnn_morph_fields() -> None:
    space = cnn_space()
    by_desc = {m.description: m for m in morphs(space, space.reference)}
    widen = by_desc["widen b2_filters 32 -> 48"]
    assert widen.op == "widen" and widen.param == "b2_filters" and widen.preserves_function
    assert dict(widen.params) == {**space.reference, "b2_filters": 48}
    assert by_desc["deepen num_blocks 2 -> 3"].preserves_function
    assert not by_desc["narrow b1_filters 16 -> 11"].preserves_function
    assert not by_desc["kernel b1_kernel 3 -> 5"].preserves_function
    assert not by_desc["keep_ratio 0.5 -> 0.625"].preserves_function
    assert not by_desc["tweak b1_type standard -> depthwise"].preserves_function
    # The newly used block keeps the values it already had.
    deepen = by_desc["deepen num_blocks 2 -> 3"].params
    assert (deepen["b3_filters"], deepen["b3_pool"]) == (32, "none")


def test_unused_blocks_are_not_morphed() -> None:
    space = cnn_space()
    params = morphs(space, space.reference)
    assert not [m for m in params if m.param.startswith("b3_") or m.param == "fc2_units"]
    two_fc_three_blocks = {**space.reference, "num_blocks": 3, "num_fc": 2}
    names = {m.param for m in morphs(space, two_fc_three_blocks)}
    assert {"b3_filters", "b3_layers", "fc2_units"} <= names
    one_block = {**space.reference, "num_blocks": 1, "num_fc": 0}
    names = {m.param for m in morphs(space, one_block)}
    assert not {n for n in names if n.startswith(("b2_", "b3_", "fc"))}
    mlp = mlp_space()
    assert "units3" not in {m.param for m in morphs(mlp, mlp.reference)}


def test_children_valid_unique_not_parent_and_deterministic() -> None:
    for space in (cnn_space(), mlp_space(), rnn_space()):
        parent = space.validate(space.reference)
        first = morphs(space, space.reference)
        assert first == morphs(space, dict(space.reference))
        children = [dict(m.params) for m in first]
        assert all(space.validate(c) == c for c in children)
        assert parent not in children
        assert all(children.count(c) == 1 for c in children)
        # A single step: exactly one parameter differs from the parent.
        for m in first:
            assert [k for k in parent if parent[k] != m.params[k]] == [m.param]


def test_no_morph_beyond_a_bound() -> None:
    space = cnn_space()
    top = {**space.reference, "num_blocks": 3, "b1_filters": 64, "num_fc": 2, "keep_ratio": 1.0}
    got = _triples(morphs(space, top))
    assert ("narrow", "b1_filters", 43) in got
    assert not [t for t in got if t[0] == "widen" and t[1] == "b1_filters"]
    assert not [t for t in got if t[1] in ("num_blocks", "num_fc") and t[0] == "deepen"]
    assert [t for t in got if t[1] == "keep_ratio"] == [("keep_ratio", "keep_ratio", 0.8)]

    bottom = {**space.reference, "num_blocks": 1, "b1_filters": 4, "b1_layers": 1, "num_fc": 0}
    bottom["keep_ratio"] = 0.05
    got = _triples(morphs(space, bottom))
    assert [t for t in got if t[1] == "b1_filters"] == [("widen", "b1_filters", 6)]
    assert [t for t in got if t[1] == "b1_layers"] == [("deepen", "b1_layers", 2)]
    assert [t for t in got if t[1] == "num_blocks"] == [("deepen", "num_blocks", 2)]
    assert [t for t in got if t[1] == "keep_ratio"] == [("keep_ratio", "keep_ratio", 0.0625)]


def test_widen_clips_to_the_bound_and_steps_at_least_one() -> None:
    space = cnn_space()
    got = _triples(morphs(space, {**space.reference, "b1_filters": 50}))
    assert ("widen", "b1_filters", 64) in got  # 75 clipped
    got = _triples(morphs(space, {**space.reference, "b1_filters": 5}))
    # Halves round up (7.5 -> 8); 5 / 1.5 = 3.33 is clipped to the bound 4.
    assert [t for t in got if t[1] == "b1_filters"] == [
        ("widen", "b1_filters", 8),
        ("narrow", "b1_filters", 4),
    ]


def _custom_space() -> SearchSpace:
    return SearchSpace(
        (
            choice("width", [64, 16, 32]),
            IntParam("kernel", 1, 7),
            choice("norm", ["bn", "ln", "none"], ordered=True),
            FloatParam("momentum", 0.0, 1.0),
            IntParam("stride", 1, 3),
            FloatParam("keep_ratio", 0.1, 1.0),
        ),
        {"width": 32, "kernel": 1, "norm": "ln", "momentum": 0.95, "stride": 2, "keep_ratio": 0.9},
    )


def test_other_parameter_kinds() -> None:
    space = _custom_space()
    assert _triples(morphs(space, space.reference)) == [
        ("widen", "width", 64),  # numeric width choices go by value, not by listed order
        ("narrow", "width", 16),
        ("kernel", "kernel", 3),  # 1 - 2 is out of bounds: skipped, not clipped
        ("tweak", "norm", "none"),
        ("tweak", "norm", "bn"),
        ("tweak", "momentum", 1.0),  # 0.95 + 0.1 clipped
        ("tweak", "momentum", 0.85),
        ("tweak", "stride", 3),
        ("tweak", "stride", 1),
        ("keep_ratio", "keep_ratio", 1.0),
        ("keep_ratio", "keep_ratio", 0.72),
    ]


def test_role_overrides() -> None:
    space = _custom_space()
    got = _triples(morphs(space, space.reference, roles={"stride": "depth", "width": "other"}))
    assert ("deepen", "stride", 3) in got and ("shallow", "stride", 1) in got
    # An unordered-looking numeric choice as "other" is ordered, so neighbours in listed order.
    assert [t for t in got if t[1] == "width"] == [("tweak", "width", 16)]
    with pytest.raises(ConfigError, match="height"):
        morphs(space, space.reference, roles={"height": "width"})
    with pytest.raises(ConfigError, match="size"):
        morphs(space, space.reference, roles={"stride": "size"})
    with pytest.raises(ConfigError, match="stride"):
        morphs(space, {**space.reference, "stride": 9})


# --------------------------------------------------------------------------- weights


Build = Callable[[Mapping[str, Any], tuple[int, ...], int], nn.Module]


def _trained(build: Build, params: Mapping[str, Any], shape: tuple[int, ...]) -> nn.Module:
    """A parent whose weights and BatchNorm statistics are far from any fresh init."""
    torch.manual_seed(0)
    model = build(params, shape, 10)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
        model.train()
        for _ in range(4):
            model(2.0 * torch.randn(16, *shape) + 0.5)
    return model.eval()


def _child(build: Build, params: Mapping[str, Any], shape: tuple[int, ...]) -> nn.Module:
    torch.manual_seed(1)
    return build(params, shape, 10)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_same_function(parent: nn.Module, child: nn.Module, shape: tuple[int, ...]) -> None:
    parent.eval()
    child.eval()
    torch.manual_seed(2)
    x = 2.0 * torch.randn(32, *shape)
    with torch.no_grad():
        expected, got = parent(x), child(x)
    assert expected.abs().max() > 0.1  # a trivial network would make the check vacuous
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def _morph(build: Build, space: SearchSpace, shape: tuple[int, ...], **change: Any):
    parent_params = dict(space.reference)
    parent_params.update(change.pop("parent", {}))
    parent = _trained(build, parent_params, shape)
    before = _snapshot(parent)
    child = _child(build, {**parent_params, **change}, shape)
    fresh = _snapshot(child)
    counts = inherit_weights(parent, child)
    after = parent.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before), "parent changed"
    assert sum(counts.values()) == len(child.state_dict())
    return parent, child, counts, fresh


def test_widen_cnn_block2_preserves_function() -> None:
    parent, child, counts, fresh = _morph(build_cnn, cnn_space(), IMAGE, b2_filters=48)
    _assert_same_function(parent, child, IMAGE)
    assert counts == {"copied": 11, "partial": 7, "fresh": 0, "identity": 0}
    sd, psd = child.state_dict(), parent.state_dict()
    # New output channels keep the child's own init; BatchNorm of new channels is fresh.
    assert torch.equal(sd["b2_l1_conv.weight"][32:], fresh["b2_l1_conv.weight"][32:])
    assert torch.equal(sd["b2_l1_conv.weight"][:32], psd["b2_l1_conv.weight"])
    assert torch.equal(sd["b2_l1_bn.running_var"][32:], torch.ones(16))
    assert torch.equal(sd["b2_l1_bn.running_mean"][:32], psd["b2_l1_bn.running_mean"])
    # fc1 reads 48 channels x 2x2 pixels, channel-major: new channels are trailing columns.
    assert torch.equal(sd["fc1.weight"][:, :128], psd["fc1.weight"])
    assert torch.count_nonzero(sd["fc1.weight"][:, 128:]) == 0


def test_widen_cnn_block1_preserves_function() -> None:
    parent, child, counts, _ = _morph(build_cnn, cnn_space(), IMAGE, b1_filters=24)
    _assert_same_function(parent, child, IMAGE)
    assert counts["fresh"] == 0 and counts["partial"] == 7


@pytest.mark.parametrize("kind", ["downsampled", "depthwise"])
def test_widen_other_layer_types_preserves_function(kind: str) -> None:
    space = cnn_space()
    parent = {"b1_type": kind, "b2_type": kind, "b1_layers": 2}
    for change in ({"b1_filters": 24}, {"b2_filters": 48}):
        p, c, counts, _ = _morph(build_cnn, space, IMAGE, parent=parent, **change)
        _assert_same_function(p, c, IMAGE)
        assert counts["fresh"] == 0


def test_widen_without_pooling_preserves_function() -> None:
    # fc1 reads 8x8 pixels per channel; new channels still take whole trailing blocks.
    parent = {"b1_pool": "none", "b2_pool": "none"}
    p, c, _, _ = _morph(build_cnn, cnn_space(), IMAGE, parent=parent, b2_filters=40)
    _assert_same_function(p, c, IMAGE)


def test_widen_cnn_fc_and_mlp_preserve_function() -> None:
    p, c, _, _ = _morph(build_cnn, cnn_space(), IMAGE, fc1_units=96)
    _assert_same_function(p, c, IMAGE)
    for change in ({"units1": 192}, {"units2": 96}):
        p, c, counts, _ = _morph(build_mlp, mlp_space(), IMAGE, **change)
        _assert_same_function(p, c, IMAGE)
        assert counts["fresh"] == 0
    p, c, _, _ = _morph(build_mlp, mlp_space(), IMAGE, parent={"activation": "tanh"}, units1=192)
    _assert_same_function(p, c, IMAGE)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
def test_widen_rnn_preserves_function(cell: str, layers: int) -> None:
    parent = {"cell": cell, "num_layers": layers, "dropout": 0.2}
    p, c, counts, fresh = _morph(build_rnn, rnn_space(), SEQUENCE, parent=parent, hidden=96)
    _assert_same_function(p, c, SEQUENCE)
    assert counts["fresh"] == 0
    # Gates are stacked along dim 0: each gate block holds the parent's rows first.
    gates = 4 if cell == "lstm" else 3
    w_child = c.state_dict()["encoder.rnn.weight_hh_l0"]
    w_parent = p.state_dict()["encoder.rnn.weight_hh_l0"]
    w_fresh = fresh["encoder.rnn.weight_hh_l0"]
    for g in range(gates):
        assert torch.equal(w_child[g * 96 : g * 96 + 64, :64], w_parent[g * 64 : (g + 1) * 64])
        assert torch.count_nonzero(w_child[g * 96 : g * 96 + 64, 64:]) == 0
        assert torch.equal(w_child[g * 96 + 64 : (g + 1) * 96], w_fresh[g * 96 + 64 : (g + 1) * 96])


def test_deepen_cnn_block_layers_is_identity() -> None:
    parent, child, counts, _ = _morph(build_cnn, cnn_space(), IMAGE, b1_layers=2)
    _assert_same_function(parent, child, IMAGE)
    # The new b1_l2_conv (weight, bias) and b1_l2_bn (5 entries) start as an identity.
    assert counts == {"copied": 18, "partial": 0, "fresh": 0, "identity": 7}
    conv = child.get_submodule("b1_l2_conv")
    assert conv.weight[3, 3, 1, 1] == 1.0 and conv.weight.abs().sum() == 16.0


@pytest.mark.parametrize("kind", ["standard", "depthwise"])
def test_deepen_cnn_blocks_is_identity(kind: str) -> None:
    # Block 3 is square (32 -> 32 filters) and does not pool, so it can start as an identity.
    p, c, counts, _ = _morph(build_cnn, cnn_space(), IMAGE, parent={"b3_type": kind}, num_blocks=3)
    _assert_same_function(p, c, IMAGE)
    assert counts["fresh"] == 0 and counts["identity"] > 0


def test_grown_kernel_is_centred() -> None:
    parent, child, counts, _ = _morph(build_cnn, cnn_space(), IMAGE, b2_kernel=5)
    _assert_same_function(parent, child, IMAGE)
    w = child.state_dict()["b2_l1_conv.weight"]
    torch.testing.assert_close(w[:, :, 1:4, 1:4], parent.state_dict()["b2_l1_conv.weight"])
    assert counts["partial"] == 1


def test_narrow_and_other_morphs_fall_back_to_fresh() -> None:
    space = cnn_space()
    _, child, counts, fresh = _morph(build_cnn, space, IMAGE, b2_filters=21)
    # b2 conv and bn, fc1.weight: smaller, so left alone; block 1 and the head are copied.
    assert counts == {"copied": 11, "partial": 0, "fresh": 7, "identity": 0}
    assert torch.equal(child.state_dict()["fc1.weight"], fresh["fc1.weight"])
    assert child(torch.randn(2, *IMAGE)).shape == (2, 10)

    # No pooling in block 2 quadruples fc1's inputs; the old columns would mean other pixels.
    _, _, counts, _ = _morph(build_cnn, space, IMAGE, b2_pool="none")
    assert counts == {"copied": 17, "partial": 0, "fresh": 1, "identity": 0}

    # A new fc2 of a different size: the head's input no longer lines up, nothing crashes.
    _, child, counts, _ = _morph(build_cnn, space, IMAGE, num_fc=2)
    assert counts["fresh"] > 0
    assert child(torch.randn(2, *IMAGE)).shape == (2, 10)

    # Narrowing an RNN: every recurrent entry is smaller.
    _, child, counts, _ = _morph(build_rnn, rnn_space(), SEQUENCE, hidden=43)
    assert counts == {"copied": 1, "partial": 0, "fresh": 5, "identity": 0}
    assert child(torch.randn(2, *SEQUENCE)).shape == (2, 10)


def test_every_reference_morph_warm_starts() -> None:
    for build, space, shape in (
        (build_cnn, cnn_space(), IMAGE),
        (build_mlp, mlp_space(), IMAGE),
        (build_rnn, rnn_space(), SEQUENCE),
    ):
        parent = _trained(build, space.reference, shape)
        for m in morphs(space, space.reference):
            child = _child(build, m.params, shape)
            counts = inherit_weights(parent, child)
            assert sum(counts.values()) == len(child.state_dict()), m.description
            assert child.eval()(torch.randn(2, *shape)).shape == (2, 10)
