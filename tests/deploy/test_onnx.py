"""Pareto models of tiny real searches exported to QDQ int8 ONNX and run in onnxruntime."""

from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx", reason='needs the onnx extra: pip install "sparsemod[onnx]"')
pytest.importorskip("onnxruntime", reason='needs the onnx extra: pip install "sparsemod[onnx]"')

from sparsemod.deploy import deploy  # noqa: E402
from sparsemod.deploy.base import DeployError  # noqa: E402


def check_export(searched, trial, out):
    result = deploy(searched.name, trial=trial.index, format="onnx", out=out, root=searched.root)
    report, stored = result.report, trial.metrics["accuracy_test"]
    assert abs(report.accuracy - stored) <= 0.005 + 1e-12, (report.accuracy, stored)
    path = out / f"trial_{trial.index}.onnx"
    assert report.artifact_bytes == path.stat().st_size
    assert report.memory_bytes is None  # onnxruntime plans no arena one can read
    model = onnx.load(str(path))
    int8 = onnx.TensorProto.INT8
    assert model.graph.input[0].type.tensor_type.elem_type == int8
    assert model.graph.output[0].type.tensor_type.elem_type == int8
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # Every weight is stored as int8 (per output channel), none in float.
    weights = [t for t in model.graph.initializer if len(t.dims) >= 2]
    assert weights and all(t.data_type == int8 for t in weights)
    return result


def test_cnn_most_accurate_model_runs_in_onnxruntime(cnn_search, tmp_path):
    check_export(cnn_search, cnn_search.most_accurate(), tmp_path)


def test_mlp_most_accurate_model_runs_in_onnxruntime(mlp_search, tmp_path):
    check_export(mlp_search, mlp_search.most_accurate(), tmp_path)


def test_lstm_gives_a_clear_error(rnn_search, tmp_path):
    trial = rnn_search.most_accurate()
    with pytest.raises(DeployError, match=r"^onnx: .*(LSTM|GRU).*float") as info:
        deploy(
            rnn_search.name, trial=trial.index, format="onnx", out=tmp_path, root=rnn_search.root
        )
    assert "\n" not in str(info.value)
    assert not list(tmp_path.iterdir())
