"""The evaluator end to end, black box: real training, real compression, real measures."""

from __future__ import annotations

import dataclasses
import traceback

import pytest
import torch
from torch.utils.data import TensorDataset

from sparsemod import objectives
from sparsemod.builders import build_cnn, build_mlp
from sparsemod.builders.mlp import mlp_space
from sparsemod.errors import ConfigError
from sparsemod.evaluate import FAILED, EvalSettings, evaluate, load_model, predict_costs
from sparsemod.problems import Problem, get_problem
from sparsemod.train import accuracy, seeded


@pytest.fixture(scope="module")
def cnn():
    problem = get_problem("digits_cnn")
    return problem, problem.load(0)


@pytest.fixture(scope="module")
def reference_result(cnn):
    problem, data = cnn
    params = dict(problem.space.reference, keep_ratio=0.5)
    # SpArSe's counts, checked by hand below (TFLM's: tests/objectives/test_runtime.py)
    settings = EvalSettings(epochs=5, quant_scheme="post", score_test=True, seed=0, runtime="ideal")
    return evaluate(problem, params, settings, data)


@pytest.mark.slow
def test_reference_cnn_pruned_and_int8_learns_digits_and_shrinks(cnn, reference_result):
    problem, data = cnn
    r = reference_result
    assert r.ok, r.failure_reason
    assert r.accuracy_test >= 0.95
    with seeded(0):
        dense = build_cnn(problem.space.reference, data.input_shape, data.num_classes)
    # 13802 parameters, of which the batch norms' 2 * (16 + 32) fold into the convs
    assert r.dense_size_bytes == objectives.model_size_bytes(dense) == (13802 - 96) * 4
    assert r.model_size_bytes < 0.30 * r.dense_size_bytes
    assert r.sparsity == pytest.approx(0.5, abs=1e-3)
    assert r.error == pytest.approx(1 - r.accuracy_val)


@pytest.mark.slow
def test_objectives_are_measured_on_the_deployed_model(cnn, reference_result):
    problem, data = cnn
    r = reference_result
    deployed = load_model(r.model, problem)
    x = data.val.tensors[0][:1]
    assert accuracy(deployed, data.val) == pytest.approx(r.accuracy_val)
    assert objectives.model_size_bytes(deployed) == r.model_size_bytes
    assert objectives.working_memory_bytes(deployed, x) == r.working_memory_bytes
    assert objectives.flops(deployed, x) == r.flops
    # int8 activations: 1x8x8 input + 16x8x8 conv output, then 16x8x8 + 16x4x4 pooled
    assert r.working_memory_bytes == 64 + 1024 + 256 - 64 == 1280
    assert r.latency_s == pytest.approx(r.flops / EvalSettings().target_flops)
    # the history runs train -> prune -> fine-tune -> quantize
    stages = [h["stage"] for h in r.history]
    assert stages == ["train"] * 5 + ["prune", "finetune", "quantize:post"]


def test_same_seed_same_result_and_test_split_untouched_unless_asked(cnn):
    problem, data = cnn
    settings = EvalSettings(
        epochs=1, quant_scheme="none", runtime="ideal", keep_model=False, device="cpu"
    )
    a = evaluate(problem, problem.space.reference, settings, data)
    b = evaluate(problem, problem.space.reference, settings, data)
    strip = {"train_seconds": 0.0, "total_seconds": 0.0, "history": ()}
    assert dataclasses.replace(a, **strip) == dataclasses.replace(b, **strip)
    assert a.accuracy_test is None


def test_a_candidate_the_front_dominates_keeps_no_model(cnn, reference_result):
    problem, data = cnn
    r = reference_result
    params = dict(problem.space.reference, keep_ratio=0.5)
    objectives = ("error", "model_size_bytes", "working_memory_bytes")

    def run(*points):
        front = tuple(tuple(zip(objectives, p)) for p in points)
        settings = EvalSettings(
            epochs=5, quant_scheme="post", seed=0, runtime="ideal", model_front=front
        )
        return evaluate(problem, params, settings, data)

    mine = (r.error, r.model_size_bytes, r.working_memory_bytes)
    # better in size only, equal in the rest: dominates -> no model, same numbers
    dominated = run((1.0, 1e9, 1e9), (r.error, r.model_size_bytes - 1, r.working_memory_bytes))
    assert dominated.model is None and dominated.error == r.error
    # an equal point, and points better in one objective but worse in another: kept
    kept = run(mine, (0.0, 1e9, 1.0), (r.error - 0.01, r.model_size_bytes + 1, 0.0))
    assert kept.model is not None and kept.model.format == "exported"


def test_a_network_that_cannot_build_is_a_failed_trial_with_its_reason(cnn):
    problem, data = cnn
    params = dict(problem.space.reference, num_blocks=3, b3_pool="max")
    params.update(b1_pool="max", b2_pool="max")
    # 8x8 halved twice is 2x2, a third pooling gives 1x1; a fourth block does not exist, so
    # make the map collapse with 5x5 blocks on a smaller input instead.
    small = dataclasses.replace(data, input_shape=(1, 2, 2))
    r = evaluate(problem, params, EvalSettings(epochs=1), small)
    assert r.status == FAILED
    assert "BuildError" in r.failure_reason and "too small to pool" in r.failure_reason
    assert r.model_size_bytes is None and r.error is None


def test_debug_puts_the_traceback_in_the_reason(cnn):
    problem, data = cnn
    params = dict(problem.space.reference, b2_pool="max")
    small = dataclasses.replace(data, input_shape=(1, 2, 2))
    r = evaluate(problem, params, EvalSettings(epochs=1, debug=True), small)
    assert "Traceback" in r.failure_reason


def test_bad_params_and_settings_are_named(cnn):
    problem, data = cnn
    with pytest.raises(ConfigError, match="b1_filters"):
        evaluate(problem, dict(problem.space.reference, b1_filters=1000), EvalSettings(), data)
    with pytest.raises(ConfigError, match="quant_scheme"):
        EvalSettings(quant_scheme="int3")
    with pytest.raises(ConfigError, match="keep_ratio"):
        EvalSettings(keep_ratio=1.5)


@pytest.mark.slow
def test_rnn_with_dynamic_int8_on_digit_rows():
    problem = get_problem("digits_rnn")
    r = evaluate(
        problem,
        problem.space.reference,
        EvalSettings(epochs=3, quant_scheme="dynamic", runtime="ideal", device="cpu"),
    )
    assert r.ok, r.failure_reason
    assert r.accuracy_val >= 0.6
    reloaded = load_model(r.model, problem)
    assert accuracy(reloaded, problem.load(0).val) == pytest.approx(r.accuracy_val)
    # hidden 64 over 8 features, 8 steps: output 8x64 + h 64 + c 64 floats + 8x8 input
    assert r.working_memory_bytes == (8 * 64 + 64 + 64 + 64) * 4
    assert r.flops == 2 * (8 * 4 * 64 * (8 + 64) + 64 * 10)


@pytest.mark.slow
def test_variable_length_sequences_train_through_the_collate_fn():
    problem = get_problem("digits_rnn_varlen")
    data = problem.load(0)
    assert data.collate_fn is not None
    r = evaluate(
        problem,
        problem.space.reference,
        EvalSettings(epochs=2, quant_scheme="dynamic", runtime="ideal", device="cpu"),
        data,
    )
    assert r.ok, r.failure_reason
    assert r.accuracy_val >= 0.5
    reloaded = load_model(r.model, problem)
    assert accuracy(reloaded, data.val, collate_fn=data.collate_fn) == pytest.approx(r.accuracy_val)


def _wide_output_data(seed: int) -> list[TensorDataset]:
    g = torch.Generator().manual_seed(seed)
    return [
        TensorDataset(torch.randn(n, 1, 2, 2, generator=g), torch.arange(n) % 50)
        for n in (200, 100, 100)
    ]


def test_predicted_working_memory_counts_the_float_logits_as_measured():
    # 4 inputs, 16 hidden units, 50 classes: the logits set the peak.
    problem = Problem("wide_output", mlp_space(), build_mlp, _wide_output_data)
    params = dict(problem.space.reference, num_layers=1, units1=16)
    settings = EvalSettings(
        epochs=1, quant_scheme="post", runtime="ideal", device="cpu", keep_model=False
    )
    predicted = predict_costs(problem, params, settings, (1, 2, 2), 50)
    r = evaluate(problem, params, settings)
    assert r.ok, r.failure_reason
    # int8 input 4 B + int8 hidden 16 B, then the hidden 16 B + 50 float logits 200 B
    assert predicted["working_memory_bytes"] == r.working_memory_bytes == 16 + 50 * 4
    assert predicted["flops"] == r.flops == 2 * (4 * 16 + 16 * 50)


# ------------------------------------------------------------------ failures (DESIGN.md)
# A candidate that does not build, runs out of memory or diverges is a failed trial;
# anything else is a bug and propagates. tests/faulty_problems.py picks each fault by the
# width of the first layer.

FAST = EvalSettings(epochs=1, quant_scheme="none", runtime="ideal", keep_model=False, device="cpu")


@pytest.fixture(scope="module")
def faulty():
    import faulty_problems

    problem = faulty_problems.mixed()
    return problem, problem.load(0), faulty_problems.FAULT_OF_UNITS1


def _with_fault(faulty, fault: str) -> dict:
    problem, _, faults = faulty
    (units,) = [u for u, f in faults.items() if f == fault]
    return dict(problem.space.reference, units1=units, keep_ratio=1.0)


@pytest.mark.parametrize("method", ["magnitude", "dynamic_sparse"])
def test_a_shape_mismatch_in_training_is_a_bug_not_a_failed_trial(faulty, method):
    # magnitude: the dense training; dynamic_sparse trains through compress/context.py
    problem, data, _ = faulty
    params = dict(_with_fault(faulty, "shape"), keep_ratio=0.5)
    settings = dataclasses.replace(FAST, prune_method=method)
    with pytest.raises(RuntimeError, match="cannot be multiplied") as info:
        evaluate(problem, params, settings, data)
    assert "in forward" in "".join(traceback.format_exception(info.value))


def test_a_builder_that_raises_anything_but_build_error_has_a_bug(faulty):
    problem, data, _ = faulty

    def build(params, input_shape, num_classes):
        raise TypeError("the builder's own bug")

    broken = dataclasses.replace(problem, build=build)
    with pytest.raises(TypeError, match="the builder's own bug"):
        evaluate(broken, problem.space.reference, FAST, data)
    with pytest.raises(TypeError, match="the builder's own bug"):
        predict_costs(broken, problem.space.reference, FAST, data.input_shape, data.num_classes)


def test_a_network_that_does_not_run_is_not_costed_as_a_candidate_that_does_not_build():
    class Mismatched(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1) @ torch.zeros(3, 10)

    problem = Problem("mismatched", mlp_space(), lambda p, s, c: Mismatched(), _wide_output_data)
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        predict_costs(
            problem,
            problem.space.reference,
            dataclasses.replace(FAST, pruning=False),
            (1, 2, 2),
            50,
        )


@pytest.mark.parametrize(
    ("fault", "method", "reason"),
    [
        ("build", "magnitude", "BuildError: this candidate does not build"),
        ("diverge", "magnitude", "InfeasibleError: training diverged: loss is nan"),
        ("out_of_memory", "magnitude", "out of memory: RuntimeError: "),
        ("out_of_memory", "dynamic_sparse", "out of memory: RuntimeError: "),
    ],
)
def test_candidate_failures_are_failed_trials_with_their_reason(faulty, fault, method, reason):
    problem, data, _ = faulty
    params = dict(_with_fault(faulty, fault), keep_ratio=0.5)
    settings = dataclasses.replace(FAST, prune_method=method)
    r = evaluate(problem, params, settings, data)
    assert r.status == FAILED
    assert r.failure_reason.startswith(reason), r.failure_reason
    assert r.error is None and r.working_memory_bytes is None
