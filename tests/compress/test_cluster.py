"""Weight clustering for ``compression = lut`` (sparsemod.compress.cluster)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from sparsemod.compress.cluster import (
    check_space_bits,
    cluster_channels,
    cluster_weights,
    int8_distinct,
    lut_worth,
)
from sparsemod.errors import ConfigError
from sparsemod.space import ChoiceParam, FloatParam, IntParam, SearchSpace


def _distinct(w: torch.Tensor) -> list[int]:
    return [len(torch.unique(ch)) for ch in w.reshape(w.shape[0], -1)]


def test_two_values_are_the_two_cluster_means():
    w = torch.tensor([[1.0, 1.2, 5.0, 5.4, 1.1]])
    out = cluster_channels(w, 2)
    assert out[0].tolist() == pytest.approx([1.1, 1.1, 5.2, 5.2, 1.1])


def test_zeros_stay_zero_and_count_as_one_of_the_values():
    w = torch.tensor([[0.0, -2.0, -1.9, 0.0, 3.0, 3.2, 0.0, 7.0]])
    out = cluster_channels(w, 4)  # zero and three more
    assert (out == 0).tolist() == (w == 0).tolist()
    assert out[0].tolist() == pytest.approx([0.0, -1.95, -1.95, 0.0, 3.1, 3.1, 0.0, 7.0])


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 7])
def test_every_channel_holds_at_most_2_to_the_bits_values(bits):
    torch.manual_seed(bits)
    w = torch.randn(24, 16, 3, 3)
    w[torch.rand_like(w) < 0.4] = 0  # pruned
    out = cluster_channels(w, 2**bits)
    assert max(_distinct(out)) <= 2**bits
    assert torch.equal(out == 0, w == 0)
    # and quantizing keeps it so: what TFLM's value tables hold
    assert int8_distinct(out) <= 2**bits


def test_more_bits_lose_less():
    torch.manual_seed(0)
    w = torch.randn(32, 200)
    errors = [float((cluster_channels(w, 2**b) - w).pow(2).mean()) for b in (1, 2, 3, 4, 6)]
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 0.01 * errors[0]


def test_a_channel_with_few_weights_is_left_as_it_is():
    w = torch.randn(8, 9)
    assert torch.equal(cluster_channels(w, 16), w)


def test_int8_distinct_by_hand():
    # scale = 2/127: 2 -> 127, 1 -> 63.5 -> 64 (half to even), -2 -> -127: 3 values
    w = torch.tensor([[2.0, 1.0, 1.0, -2.0], [0.5, 0.5, 0.5, 0.5]])
    assert int8_distinct(w) == 3


def test_only_the_layers_the_lut_stores_smaller_are_clustered_and_bad_bits_are_refused():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 64))
    conv = model[0].weight.detach().clone()
    cluster_weights(model, 2)
    # the linear: 9216 weights -> 2304 B of indices, 64 tables of 4 values (+ 12 B each
    # for the decoded tensor's scales and zero points): 5872 B saved
    assert lut_worth(9216, 2, 4, 64) and max(_distinct(model[3].weight.detach())) <= 4
    # the conv: 36 weights could save nothing, and keep their values
    assert not lut_worth(36, 2, 4, 4) and torch.equal(model[0].weight, conv)
    for bad in (0, 8, 2.0, True):
        with pytest.raises(ConfigError, match="lut_bits"):
            cluster_weights(model, bad)


@pytest.mark.parametrize(
    ("param", "bad"),
    [
        (IntParam("lut_bits", 0, 4), "IntParam with [0]"),
        (IntParam("lut_bits", 2, 9), "IntParam with [9]"),
        (FloatParam("lut_bits", 2.0, 6.0), "FloatParam with [2.0, 6.0]"),
        (ChoiceParam("lut_bits", (2, 8)), "ChoiceParam with [8]"),
    ],
)
def test_a_space_that_can_draw_a_bad_index_width_is_refused(param, bad):
    with pytest.raises(ConfigError, match=r"\(allowed: integers 1 to 7\)") as info:
        check_space_bits(SearchSpace([param]))
    assert str(info.value).startswith(f"space parameter lut_bits: {bad} can draw")
    check_space_bits(SearchSpace([IntParam("lut_bits", 1, 7), FloatParam("lr", 0.1, 1.0)]))


def test_a_search_refuses_it_before_anything_trains(tmp_path):
    from sparsemod.config import TrainConfig
    from sparsemod.problems import get_problem
    from sparsemod.search import Search

    base = get_problem("digits_mlp")
    space = SearchSpace([*base.space.parameters, IntParam("lut_bits", 4, 8)],
                        reference={**base.space.reference, "lut_bits": 4})  # fmt: skip
    cfg = TrainConfig(name="bad_bits", root=str(tmp_path), compression="lut", r1=1, r2=0, r3=0)
    with pytest.raises(ConfigError, match="lut_bits"):
        Search(cfg, dataclasses.replace(base, space=space)).run()
