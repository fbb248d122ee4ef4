"""Pareto sets, hypervolume and the result files, with numbers worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from sparsemod.errors import ConfigError, DataError
from sparsemod.evaluate import EvalSettings, ModelArtifact, evaluate
from sparsemod.problems import get_problem
from sparsemod.report import (
    OBJECTIVES,
    Results,
    hypervolume,
    hypervolume_trace,
    load_results,
    pareto_mask,
    trials_frame,
    write_results,
)
from sparsemod.train import accuracy

nan = math.nan


# --------------------------------------------------------------------------- pareto_mask


def test_pareto_mask_hand_example():
    values = np.array(
        [
            [1, 4],  # Pareto
            [2, 2],  # Pareto
            [2, 2],  # exact duplicate of a Pareto row: kept too
            [3, 3],  # dominated by (2, 2)
            [nan, 0],  # NaN: never Pareto, even with the best second value
            [4, 1],  # Pareto
            [1, 5],  # dominated by (1, 4): equal in one, worse in the other
        ],
        dtype=float,
    )
    assert pareto_mask(values).tolist() == [True, True, True, False, False, True, False]


def test_pareto_mask_empty_and_single():
    assert pareto_mask(np.zeros((0, 3))).tolist() == []
    assert pareto_mask(np.array([[5.0, 5.0]])).tolist() == [True]


# --------------------------------------------------------------------------- hypervolume


def test_hypervolume_one_objective():
    # the best normalised value is 0.3 -> 1 - 0.3; 1.5 lies beyond the reference
    assert hypervolume(np.array([[0.3], [0.6], [1.5]]), [1.0]) == pytest.approx(0.7)
    # reference 2: the best is 0.3 / 2 = 0.15 -> 0.85
    assert hypervolume(np.array([[0.3], [0.6]]), [2.0]) == pytest.approx(0.85)


def test_hypervolume_two_objectives():
    assert hypervolume(np.array([[0.5, 0.5]]), [1, 1]) == pytest.approx(0.25)
    # two 0.8 x 0.4 boxes (0.32 each) overlapping on [0.6, 1]^2 (0.16): 0.64 - 0.16
    two = np.array([[0.2, 0.6], [0.6, 0.2]])
    assert hypervolume(two, [1, 1]) == pytest.approx(0.48)
    # a dominated point adds nothing
    assert hypervolume(np.vstack([two, [0.7, 0.7]]), [1, 1]) == pytest.approx(0.48)


def test_hypervolume_three_objectives():
    assert hypervolume(np.array([[0.5, 0.5, 0.5]]), [1, 1, 1]) == pytest.approx(0.125)
    # boxes 1 x 1 x 0.5 and 0.5 x 0.5 x 1 overlap on [0.5, 1]^3 (0.125): 0.5 + 0.25 - 0.125
    values = np.array([[0.0, 0.0, 0.5], [0.5, 0.5, 0.0]])
    assert hypervolume(values, [1, 1, 1]) == pytest.approx(0.625)


def test_hypervolume_ignores_points_outside_the_reference_and_nan():
    values = np.array(
        [
            [0.5, 0.5],
            [1.2, 0.1],  # beyond the reference in the first objective
            [1.0, 0.1],  # on the reference: does not strictly dominate it
            [nan, 0.1],
        ]
    )
    assert hypervolume(values, [1, 1]) == pytest.approx(0.25)
    assert hypervolume(values[1:], [1, 1]) == 0.0
    assert hypervolume(np.zeros((0, 2)), [1, 1]) == 0.0


def test_hypervolume_is_normalised_by_the_reference():
    # (0.4, 60) / (2, 100) = (0.2, 0.6) and (1.2, 20) / (2, 100) = (0.6, 0.2): as above, 0.48
    values = np.array([[0.4, 60.0], [1.2, 20.0]])
    assert hypervolume(values, [2, 100]) == pytest.approx(0.48)


@pytest.mark.parametrize("ref", [[1.0], [1.0, 1.0, 1.0], [1.0, 0.0], [1.0, -2.0]])
def test_hypervolume_rejects_bad_reference(ref):
    with pytest.raises(ConfigError, match="ref_point"):
        hypervolume(np.array([[0.5, 0.5]]), ref)


def test_hypervolume_trace_is_monotone_and_matches_hand_values():
    values = np.array(
        [
            [0.5, 0.5],  # 0.25
            [0.8, 0.8],  # dominated: 0.25
            [0.2, 0.6],  # + [0.2, 0.5] x [0.6, 1] = 0.3 * 0.4 -> 0.37
            [nan, 0.0],  # ignored: 0.37
            [0.6, 0.2],  # + [0.6, 1] x [0.2, 0.5] = 0.4 * 0.3 -> 0.49
            [2.0, 0.0],  # outside: 0.49
        ]
    )
    trace = hypervolume_trace(values, [1, 1])
    assert trace == pytest.approx([0.25, 0.25, 0.37, 0.37, 0.49, 0.49])
    assert all(b >= a for a, b in zip(trace, trace[1:]))
    assert hypervolume_trace(np.zeros((0, 2)), [1, 1]) == []


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
    settings = EvalSettings(epochs=1, quant_scheme="dynamic", device="cpu")
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
        pareto_test_error={0: 0.125},
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
    assert meta["problem_name"] == "digits_mlp"


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
    common = dict(pareto_test_error={}, summary={}, problem_name="digits_mlp",
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
