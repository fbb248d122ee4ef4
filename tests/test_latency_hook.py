"""``latency_hook = module:function``: latency measured on the device by the user's code.

The hook here is a real one: it gets the exported ``.tflite`` artifact, checks it is a
TFLite flatbuffer, runs one inference in the TensorFlow Lite Micro interpreter (the board
of a user without one on USB) and returns the seconds that took, remembering them so the
tests can compare the recorded numbers with what it returned.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

from sparsemod.cli import main
from sparsemod.config import TrainConfig, load_config, resume_changes
from sparsemod.errors import ConfigError, LatencyHookError
from sparsemod.evaluate import COMPLETED, FAILED, EvalSettings, evaluate, predict_costs
from sparsemod.failures import candidate_failure
from sparsemod.hooks import measure_latency
from sparsemod.problems import get_problem

EXTRA = 'the hook gets a .tflite artifact: needs pip install "sparsemod[tflite]"'
pytest.importorskip("litert_torch", reason=EXTRA)
pytest.importorskip("tflite_micro", reason=EXTRA)

REPO = Path(__file__).resolve().parents[1]
MODULE = "usb_board"
HOOK_SOURCE = """
import math
import time

import numpy as np

SEEN = []  # (artifact, seconds returned), one per call
CALLS = [0]


def measure(artifact):
    data = artifact.data
    if data[4:8] != b"TFL3":
        raise ValueError(f"not a TFLite flatbuffer: {data[:8]!r}")
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(data, arena_size=1 << 20)
    d = interp.get_input_details(0)
    interp.set_input(np.zeros(d["shape"], dtype=d["dtype"]), 0)
    start = time.perf_counter()
    interp.invoke()
    seconds = time.perf_counter() - start
    SEEN.append((artifact, seconds))
    return seconds


def unplugged(artifact):
    raise OSError("no board on /dev/ttyACM0")


def every_other(artifact):  # the board drops off the bus on every second trial
    CALLS[0] += 1
    return unplugged(artifact) if CALLS[0] % 2 == 0 else measure(artifact)


def negative(artifact):
    return -1


def not_a_number(artifact):
    return math.nan


def text(artifact):
    return "x"


def nothing(artifact):
    return None


NOT_A_FUNCTION = 3
"""


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """The hook module, importable as ``usb_board`` while this file's tests run."""
    folder = tmp_path_factory.mktemp("hooks")
    (folder / f"{MODULE}.py").write_text(HOOK_SOURCE)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(folder))
        module = __import__(MODULE)
        yield module
        sys.modules.pop(MODULE, None)


@pytest.fixture(scope="module")
def digits():
    """A small CNN of the default space (a few seconds to train, export and run)."""
    problem = get_problem("digits_cnn")
    params = dict(problem.space.reference, num_blocks=1, b1_filters=4, num_fc=0)
    return problem, problem.load(0), params


def _settings(hook: str) -> EvalSettings:
    return EvalSettings(epochs=1, pruning=False, device="cpu", keep_model=False, latency_hook=hook)


@pytest.fixture(scope="module")
def measured(board, digits):
    """One candidate evaluated with the hook that measures: result, settings, and the
    artifact the hook got with the seconds it returned."""
    problem, data, params = digits
    settings = _settings(f"{MODULE}:measure")
    board.SEEN.clear()
    result = evaluate(problem, params, settings, data=data)
    assert len(board.SEEN) == 1, result.failure_reason
    artifact, seconds = board.SEEN[0]
    return result, settings, artifact, seconds


def test_the_trial_keeps_the_hooks_seconds_and_the_modelled_latency_beside_them(
    board, digits, measured
):
    result, settings, artifact, seconds = measured
    assert result.status == COMPLETED, result.failure_reason
    assert artifact.format == "tflite" and artifact.data[4:8] == b"TFL3"
    assert result.latency_s == seconds > 0
    assert result.objectives()["latency_s"] == seconds  # what the search minimises
    # The modelled latency is the cost model's (flops / the flops key), the same number
    # predict_costs gives before training; predicting calls no hook.
    problem, data, params = digits
    calls = len(board.SEEN)
    predicted = predict_costs(problem, params, settings, tuple(data.input_shape), data.num_classes)
    assert result.latency_model_s == predicted["latency_s"] == result.flops / 1e8
    assert len(board.SEEN) == calls


@pytest.mark.parametrize(
    ("function", "said"),
    [
        ("negative", "returned -1 (int), not a number of seconds > 0"),
        ("not_a_number", "returned nan (float), not a number of seconds > 0"),
        ("text", "returned 'x' (str), not a number of seconds > 0"),
        ("nothing", "returned None (NoneType), not a number of seconds > 0"),
        ("unplugged", "OSError: no board on /dev/ttyACM0"),
    ],
)
def test_what_a_failing_hook_did_is_the_trials_failure_reason(board, measured, function, said):
    artifact = measured[2]
    with pytest.raises(LatencyHookError) as caught:
        measure_latency(f"{MODULE}:{function}", artifact)
    assert candidate_failure(caught.value) == f"latency_hook {MODULE}:{function}: {said}"


def test_a_failing_hook_fails_the_trial_not_the_evaluation(board, digits):
    problem, data, params = digits
    result = evaluate(problem, params, _settings(f"{MODULE}:text"), data=data)
    assert result.status == FAILED
    assert result.latency_s is None and result.latency_model_s is None
    assert result.failure_reason == (
        f"latency_hook {MODULE}:text: returned 'x' (str), not a number of seconds > 0"
    )


@pytest.mark.parametrize(
    ("hook", "extra", "words"),
    [
        ("nowhere_at_all:measure", [], ["cannot import", "no module named 'nowhere_at_all'"]),
        (f"{MODULE}:missing", [], [f"module '{MODULE}' has no function 'missing'"]),
        (f"{MODULE}:NOT_A_FUNCTION", [], ["is a int, not a function"]),
        (f"{MODULE}:measure", ["TRAIN.runtime=ideal"], ["runtime = ideal", "runtime = tflm"]),
        ("just_a_module", [], ["is not a function", "package.module:function"]),
    ],
)
def test_a_bad_hook_is_one_config_error_when_the_config_is_read(board, hook, extra, words):
    overrides = ["DEFAULT.train=true", f"TRAIN.latency_hook={hook}", *extra]
    with pytest.raises(ConfigError) as caught:
        load_config(overrides=overrides)
    message = str(caught.value)
    assert message.startswith("[TRAIN] latency_hook: ") and "\n" not in message
    assert caught.value.key == "latency_hook" and caught.value.section == "TRAIN"
    for word in words:
        assert word in message


def test_the_test_section_takes_a_hook_and_a_resume_may_not_change_it(board):
    spec = f"{MODULE}:measure"
    config = load_config(overrides=["DEFAULT.train=false", f"TEST.latency_hook={spec}"])
    assert config.test_config.eval_settings().latency_hook == spec
    with pytest.raises(ConfigError, match=r"latency_hook None -> 'usb_board:measure'"):
        resume_changes({}, TrainConfig(latency_hook=spec))


def test_a_missing_litert_is_said_before_anything_trains(board, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "litert_torch", None)  # as if not installed
    argv = ["--config", str(REPO / "config.ini"), "--set", f"TRAIN.root={tmp_path}"]
    assert main([*argv, "--set", f"TRAIN.latency_hook={MODULE}:measure"]) == 2
    err = capsys.readouterr().err.strip()
    assert "latency_hook" in err and 'pip install "sparsemod[tflite]"' in err
    assert "\n" not in err and not any(tmp_path.iterdir())


def test_a_search_ranks_by_the_hooks_seconds_and_goes_on_when_it_fails(board, tmp_path):
    board.SEEN.clear()
    board.CALLS[0] = 0
    sets = {"name": "hooked", "root": tmp_path, "r1": 1, "r2": 0, "r3": 0, "batch_size": 2}
    sets |= {"epochs1": 1, "objectives": 4, "device": "cpu", "runtime": "tflm"}
    sets |= {"latency_model": "flops", "flops": "100M", "latency_hook": f"{MODULE}:every_other"}
    argv = ["--config", str(REPO / "config.ini")]
    for key, value in sets.items():
        argv += ["--set", f"TRAIN.{key}={value}"]
    assert main(argv) == 0
    trials = pd.read_csv(tmp_path / "hooked" / "trials.csv")
    done = trials[trials["status"] == COMPLETED]
    failed = trials[trials["status"] == FAILED]
    assert len(done) == len(failed) == 1 == len(board.SEEN)
    assert done["latency_s"].tolist() == [board.SEEN[0][1]]
    assert done["latency_model_s"].tolist() == pytest.approx((done["flops"] / 1e8).tolist())
    assert failed["failure_reason"].tolist() == [
        f"latency_hook {MODULE}:every_other: OSError: no board on /dev/ttyACM0"
    ]
    assert math.isnan(failed["latency_model_s"].iloc[0])
