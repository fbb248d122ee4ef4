"""The ExecuTorch (Cortex-M) runtime: the digits CNN and MLP export to an int8 ``.pte``, run
in ExecuTorch's runtime, and the LSTM gives an error naming its layer.

Each network is trained for a few epochs on the embedded digits; the same int8 graph is
scored three ways: in torch (the PT2E graph), in ExecuTorch's runtime (``check``: the host
variant, since the pip runtime has no ``cortex_m::`` kernels) and through the lowered
Cortex-M program's own reference kernels (CMSIS-NN's integer arithmetic, in Python).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from sparsemod.data import tensors_of
from sparsemod.deploy.base import Artifact, DeployError
from sparsemod.problems import get_problem

pytest.importorskip("executorch.exir", reason='needs pip install "sparsemod[executorch]"')
pytest.importorskip("executorch.runtime", reason='needs pip install "sparsemod[executorch]"')

from sparsemod.deploy import executorch as et  # noqa: E402

EPOCHS = {"digits_cnn": 2, "digits_mlp": 5}  # a few seconds each, > 85 % accuracy


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = order[i : i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


def _exported(problem: str) -> dict:
    prob = get_problem(problem)
    splits = prob.load(0)
    torch.manual_seed(0)
    model = prob.build(prob.space.reference, splits.input_shape, splits.num_classes)
    (x, y), (xt, yt) = tensors_of(splits.train), tensors_of(splits.test)
    model = _train(model, x, y, EPOCHS[problem])
    low = et.lower(model, x[:1], [x[:256]])
    artifact = et.RUNTIME.artifact(low)
    report = et.RUNTIME.check(artifact, [(xt, yt)])
    return {
        "params": prob.space.reference,
        "low": low,
        "artifact": artifact,
        "report": report,
        "x": xt,
        "y": yt,
    }


@pytest.fixture(scope="module")
def cnn() -> dict:
    return _exported("digits_cnn")


@pytest.fixture(scope="module")
def mlp() -> dict:
    return _exported("digits_mlp")


def _int8_torch_predictions(run: dict) -> torch.Tensor:
    x = run["x"].to(memory_format=torch.channels_last) if run["x"].dim() == 4 else run["x"]
    with torch.no_grad():  # the PT2E graph quantizes its float input as the program's input
        return run["low"].quantized(x).argmax(1)


def _cortex_m_reference_predictions(run: dict, n: int) -> torch.Tensor:
    """The lowered Cortex-M program's own reference kernels on the first ``n`` samples."""
    spec, module = run["low"].inputs[0], run["low"].program.module()
    found = []
    with torch.no_grad():
        for x in run["x"][:n].split(1):
            q = torch.clamp(torch.round(x / spec.scale) + spec.zero_point, -128, 127)
            found.append(module(q.to(torch.int8)).argmax(1))
    return torch.cat(found)


@pytest.mark.parametrize("net", ["cnn", "mlp"])
def test_the_program_is_int8_cortex_m(net: str, request: pytest.FixtureRequest) -> None:
    run = request.getfixturevalue(net)
    art: Artifact = run["artifact"]
    assert (art.format, art.suffix) == ("executorch", ".pte")
    assert art.data[4:8] == b"ET12"  # the ExecuTorch flatbuffer identifier
    for spec in (*art.inputs, *art.outputs):
        assert spec.dtype == "int8" and spec.scale > 0 and -128 <= spec.zero_point <= 127
    assert art.inputs[0].shape == (1, 1, 8, 8) and art.outputs[0].shape == (1, 10)
    ops = et.plan(art.data)["operators"]
    assert ops == art.meta["ops"]
    json.dumps(dict(art.meta))  # the meta goes into a JSON sidecar as it is
    assert "cortex_m::quantized_linear.out" in ops
    # Nothing but CMSIS-NN operators and layout copies: no float op, no quantize at the I/O.
    assert {o.split("::")[0] for o in ops} <= {"cortex_m", "dim_order_ops"}
    assert not any("quantize_per_tensor" in o for o in ops)
    if net == "cnn":
        assert "cortex_m::quantized_conv2d.out" in ops
    weights = [t for t in run["low"].program.state_dict.values() if t.dtype == torch.int8]
    assert weights and all(int(t.min()) >= -127 for t in weights)  # symmetric, -127..127


@pytest.mark.parametrize("net", ["cnn", "mlp"])
def test_runtime_accuracy_is_the_int8_models(net: str, request: pytest.FixtureRequest) -> None:
    run = request.getfixturevalue(net)
    report, predicted = run["report"], _int8_torch_predictions(run)
    torch_int8 = float((predicted == run["y"]).float().mean())
    assert report.samples == len(run["y"]) == 270
    assert report.accuracy > 0.85, report.accuracy
    assert abs(report.accuracy - torch_int8) <= 0.005, (report.accuracy, torch_int8)
    assert report.detail["ran"].startswith("the host variant")
    assert "cortex_m::quantized_linear.out" in report.detail["not_on_host"]
    # The Cortex-M program itself, on its Python reference kernels (CMSIS-NN's integer
    # requantization where the torch graph rounds in float): the same answer on 97 of 100.
    same = (_cortex_m_reference_predictions(run, 100) == predicted[:100]).sum().item()
    assert same >= 97, same


@pytest.mark.parametrize("net", ["cnn", "mlp"])
def test_sizes_are_executorchs(net: str, request: pytest.FixtureRequest, tmp_path) -> None:
    run = request.getfixturevalue(net)
    art, report, low = run["artifact"], run["report"], run["low"]
    path = tmp_path / "model.pte"
    path.write_bytes(art.data)
    assert report.artifact_bytes == len(art.data) == path.stat().st_size
    weights = sum(m.weight.numel() for m in low.quantized.modules() if isinstance(m, nn.Linear))
    assert report.artifact_bytes > weights  # at least its int8 weights
    # The memory plan the program manager held before serialising is what check reads.
    assert report.memory_bytes == sum(low.buffers) > 0
    assert low.buffers[0] == 0
    assert report.memory_split == {f"planned_buffer_{i}": b for i, b in enumerate(low.buffers) if i}


def test_cnn_memory_is_plausible_against_a_hand_count(cnn: dict) -> None:
    p, memory = cnn["params"], cnn["report"].memory_bytes
    f1, f2 = p["b1_filters"], p["b2_filters"]
    assert p["b1_pool"] == p["b2_pool"] == "max" and p["num_fc"] == 1
    # int8 activations: input 8x8, conv1 f1x8x8, pool f1x4x4, conv2 f2x4x4, pool f2x2x2,
    # fc1, out.
    acts = [64, f1 * 64, f1 * 16, f2 * 16, f2 * 4, p["fc1_units"], 10]
    scratch = sum(cnn["low"].scratch_bytes.values())
    assert cnn["low"].scratch_bytes["cortex_m_quantized_conv2d_default"] > 0
    # conv1's input and output are live together; at most every activation, two layout
    # copies (NHWC -> NCHW before the flatten, one before the head) and the scratch.
    assert acts[0] + acts[1] <= memory <= sum(acts) + acts[4] + acts[5] + scratch


def test_mlp_memory_is_plausible_against_a_hand_count(mlp: dict) -> None:
    p, memory = mlp["params"], mlp["report"].memory_bytes
    acts = [64] + [p[f"units{i}"] for i in range(1, p["num_layers"] + 1)] + [10]
    assert max(a + b for a, b in zip(acts, acts[1:], strict=False)) <= memory
    assert memory <= 2 * sum(acts)
    assert mlp["low"].scratch_bytes == {}


def test_lstm_is_refused_naming_the_layer() -> None:
    prob = get_problem("digits_rnn")
    splits = prob.load(0)
    torch.manual_seed(0)
    model = prob.build(prob.space.reference, splits.input_shape, splits.num_classes).eval()
    x, _ = tensors_of(splits.train)
    with pytest.raises(DeployError) as err:
        et.RUNTIME.export(model, x[:1], [x[:8]])
    message = str(err.value)
    assert "\n" not in message
    assert "layer encoder.rnn (LSTM)" in message
    assert "aten::sigmoid" in message and "stay in float" in message


def test_a_program_without_host_variant_names_the_missing_kernel(mlp: dict) -> None:
    art: Artifact = mlp["artifact"]
    bare = Artifact(art.format, art.suffix, art.data, art.inputs, art.outputs, {})
    with pytest.raises(DeployError, match=r"no kernel for cortex_m::quantized_linear\.out"):
        et.RUNTIME.check(bare, [(mlp["x"], mlp["y"])])


def test_bytes_that_are_no_program_are_refused(mlp: dict) -> None:
    art: Artifact = mlp["artifact"]
    junk = Artifact(art.format, art.suffix, b"\0" * 64, art.inputs, art.outputs, art.meta)
    with pytest.raises(DeployError, match="not an ExecuTorch program"):
        et.RUNTIME.check(junk, [(mlp["x"], mlp["y"])])


def test_missing_executorch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "executorch.exir", None)
    monkeypatch.setitem(sys.modules, "executorch.runtime", None)
    with pytest.raises(DeployError, match=r'pip install "sparsemod\[executorch\]"'):
        et.RUNTIME.export(nn.Linear(4, 2), torch.zeros(1, 4), [torch.zeros(1, 4)])
    with pytest.raises(DeployError, match=r'pip install "sparsemod\[executorch\]"'):
        et.RUNTIME.check(Artifact("executorch", ".pte", b"", (), ()), [])


def test_importing_the_module_imports_no_executorch() -> None:
    code = (
        "import sys, sparsemod.deploy.executorch as m; "
        "assert m.RUNTIME.name == 'executorch' and m.RUNTIME.extra == 'executorch'; "
        "print(sorted(k for k in sys.modules if k.split('.')[0] == 'executorch'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
