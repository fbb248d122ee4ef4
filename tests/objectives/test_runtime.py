"""``runtime`` and ``latency_model``: which counts the objectives are, before and after training.

The TFLM model itself is checked against the interpreter in ``test_tflm.py`` and, for a
search's Pareto set, in ``tests/deploy/test_deploy_check.py``; here: that the search's
predicted and measured objectives are that model's numbers, one code path, and what each
runtime refuses.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from sparsemod.builders import build_cnn, cnn_space
from sparsemod.core.boards import get_board
from sparsemod.data import Splits, tensors_of
from sparsemod.data.digits import load_digits_sequences
from sparsemod.errors import BuildError, CompressionError, ConfigError
from sparsemod.evaluate import COMPLETED, FAILED, EvalSettings, evaluate, predict_costs
from sparsemod.objectives import flops, measure_all
from sparsemod.objectives.executorch_cost import executorch_costs
from sparsemod.objectives.latency import ops_latency
from sparsemod.objectives.runtime import CostModel
from sparsemod.objectives.tflm import tflm_costs
from sparsemod.objectives.tflm_graph import lower
from sparsemod.problems import get_problem

X = torch.zeros(1, 1, 8, 8)


def _cnn() -> nn.Module:
    return build_cnn(cnn_space().reference, (1, 8, 8), 10).eval()


def test_tflm_objectives_are_the_flatbuffer_and_the_arena():
    model = _cnn()
    costs = CostModel("tflm", target_flops=1e6).costs(model, model, X)
    expected = tflm_costs(model, X)
    assert costs["model_size_bytes"] == expected.flatbuffer_bytes
    assert costs["working_memory_bytes"] == expected.arena_bytes
    assert costs["flops"] == flops(model, X)
    assert costs["latency_s"] == pytest.approx(flops(model, X) / 1e6)
    # far above SpArSe's count of the same network's int8 activations: TFLM's persistent
    # arena (tensor and node structs, quantization parameters) comes on top
    ideal = measure_all(model, X, 1e6, activation_bytes=1)
    assert costs["working_memory_bytes"] > ideal["working_memory_bytes"] + 2000


def test_executorch_objectives_are_the_pte_and_its_planned_memory():
    model = _cnn()
    costs = CostModel("executorch", target_flops=1e6).costs(model, model, X)
    expected = executorch_costs(model, X)
    assert costs["model_size_bytes"] == expected.pte_bytes
    assert costs["working_memory_bytes"] == expected.planned_bytes
    assert costs["flops"] == flops(model, X)
    # the program holds the weights dense, plus its values table and instructions; the
    # plan holds the input, the activations and CMSIS-NN's scratch, and no runtime structs
    tflm = tflm_costs(model, X)
    assert costs["working_memory_bytes"] < tflm.arena_bytes


def test_executorch_refuses_what_its_cortex_m_backend_leaves_in_float():
    net = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6, 10))
    with pytest.raises(BuildError, match=r"does not deploy to ExecuTorch.*runtime = ideal"):
        CostModel("executorch").costs(net, net, torch.zeros(1, 1, 8))
    with pytest.raises(ConfigError, match="'none' is not what runtime = executorch deploys"):
        CostModel("executorch").check_scheme("none")


def test_ideal_objectives_are_sparses_counts_of_the_deployed_network():
    model = _cnn()
    costs = CostModel("ideal", target_flops=1e6).costs(model, model, X, extra_size_bytes=7)
    expected = measure_all(model, X, 1e6)
    assert costs == {**expected, "model_size_bytes": expected["model_size_bytes"] + 7}


def test_ops_latency_is_the_boards_cycles_under_either_runtime():
    model = _cnn()
    board = get_board("nucleo-l476rg")
    expected = ops_latency(lower(model, X), board)
    for runtime in ("tflm", "ideal"):
        costs = CostModel(runtime, "ops", board=board).costs(model, model, X)
        assert costs["latency_s"] == expected
    # the same network on the 64 MHz board of the same core takes 80/64 as long
    slower = CostModel("tflm", "ops", board=get_board("nrf52840-dk")).costs(model, model, X)
    assert slower["latency_s"] == pytest.approx(expected * 80 / 64)


def test_unstructured_pruning_saves_no_flash_under_tflm_and_does_under_ideal():
    problem = get_problem("digits_cnn")
    sizes = {}
    for runtime in ("tflm", "ideal"):
        for keep in (1.0, 0.25):
            params = {**problem.space.reference, "keep_ratio": keep}
            s = EvalSettings(runtime=runtime, prune_method="magnitude_layerwise")
            sizes[runtime, keep] = predict_costs(problem, params, s, (1, 8, 8), 10)
    assert sizes["tflm", 0.25] == sizes["tflm", 1.0]  # TFLM stores weights dense
    assert sizes["ideal", 0.25]["model_size_bytes"] < sizes["ideal", 1.0]["model_size_bytes"]
    # SpArSe's 14,702 B and 6,212 B against the flatbuffer's dense weights and metadata
    assert sizes["tflm", 1.0]["model_size_bytes"] > sizes["ideal", 1.0]["model_size_bytes"]


def test_predicted_equals_measured_under_tflm():
    problem = get_problem("digits_cnn")
    params = {**problem.space.reference, "keep_ratio": 0.5}
    s = EvalSettings(epochs=1, prune_method="magnitude", finetune_epochs=0, keep_model=False)
    predicted = predict_costs(problem, params, s, (1, 8, 8), 10)
    result = evaluate(problem, params, s)
    measured = {k: getattr(result, k) for k in predicted}
    # global magnitude pruning spreads the kept weights unevenly: SpArSe's size would move;
    # the runtime's does not
    assert measured == predicted


def _long_rows(seed: int) -> Splits:
    """The digits read as 16 half rows: a sequence TFLM cannot run unrolled."""
    base = load_digits_sequences(seed)
    parts = [TensorDataset(x.reshape(-1, 16, 4), y) for x, y in
             (tensors_of(base.train), tensors_of(base.val), tensors_of(base.test))]  # fmt: skip
    return replace(base, train=parts[0], val=parts[1], test=parts[2], input_shape=(16, 4))


def test_a_network_tflm_cannot_run_is_a_failed_candidate_before_training():
    problem = replace(get_problem("digits_rnn"), data=_long_rows)
    params = {**problem.space.reference, "cell": "gru"}
    s = EvalSettings(epochs=1, keep_model=False)
    # TFLM's CONCATENATION takes at most 10 inputs: 16 unrolled steps do not run
    with pytest.raises(BuildError, match=r"does not deploy to TFLM .*10.*runtime = ideal"):
        predict_costs(problem, params, s, (16, 4), 10)
    result = evaluate(problem, params, s)
    assert result.status == FAILED
    assert "does not deploy to TFLM" in result.failure_reason
    assert result.history == ()  # refused before anything trained
    # under ideal it is costed as before
    ideal_settings = EvalSettings(runtime="ideal", quant_scheme="both")
    ideal = predict_costs(problem, params, ideal_settings, (16, 4), 10)
    assert ideal["model_size_bytes"] > 0


@pytest.mark.parametrize(
    ("cell", "flash", "arena"),
    # the reference network (one layer of 64 over 8 steps): the flatbuffer and arena of
    # its TFLM artifact (tests/objectives/test_tflm_lstm.py and test_tflm_gru.py check
    # such counts against the interpreter)
    [("lstm", 95_928, 44_976), ("gru", 88_480, 46_736)],
)
def test_a_recurrent_network_is_counted_as_tflm_runs_its_unrolled_graph(cell, flash, arena):
    problem = get_problem("digits_rnn")
    params = {**problem.space.reference, "cell": cell}
    s = EvalSettings(epochs=1, keep_model=False)  # quant_scheme = post
    predicted = predict_costs(problem, params, s, (8, 8), 10)
    assert predicted["model_size_bytes"] == flash
    assert predicted["working_memory_bytes"] == arena
    result = evaluate(problem, params, s)
    assert result.status == COMPLETED
    assert {k: getattr(result, k) for k in predicted} == predicted
    # the stored accuracy is the int8 twin's (quantize:post), not the float network's
    assert result.history[-1]["stage"] == "quantize:post"
    # both is post under TFLM: the same network, the same figures
    same = evaluate(problem, params, EvalSettings(epochs=1, keep_model=False, quant_scheme="both"))
    assert same.accuracy_val == result.accuracy_val
    # ideal does not count TFLM's int8 LSTM: one error that says what to set
    with pytest.raises(CompressionError, match=r"runtime = ideal does not count"):
        predict_costs(problem, params, EvalSettings(runtime="ideal"), (8, 8), 10)


@pytest.mark.parametrize("scheme", ["none", "dynamic"])
def test_tflm_refuses_a_scheme_it_does_not_deploy(scheme):
    with pytest.raises(ConfigError, match=rf"quant_scheme: '{scheme}' is not what runtime = tflm"):
        EvalSettings(quant_scheme=scheme)
    assert EvalSettings(quant_scheme=scheme, runtime="ideal").quant_scheme == scheme


def test_ops_without_a_board_is_refused():
    with pytest.raises(ConfigError, match=r"latency_model: 'ops' .* no board"):
        EvalSettings(latency_model="ops")
    with pytest.raises(ConfigError, match=r"runtime: 'onnx' is not one of tflm, ideal"):
        CostModel("onnx")
