"""The command: ``python main.py`` with config.ini and --set, its errors and the [TEST] mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sparsemod.cli import main

REPO = Path(__file__).resolve().parents[1]


def _ini(tmp_path: Path, train: str = "true", extra: str = "") -> Path:
    path = tmp_path / "config.ini"
    path.write_text(
        f"[DEFAULT]\ntrain = {train}\n\n[TRAIN]\nname = cli\nroot = {tmp_path / 'out'}\n"
        "r1 = 1\nr2 = 0\nr3 = 0\nbatch_size = 2\nepochs1 = 1\ndevice = cpu\n"
        f"prune_method = magnitude_layerwise\n{extra}\n"
        f"[TEST]\nname = cli\nroot = {tmp_path / 'out'}\narm = 1\nepochs = 1\ndevice = cpu\n"
        "prune_method = magnitude_layerwise\n"
    )
    return path


@pytest.mark.parametrize(
    ("extra", "overrides", "message"),
    [
        ("epoch1 = 3", [], r"\[TRAIN\] unknown key 'epoch1'.*did you mean 'epochs1'"),
        ("", ["TRAIN.r1=abc"], r"\[TRAIN\] r1: 'abc' is not an integer"),
        ("quant_scheme = int4", [], r"quant_scheme: 'int4' is not one of"),
        ("max_model_size = 2 parsecs", [], r"max_model_size: '2 parsecs'"),
        ("", ["TRAIN.objectives=7"], r"objectives: '7'"),
        ("", ["TRAIN.r1"], r"--set 'TRAIN.r1' has no '='"),
        ("problem = nowhere:nothing", [], r"problem: cannot import 'nowhere:nothing'"),
        (
            "",
            ["TRAIN.prune_method=sideways"],
            r"\[TRAIN\] prune_method: 'sideways' is not a pruning method",
        ),
    ],
)
def test_bad_configuration_is_one_line_exit_2_nothing_written(
    tmp_path, capsys, extra, overrides, message
):
    import re

    path = _ini(tmp_path, extra=extra)
    args = ["--config", str(path)] + [a for o in overrides for a in ("--set", o)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_missing_file_and_section(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "nope.ini")]) == 2
    assert "config file" in capsys.readouterr().err
    bare = tmp_path / "bare.ini"
    bare.write_text("[DEFAULT]\ntrain = true\n")
    assert main(["--config", str(bare)]) == 2
    assert "no [TRAIN] section" in capsys.readouterr().err


@pytest.mark.slow
def test_search_then_test_mode(tmp_path, capsys):
    path = _ini(tmp_path)
    assert main(["--config", str(path)]) == 0
    out_dir = tmp_path / "out" / "cli"
    assert (out_dir / "trials.csv").is_file()
    assert main(["--config", str(path), "--set", "DEFAULT.train=false"]) == 0
    written = json.loads((out_dir / "test_trial_1.json").read_text())
    assert written["arm"] == 1 and written["status"] == "completed"
    assert 0.0 <= written["test_error"] <= 1.0
    assert written["model_size_bytes"] > 0
    # an arm that is not a trial of the search
    assert (
        main(["--config", str(path), "--set", "DEFAULT.train=false", "--set", "TEST.arm=99"]) == 2
    )
    assert "arm: 99 is not a trial" in capsys.readouterr().err


def test_python_main_py_exits_2_on_a_bad_key(tmp_path):
    path = _ini(tmp_path, extra="flopz = 3")
    proc = subprocess.run(
        [sys.executable, "main.py", "--config", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "flopz" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_export_lineage_and_load_results_from_the_store(tmp_path, capsys):
    import sparsemod

    path = _ini(tmp_path)
    assert main(["--config", str(path), "--set", "TRAIN.r3=1", "--set", "TRAIN.r2=1"]) == 0
    root = str(tmp_path / "out")
    capsys.readouterr()
    assert main(["lineage", "cli", "--root", root]) == 0
    tree = capsys.readouterr().out
    assert "trial 0 (sobol)" in tree and "(morph)" in tree
    # a morph child is printed under its parent, indented
    assert any(line.startswith("    trial") and "(morph)" in line for line in tree.splitlines())
    out = tmp_path / "again"
    assert main(["export", "cli", "--root", root, "--out", str(out)]) == 0
    assert (out / "trials.csv").is_file() and (out / "pareto.csv").is_file()
    from_files = sparsemod.load_results(tmp_path / "out" / "cli")
    from_store = sparsemod.load_results(tmp_path / "out" / "sparsemod.db", name="cli")
    assert list(from_store.trials["index"]) == list(from_files.trials["index"])
    assert list(from_store.pareto["index"]) == list(from_files.pareto["index"])
    assert main(["lineage", "nope", "--root", root]) == 2
    assert "no search named 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_refuses_a_config_that_changes_what_was_measured(tmp_path, capsys):
    from sparsemod.store import Store, default_url

    path = _ini(tmp_path, extra="epochs2 = 1")
    assert main(["--config", str(path)]) == 0
    store = Store(default_url(tmp_path / "out"))
    search = store.find_search("cli")
    before = [(t.index, t.status, t.metrics) for t in store.list_trials(search.id)]
    assert len(before) == 2
    capsys.readouterr()
    # another objective count and another pruner: refused, each named with both values
    code = main(
        [
            "--config",
            str(path),
            "--resume",
            "--set",
            "TRAIN.objectives=2",
            "--set",
            "TRAIN.prune_method=magnitude",
            "--set",
            "TRAIN.r2=1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "objectives 3 -> 2" in err and "prune_method 'magnitude_layerwise' -> 'magnitude'" in err
    assert "r2" not in err.split("A resume may change only")[0]
    assert len(err.strip().splitlines()) == 1
    # nothing was written
    again = store.get_search(search.id)
    assert again.status == "done" and again.config == search.config
    assert [(t.index, t.status, t.metrics) for t in store.list_trials(search.id)] == before
    # a longer budget is allowed: the done search goes on with one more GP round
    assert main(["--config", str(path), "--resume", "--set", "TRAIN.r2=1"]) == 0
    out = capsys.readouterr().out
    assert f"resuming search {search.id} with r2 0 -> 1" in out
    trials = store.list_trials(search.id)
    assert [t.phase for t in trials] == ["sobol", "sobol", "gp", "gp"]
    assert [(t.index, t.status, t.metrics) for t in trials[:2]] == before
    assert store.get_search(search.id).config["r2"] == 1
    # the same config again: nothing left to do
    assert main(["--config", str(path), "--resume", "--set", "TRAIN.r2=1"]) == 0
    assert "already done" in capsys.readouterr().out
