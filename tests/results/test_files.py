"""The trials table and the result files: written, read back, models rebuilt."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from sparsemod.errors import ConfigError, DataError
from sparsemod.evaluate import EvalSettings, ModelArtifact, evaluate
from sparsemod.problems import get_problem
from sparsemod.results.files import write_results
from sparsemod.results.reading import Results, load_results
from sparsemod.results.trials import OBJECTIVES, trials_frame
from sparsemod.train import accuracy

# --------------------------------------------------------------------------- trials_frame

_FIXED = ["index", "phase", "parent", "status", "failure_reason"]
_METRICS = [
    "error",
    "model_size_bytes",
    "working_memory_bytes",
    "flops",
    "latency_s",
    "accuracy_val",
    "train_seconds",
    "is_pareto",
]


def test_trials_frame_columns_and_pareto_among_completed_only():
    rows = [
        {"index": 0, "phase": "sobol", "status": "completed", "params": {"width": 8, "lr": 0.01},
         "error": 0.2, "model_size_bytes": 100},
        # flat parameters work too; this one is dominated by trial 0
        {"index": 1, "phase": "sobol", "status": "completed", "width": 16, "lr": 0.01,
         "error": 0.3, "model_size_bytes": 200},
        # a failed trial never counts, however good its numbers look
        {"index": 2, "phase": "bo", "parent": 0, "status": "failed", "failure_reason": "oom",
         "params": {"width": 4, "lr": 0.1}, "error": 0.0, "model_size_bytes": 1},
        {"index": 3, "phase": "bo", "status": "completed", "params": {"width": 32, "lr": 0.001},
         "error": 0.1, "model_size_bytes": 400},
    ]  # fmt: skip
    frame = trials_frame(rows, ["width", "lr"], ["error", "model_size_bytes"])
    assert list(frame.columns) == _FIXED + ["width", "lr"] + _METRICS
    assert frame["is_pareto"].tolist() == [True, False, False, True]
    assert frame["width"].tolist() == [8, 16, 4, 32]
    assert math.isnan(frame.loc[0, "latency_s"])
    assert frame.loc[2, "failure_reason"] == "oom"
    assert pd.isna(frame.loc[0, "failure_reason"])


def test_trials_frame_empty_and_unknown_objective():
    frame = trials_frame([], ["width"], OBJECTIVES[:2])
    assert list(frame.columns) == _FIXED + ["width"] + _METRICS
    assert len(frame) == 0
    with pytest.raises(ConfigError, match="objectives"):
        trials_frame([], ["width"], ["accuracy"])


# --------------------------------------------------------------------------- files


@pytest.fixture(scope="module")
def mlp_result():
    problem = get_problem("digits_mlp")
    settings = EvalSettings(epochs=1, quant_scheme="dynamic", runtime="ideal", device="cpu")
    result = evaluate(problem, problem.space.reference, settings)
    assert result.ok, result.failure_reason
    return result


def _rows(result):
    obj = result.objectives()
    return [
        {"index": 0, "phase": "sobol", "status": "completed", "params": result.params,
         "accuracy_val": result.accuracy_val, "flops": result.flops,
         "train_seconds": result.train_seconds, **obj},
        # worse in every objective: not Pareto, so no model is kept for it
        {"index": 1, "phase": "bo", "parent": 0, "status": "completed", "params": result.params,
         **{k: v * 2 + 0.01 for k, v in obj.items()}},
        {"index": 2, "phase": "bo", "status": "failed", "failure_reason": "BuildError: no",
         "params": result.params},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def written(mlp_result, tmp_path_factory):
    folder = tmp_path_factory.mktemp("results") / "search-a"
    (folder / "models").mkdir(parents=True)
    # left over from an earlier write of the same search: must go
    (folder / "models" / "trial_7.pt").write_bytes(b"old")
    (folder / "models" / "trial_7.json").write_text("{}")
    names = get_problem("digits_mlp").space.names
    objectives = OBJECTIVES[:3]
    frame = trials_frame(_rows(mlp_result), names, objectives)
    write_results(
        folder,
        frame,
        pareto_columns={"test_error": {0: 0.125}},
        summary={"name": "search-a", "budget": 3},
        models={0: mlp_result.model},
        problem_name="digits_mlp",
        objectives=objectives,
        wall_seconds=12.34,
    )
    return folder


def test_write_results_files(written):
    names = {p.name for p in written.iterdir()}
    assert {"trials.csv", "pareto.csv", "summary.json", "time.txt", "pareto.png"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    assert sorted(p.name for p in (written / "models").iterdir()) == [
        "trial_0.json",
        "trial_0.pt",
    ]
    assert (written / "time.txt").read_text() == "wall_seconds: 12.3\n"
    assert (written / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (written / "summary.json").stat().st_size < 20_000
    meta = json.loads((written / "models" / "trial_0.json").read_text())
    assert meta["format"] == "state_dict"
    assert meta["quant_scheme"] == "dynamic"
    assert meta["problem"] == "digits_mlp"


def test_load_results_round_trip(written, mlp_result):
    res = load_results(written)
    assert isinstance(res, Results)
    assert res.path == written
    assert res.trials["index"].tolist() == [0, 1, 2]
    assert res.trials["is_pareto"].tolist() == [True, False, False]
    assert res.pareto["index"].tolist() == [0]
    assert res.pareto["test_error"].tolist() == [0.125]
    s = res.summary
    assert s["name"] == "search-a" and s["budget"] == 3
    assert s["pareto_indices"] == [0]
    assert s["wall_seconds"] == pytest.approx(12.34)
    assert set(s["versions"]) == {"sparsemod", "torch", "ax", "botorch"}
    assert s["versions"]["torch"] and s["versions"]["botorch"]
    # the summary.json path works as well as the folder
    assert load_results(written / "summary.json").summary == s


def test_load_model_gives_the_deployed_model(written, mlp_result):
    model = load_results(written).load_model(0)
    val = get_problem("digits_mlp").load(0).val
    assert accuracy(model, val) == mlp_result.accuracy_val


def test_load_model_of_a_non_pareto_trial_names_the_available_ones(written):
    with pytest.raises(ConfigError, match=r"trial 1\b.*\[0\]"):
        load_results(written).load_model(1)


def test_load_results_missing_folder_or_file(tmp_path):
    with pytest.raises(DataError, match="nope"):
        load_results(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "summary.json").write_text("{}")
    with pytest.raises(DataError, match="trials.csv"):
        load_results(tmp_path / "half")


def test_exported_suffix_stale_models_and_no_plot_without_completed_trials(tmp_path, mlp_result):
    folder = tmp_path / "b"
    art = ModelArtifact("exported", b"\x00pt2", {"width": 1}, (64,), 10, "post")
    frame = trials_frame(_rows(mlp_result), [], OBJECTIVES[:2])
    common = dict(pareto_columns={}, summary={}, problem_name="digits_mlp",
                  objectives=OBJECTIVES[:2], wall_seconds=1.0)  # fmt: skip
    write_results(folder, frame, models={0: mlp_result.model}, **common)
    write_results(folder, frame, models={3: art}, **common)
    models = folder / "models"
    assert sorted(p.name for p in models.iterdir()) == ["trial_3.json", "trial_3.pt2"]
    assert (models / "trial_3.pt2").read_bytes() == b"\x00pt2"
    assert load_results(folder).pareto["test_error"].isna().all()

    failed_only = frame[frame["status"] == "failed"]
    write_results(tmp_path / "c", failed_only, models={}, **common)
    assert not (tmp_path / "c" / "pareto.png").exists()
    assert (tmp_path / "c" / "trials.csv").exists()
