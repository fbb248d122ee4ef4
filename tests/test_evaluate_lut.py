"""``compression = lut`` in the evaluator: clustered weights, TFLM's LUT flash and arena."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sparsemod.compress.cluster import int8_distinct
from sparsemod.evaluate import EvalSettings, evaluate, load_model, predict_costs
from sparsemod.objectives.tflm import graph_costs
from sparsemod.objectives.tflm_graph import lower
from sparsemod.problems import get_problem
from sparsemod.space import IntParam, SearchSpace

_MLP = {"num_layers": 2, "units1": 128, "units2": 64, "units3": 32, "activation": "relu",
        "dropout": 0.0, "lr": 3e-3, "keep_ratio": 0.5}  # fmt: skip


@pytest.fixture(scope="module")
def mlp():
    problem = get_problem("digits_mlp")
    return problem, problem.load(0)


def _settings(**over) -> EvalSettings:
    return EvalSettings(**{"epochs": 4, "finetune_epochs": 1, "seed": 0, **over})


@pytest.mark.slow
def test_lut_shrinks_flash_grows_the_arena_and_keeps_accuracy(mlp):
    problem, data = mlp
    plain = evaluate(problem, _MLP, _settings(), data)
    lut = evaluate(problem, _MLP, _settings(compression="lut", lut_bits=4), data)
    assert plain.ok and lut.ok, (plain.failure_reason, lut.failure_reason)
    # Only fc2 (64 x 128) is worth compressing at 4 bits: its 8 KB of int8 weights become
    # 4 KB of indices and 64 tables of 16 values (1 KB); fc1's 128 tables, with 12 B a
    # table for the decoded tensor's scales and zero points, would grow the file by 24 B,
    # and the output layer's 640 weights by 504 B: fc2 alone saves about 1.8 KB.
    assert 1500 < plain.model_size_bytes - lut.model_size_bytes < 2000
    # and it is decoded into the arena while its layer runs
    assert lut.working_memory_bytes - plain.working_memory_bytes >= 7000
    assert lut.accuracy_val >= plain.accuracy_val - 0.03
    assert [h["stage"] for h in lut.history].count("cluster:4bit") == 1
    # the search's prediction before training is what was measured after
    predicted = predict_costs(problem, _MLP, _settings(compression="lut", lut_bits=4),
                              data.input_shape, data.num_classes)  # fmt: skip
    assert predicted["model_size_bytes"] == lut.model_size_bytes
    assert predicted["working_memory_bytes"] == lut.working_memory_bytes


@pytest.mark.slow
def test_the_space_can_search_the_index_width(mlp):
    base, data = mlp
    space = SearchSpace([*base.space.parameters, IntParam("lut_bits", 1, 7)],
                        reference={**base.space.reference, "lut_bits": 4})  # fmt: skip
    problem = dataclasses.replace(base, space=space)
    settings = _settings(compression="lut", lut_bits=6, epochs=2)
    sizes = {}
    for bits in (2, 4):
        r = evaluate(problem, {**_MLP, "lut_bits": bits}, settings, data)
        assert r.ok, r.failure_reason
        sizes[bits] = r.model_size_bytes
        # the stored network (int8, as deployed) holds at most 2**bits values a channel
        assert r.model.params["lut_bits"] == bits
        model = load_model(r.model, problem)
        assert model(data.val.tensors[0][:4]).shape == (4, 10)
    assert sizes[2] < sizes[4]


def test_without_lut_the_flash_is_the_dense_flatbuffers(mlp):
    problem, data = mlp
    costs = predict_costs(problem, _MLP, _settings(), data.input_shape, data.num_classes)
    net = problem.build(_MLP, data.input_shape, data.num_classes)
    graph = lower(net, torch.zeros(1, *data.input_shape))
    assert costs["model_size_bytes"] == graph_costs(graph).flatbuffer_bytes
    assert int8_distinct(net.fc1.weight) > 16  # an unclustered layer: no LUT would take it
