"""Pareto models of tiny real searches exported to TFLite and run in the TFLM interpreter.

Every figure is checked against the runtime read independently here: the file's length,
and the arena that TFLM's allocator prints when this test runs the flatbuffer itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import torch

pytest.importorskip(
    "litert_torch", reason='needs the tflite extra: pip install "sparsemod[tflite]"'
)
pytest.importorskip(
    "tflite_micro", reason='needs the tflite extra: pip install "sparsemod[tflite]"'
)

from sparsemod.deploy import deploy  # noqa: E402
from sparsemod.deploy.source import float_network  # noqa: E402
from sparsemod.problems import get_problem  # noqa: E402
from sparsemod.results.export import artifact_from_store  # noqa: E402
from sparsemod.store import Store, default_url  # noqa: E402

PRINT_ARENA = (
    "import sys, numpy as np; from tflite_micro.python.tflite_micro import runtime; "
    "it = runtime.Interpreter.from_file(sys.argv[1], arena_size=1 << 20); "
    "d = it.get_input_details(0); it.set_input(np.zeros(d['shape'], dtype=d['dtype']), 0); "
    "it.invoke(); it.print_allocations()"
)
RUNS_IN = (
    "import sys, numpy as np; from tflite_micro.python.tflite_micro import runtime; "
    "it = runtime.Interpreter.from_file(sys.argv[1], arena_size=int(sys.argv[2])); "
    "d = it.get_input_details(0); it.set_input(np.zeros(d['shape'], dtype=d['dtype']), 0); "
    "it.invoke()"
)


def printed_arena(path) -> dict[str, int]:
    run = subprocess.run(
        [sys.executable, "-c", PRINT_ARENA, str(path)], capture_output=True, text=True, check=True
    )
    text = run.stdout + run.stderr
    return {
        k: int(re.search(rf"Arena allocation {k} (\d+) bytes", text).group(1))
        for k in ("total", "head", "tail")
    }


def runs_in(path, arena: int) -> bool:
    run = subprocess.run(
        [sys.executable, "-c", RUNS_IN, str(path), str(arena)], capture_output=True, text=True
    )
    return run.returncode == 0


def weight_bytes(searched, trial) -> int:
    """A hand count: one int8 byte per weight of the float network's conv / linear layers."""
    with Store(default_url(searched.root)) as store:
        artifact = artifact_from_store(store, trial.id)
    model, _ = float_network(artifact, get_problem(searched.name))
    return sum(
        int(t.numel())
        for name, t in model.state_dict().items()
        if t.dim() >= 2 and t.is_floating_point()
    )


def check_export(searched, trial, out):
    result = deploy(searched.name, trial=trial.index, format="tflite", out=out, root=searched.root)
    report, stored = result.report, trial.metrics["accuracy_test"]
    assert abs(report.accuracy - stored) <= 0.005 + 1e-12, (report.accuracy, stored)
    flatbuffer = out / f"trial_{trial.index}.tflite"
    assert report.artifact_bytes == flatbuffer.stat().st_size == len(result.artifact.data)
    assert report.artifact_bytes >= weight_bytes(searched, trial)
    arena = printed_arena(flatbuffer)
    assert report.memory_split == {"activations": arena["head"], "persistent": arena["tail"]}
    assert report.detail["arena_printed_total"] == arena["total"] == arena["head"] + arena["tail"]
    # The reported arena is the smallest that runs (16 B steps): it runs, 16 B less does not.
    assert report.memory_bytes >= arena["total"]
    assert runs_in(flatbuffer, report.memory_bytes)
    assert not runs_in(flatbuffer, report.memory_bytes - 16)
    # The activations hold at least the int8 input and output.
    spec_in, spec_out = result.artifact.inputs[0], result.artifact.outputs[0]
    assert spec_in.dtype == spec_out.dtype == "int8"
    n_in = 1
    for d in spec_in.shape:
        n_in *= d
    assert arena["head"] >= n_in
    rows = {r["figure"]: r for r in result.rows}
    assert rows["accuracy"]["sparsemod"] == stored
    assert rows["model size (bytes)"]["runtime"] == report.artifact_bytes
    assert rows["model size (bytes)"]["sparsemod"] == int(trial.metrics["model_size_bytes"])
    return result


def test_cnn_most_accurate_model_runs_in_tflm(cnn_search, tmp_path):
    check_export(cnn_search, cnn_search.most_accurate(), tmp_path)


def test_mlp_most_accurate_model_runs_in_tflm(mlp_search, tmp_path):
    check_export(mlp_search, mlp_search.most_accurate(), tmp_path)


def test_lstm_under_tflm_deploys_as_it_was_scored(rnn_tflm_search, tmp_path):
    # The search stored the LSTM's TFLM int8 twin's accuracy, and counted the unrolled
    # graph's flatbuffer and arena: the deploy check (0.5 points) passes, and the
    # objectives are the runtime's figures to the byte.
    trial = rnn_tflm_search.most_accurate()
    result = check_export(rnn_tflm_search, trial, tmp_path)
    assert result.report.artifact_bytes == int(trial.metrics["model_size_bytes"])
    assert result.report.memory_bytes == int(trial.metrics["working_memory_bytes"])


def test_lstm_is_unrolled_into_int8_ops_that_tflm_runs(rnn_search, tmp_path):
    from sparsemod.deploy.source import trial_source
    from sparsemod.deploy.tflite import RUNTIME
    from sparsemod.train import accuracy

    trial = rnn_search.most_accurate()
    problem = get_problem(rnn_search.name)
    with Store(default_url(rnn_search.root)) as store:
        stored = artifact_from_store(store, trial.id)
        config = store.get_search(store.get_trial(trial.id).search_id).config
    source = trial_source(problem, stored, config)
    assert any(isinstance(m, torch.nn.LSTM) for m in source.model.modules())
    artifact = RUNTIME.export(source.model, source.example, source.calibration)
    # the LSTM over 8 steps: int8 ops TFLM has kernels for, no float op left (export checks)
    ops = artifact.meta["ops"]
    assert {"FULLY_CONNECTED", "LOGISTIC", "TANH", "MUL", "ADD"} <= set(ops)
    assert ops.count("TANH") == 2 * 8  # the cell's candidate and output, each step
    assert "ai-edge-quantizer" in artifact.meta["quantizer"]
    assert artifact.inputs[0].dtype == artifact.outputs[0].dtype == "int8"
    report = RUNTIME.check(artifact, source.test)
    path = tmp_path / "rnn.tflite"
    path.write_bytes(artifact.data)
    arena = printed_arena(path)
    assert report.memory_split == {"activations": arena["head"], "persistent": arena["tail"]}
    assert runs_in(path, report.memory_bytes) and not runs_in(path, report.memory_bytes - 16)
    # int8 activations through the gates cost some accuracy against the float network (1.1
    # points here); the deploy check then says so against the trial's dynamic-int8 figure
    ((x, y),) = source.test
    float_accuracy = accuracy(source.model, torch.utils.data.TensorDataset(x, y))
    assert float_accuracy - 0.03 <= report.accuracy <= float_accuracy + 0.01
    assert abs(report.accuracy - trial.metrics["accuracy_test"]) <= 0.03


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")
def test_c_array_compiles(cnn_search, tmp_path):
    trial = cnn_search.most_accurate()
    result = deploy(
        cnn_search.name,
        trial=trial.index,
        format="tflite",
        out=tmp_path,
        c_array=True,
        root=cnn_search.root,
    )
    header = tmp_path / f"trial_{trial.index}_tflite.h"
    source = tmp_path / f"trial_{trial.index}_tflite.c"
    assert {header, source} <= set(result.paths)
    text = header.read_text()
    assert f"TRIAL_{trial.index}_TFLITE_ARENA_BYTES {result.report.memory_bytes}u" in text
    assert f"TRIAL_{trial.index}_TFLITE_LEN {result.report.artifact_bytes}u" in text
    spec = result.artifact.inputs[0]
    assert f"INPUT0_ZERO_POINT ({spec.zero_point})" in text
    for std in ("c11", "c99"):
        subprocess.run(
            [
                "cc",
                "-c",
                f"-std={std}",
                "-Wall",
                "-Werror",
                str(source),
                "-o",
                str(tmp_path / f"{std}.o"),
            ],
            check=True,
            cwd=tmp_path,
        )
    # The array holds the flatbuffer's bytes.
    body = source.read_text()
    assert body.count("0x") == result.report.artifact_bytes
    assert "alignas(16)" in body
