"""bench/search_quality.py: its scoring against hand counts, and its --quick smoke run;
bench/signal_problem.py: the generated signals and the 1-D CNN builder."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "search_quality.py"
SIGNAL = BENCH.parent / "signal_problem.py"


@pytest.fixture(scope="module")
def sq():
    spec = importlib.util.spec_from_file_location("search_quality", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sig():
    spec = importlib.util.spec_from_file_location("signal_problem", SIGNAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RANGES = {"model_size_bytes": (10.0, 1000.0), "working_memory_bytes": (10.0, 1000.0)}


def test_normalisations_put_the_space_on_the_unit_box(sq):
    values = np.array([[0.5, 100.0, 1000.0], [0.2, 5.0, 10.0]])
    linear = sq.normalise(values, "linear", RANGES)
    assert np.allclose(linear, [[0.5, 0.1, 1.0], [0.2, 0.005, 0.01]])
    log = sq.normalise(values, "log", RANGES)
    # log(100 / 10) / log(1000 / 10) = 0.5; below the space's lowest counts as 0
    assert np.allclose(log, [[0.5, 0.5, 1.0], [0.2, 0.0, 0.0]])


def _trial(error, size, memory, status="completed"):
    return {
        "status": status,
        "error": error,
        "model_size_bytes": size,
        "working_memory_bytes": memory,
    }


def test_score_traces_best_known_front_and_shares(sq):
    runs = [
        {"method": "a", "seed": 0, "trials": [_trial(0.5, 100, 100)]},
        {
            "method": "b",
            "seed": 0,
            "trials": [
                _trial(0.25, 1000, 1000),  # on the front, but at the reference: no volume
                _trial(float("nan"), float("nan"), float("nan"), "failed"),
                _trial(0.5, 100, 100),
            ],
        },
    ]
    scored = sq.score(runs, RANGES)
    # a's one point, linear: (1 - 0.5) (1 - 0.1) (1 - 0.1)
    assert runs[0]["hv_linear"] == pytest.approx([0.405])
    assert runs[1]["hv_linear"] == pytest.approx([0.0, 0.0, 0.405])
    # log: (1 - 0.5) (1 - 0.5) (1 - 0.5)
    assert runs[0]["hv_log"] == pytest.approx([0.125])
    assert scored["best"] == pytest.approx({"linear": 0.405, "log": 0.125})
    assert scored["front_size"] == 2
    assert scored["share"] == {"a": 0.5, "b": 1.0}


def test_comparison_claims_a_difference_only_beyond_seed_noise(sq):
    runs = [
        {"method": m, "seed": s, "hv_linear": [hv]}
        for m, values in {
            "sparsemod": [0.9, 0.8, 0.85],
            "x": [0.5, 0.6, 0.7],
            "y": [0.84, 0.95, 0.7],
        }.items()
        for s, hv in enumerate(values)
    ]
    text = sq.comparison(runs, "linear", ["sparsemod", "x", "y"], [0, 1, 2])
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "yes, ahead" in rows["x"] and "3 / 3" in rows["x"]
    assert f"{0.85 / 0.6:.3f}" in rows["x"]
    assert "no (ranges overlap)" in rows["y"] and "2 / 3" in rows["y"]


def test_overall_is_the_geometric_mean_of_ratios_to_the_best_peer(sq):
    final = {
        # medians: sparsemod 0.6, tpe 0.4, random 0.3, ax 0.5
        "p1": {
            "sparsemod": [0.6, 0.7, 0.5],
            "optuna_tpe": [0.4, 0.45, 0.35],
            "random": [0.3, 0.2, 0.35],
            "ax": [0.5, 0.55, 0.46],
        },
        # medians: sparsemod 0.2, tpe 0.8, random 0.4, ax 0.3 (one seed)
        "p2": {
            "sparsemod": [0.2, 0.25, 0.15],
            "optuna_tpe": [0.8, 0.9, 0.7],
            "random": [0.4, 0.3, 0.5],
            "ax": [0.3],
        },
    }
    got = sq.overall(final, ["sparsemod", "optuna_tpe", "random", "ax"])
    # sparsemod's best peer: ax (0.5) on p1, tpe (0.8) on p2: sqrt(0.6 / 0.5 * 0.2 / 0.8)
    assert got["sparsemod"]["ratio"] == pytest.approx(math.sqrt(0.3))
    assert got["sparsemod"]["problems"] == 2
    # p1: [0.5, 0.7] against ax's [0.46, 0.55] overlap; p2: [0.15, 0.25] below [0.7, 0.9]
    assert [got["sparsemod"][k] for k in ("ahead", "behind", "judged")] == [0, 1, 2]
    # tpe's best other peer: ax (0.5) on p1, random (0.4) on p2: sqrt(0.4 / 0.5 * 0.8 / 0.4)
    assert got["optuna_tpe"]["ratio"] == pytest.approx(math.sqrt(1.6))
    assert [got["optuna_tpe"][k] for k in ("ahead", "behind", "judged")] == [1, 1, 2]
    # random: 0.3 / 0.5 on p1, 0.4 / 0.8 on p2, behind both
    assert got["random"]["ratio"] == pytest.approx(math.sqrt(0.6 * 0.5))
    assert [got["random"][k] for k in ("ahead", "behind", "judged")] == [0, 2, 2]
    # ax: 0.5 / 0.4 on p1 (ahead: 0.46 > 0.45), 0.3 / 0.8 on p2 (one seed: not judged)
    assert got["ax"]["ratio"] == pytest.approx(math.sqrt(1.25 * 0.375))
    assert [got["ax"][k] for k in ("ahead", "behind", "judged")] == [1, 0, 1]


def test_overall_ratio_of_zero_and_a_peer_at_zero(sq):
    final = {
        "p1": {"sparsemod": [0.0], "random": [0.5]},  # a ratio of 0: the mean is 0
        "p2": {"sparsemod": [0.4], "random": [0.0]},  # no ratio: left out
    }
    got = sq.overall(final, ["sparsemod", "random"])
    assert got["sparsemod"]["ratio"] == 0.0 and got["sparsemod"]["problems"] == 1
    assert math.isnan(got["random"]["ratio"])  # no other peer: nothing to compare with


def test_duplicates_count_repeats_of_an_earlier_network(sq):
    trials = [
        {"params": {"a": a, "b": b}} for a, b in [(1, 1), (1, 2), (1, 1), (2, 9), (1, 1), (2, 7)]
    ]
    # the fingerprint ignores b when a == 2 (an inactive parameter)
    assert sq.duplicates(trials, lambda p: f"{p['a']}-{p['b'] if p['a'] == 1 else 0}") == 3
    assert sq.duplicates(trials, lambda p: repr(sorted(p.items()))) == 2
    assert sq.duplicates([], str) == 0


def test_the_fingerprint_joins_points_of_one_network(sq, sig):
    problem = sig.signal_problem()
    settings = sq.train_config("random", 0, 40, 1, sq.ROOT, "signal1d").eval_settings(1)
    fingerprint = sq.fingerprinter(problem, settings, (1, sig.LENGTH), len(sig.CLASSES))
    one = dict(problem.space.reference, n_conv=1)
    same = dict(one, ch2=8, pool2="none", ch3=64)  # only inactive parameters differ
    other = dict(one, ch1=8)
    trials = [{"params": p} for p in (one, same, other, one)]
    assert sq.duplicates(trials, fingerprint) == 2


def test_signals_are_deterministic_balanced_and_shaped(sig):
    x, y = sig.make_signals(20, seed=3)
    x2, y2 = sig.make_signals(20, seed=3)
    x3, _ = sig.make_signals(20, seed=4)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.allclose(x, x3)
    assert x.shape == (100, 1, 128) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [20] * 5
    splits = sig.load_signals(1)
    sizes = [len(d) for d in (splits.train, splits.val, splits.test)]
    assert sizes == [1500, 500, 500]
    assert splits.input_shape == (1, 128) and splits.num_classes == 5
    for d, n in zip((splits.train, splits.val, splits.test), sizes):
        assert np.bincount(d.tensors[1].numpy()).tolist() == [n // 5] * 5
    # the splits come from different streams: no example shared
    assert not np.allclose(splits.train.tensors[0][:500], splits.val.tensors[0])


def test_clean_signals_peak_in_their_class_band(sig):
    x, y = sig.make_signals(30, seed=0, noise=False)
    spectrum = np.abs(np.fft.rfft(x[:, 0, :], axis=1))
    peak = spectrum[:, 1:].argmax(axis=1) + 1  # cycles per window; DC left out
    for label, name in enumerate(sig.CLASSES):
        lo, hi = sig.BANDS[name]
        mine = peak[y == label]
        # a bin is one cycle wide: the peak is the nearest bin to the frequency
        assert ((mine >= math.floor(lo)) & (mine <= math.ceil(hi))).all(), (name, mine)
    # and the three periodic classes share a band but not a shape: the square's third
    # harmonic is far stronger than the sine's
    third = {}
    for label in (0, 1):
        rows = np.flatnonzero(y == label)
        third[label] = np.median(
            [
                spectrum[i, 3 * peak[i] - 1 : 3 * peak[i] + 2].max() / spectrum[i, peak[i]]
                for i in rows
            ]
        )
    assert third[0] < 0.1 < third[1]


def test_builder_shapes_and_build_errors(sig):
    import torch

    from sparsemod.errors import BuildError

    ref = dict(sig.signal_space().reference)
    one = dict(ref, n_conv=1, ch1=8, pool1="max", kernel=7, fc_units=16)
    net = sig.build_signal_cnn(one, (1, 128), 5)
    assert [n for n, _ in net.named_children()] == [
        "c1_conv",
        "c1_bn",
        "c1_relu",
        "c1_pool",
        "flatten",
        "fc",
        "fc_relu",
        "out",
    ]
    assert net.c1_conv.kernel_size == (7,) and net.c1_conv.padding == (3,)
    assert net.fc.in_features == 8 * 64  # 128 samples pooled once
    assert tuple(net(torch.zeros(2, 1, 128)).shape) == (2, 5)
    three = dict(ref, n_conv=3, ch1=4, ch2=8, ch3=16, pool1="max", pool2="none", pool3="max")
    net = sig.build_signal_cnn(three, (1, 128), 5)
    x = torch.zeros(2, 1, 128)
    shapes = {}
    for name, layer in net.named_children():
        x = layer(x)
        shapes[name] = tuple(x.shape[1:])
    assert shapes["c1_pool"] == (4, 64) and shapes["c2_relu"] == (8, 64)
    assert shapes["c3_pool"] == (16, 32) and "c2_pool" not in shapes
    assert net.fc.in_features == 16 * 32 and shapes["out"] == (5,)
    # pooling below a length of 2, and inputs that are not (channels, length)
    pools = dict(three, pool2="max")
    with pytest.raises(BuildError, match="block 3 pooling"):
        sig.build_signal_cnn(pools, (1, 4), 5)
    with pytest.raises(BuildError, match="channels, length"):
        sig.build_signal_cnn(one, (1, 8, 8), 5)


def test_quick_run_compares_methods_per_problem(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--quick",
            "--problems",
            "signal1d",
            "--methods",
            "sparsemod",
            "random",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = (tmp_path / "search_quality.md").read_text()
    assert (tmp_path / "search_quality_signal1d.png").stat().st_size > 10_000
    assert "## signal1d" in table and "## Overall (1 problems: signal1d)" in table
    for method in ("sparsemod", "random"):
        run = json.loads(
            (tmp_path / "search_quality" / "signal1d" / f"{method}_0.json").read_text()
        )
        assert run["problem"] == "signal1d" and run["method"] == method
        assert len(run["trials"]) == 6, method
        assert 0 <= run["duplicates"] <= 5
        assert any(t["status"] == "completed" for t in run["trials"]), method
        # the two HV tables and the overall one; a peer also in the two comparisons
        assert table.count(f"| {method} |") == (3 if method == "sparsemod" else 5)
        for t in run["trials"]:
            assert set(t["params"]) == {
                "n_conv",
                "ch1",
                "ch2",
                "ch3",
                "pool1",
                "pool2",
                "pool3",
                "kernel",
                "fc_units",
                "lr",
                "keep_ratio",
            }
            assert t["eval_s"] > 0
            if t["status"] == "completed":
                assert 0.0 <= t["error"] <= 1.0 and t["model_size_bytes"] > 0
    # every HV is a share of the unit box and at most the best-known front's
    best = [
        float(line.split(": ")[1].rstrip(")"))
        for line in table.splitlines()
        if "best-known front:" in line and line.startswith("####")
    ]
    assert len(best) == 2 and all(0 < b <= 1 for b in best)
    rows = [line.split("|") for line in table.splitlines() if line.startswith("| ") and "%" in line]
    rows = [r for r in rows if r[2].strip()[:1].isdigit()]  # not the headers
    medians = [float(r[2]) for r in rows]
    assert len(medians) == 4 and all(0 <= m <= max(best) + 1e-9 for m in medians)
    assert not any(math.isnan(m) for m in medians)
    # the overall ratio of sparsemod is its median over random's, read from the HV rows
    linear = {r[1].strip(): float(r[2]) for r in rows[:2]}
    overall = next(
        line
        for line in table.splitlines()
        if line.startswith("| sparsemod |") and "problems)" in line
    )
    ratio = float(overall.split("|")[2].split()[0])
    assert ratio == pytest.approx(linear["sparsemod"] / linear["random"], abs=2e-3)
