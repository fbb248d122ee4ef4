"""Each bad input to ``sparsemod deploy`` gets one line naming what is wrong, and nothing is
written."""

from __future__ import annotations

import shutil
import sys

import pytest

from sparsemod.cli import main
from sparsemod.deploy import RUNTIMES, deploy, get_runtime
from sparsemod.deploy.base import DeployCheckError, DeployError
from sparsemod.store import Store, default_url


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("sparsemod: deploy: ")
    return err


def test_unknown_format_lists_the_formats(cnn_search, tmp_path, capsys):
    err = one_line_error(
        capsys,
        [
            "deploy",
            cnn_search.name,
            "--root",
            str(cnn_search.root),
            "--format",
            "tflm",
            "--out",
            str(tmp_path),
        ],
    )
    assert "'tflm'" in err and all(f in err for f in RUNTIMES)
    assert not list(tmp_path.iterdir())


def test_a_trial_without_a_model_names_the_pareto_members(cnn_search, tmp_path, capsys):
    with Store(default_url(cnn_search.root)) as store:
        search = store.find_search(cnn_search.name)
        others = [t.index for t in store.list_trials(search.id) if not t.has_model]
    missing = others[0] if others else 99
    err = one_line_error(
        capsys,
        [
            "deploy",
            cnn_search.name,
            "--root",
            str(cnn_search.root),
            "--trial",
            str(missing),
            "--out",
            str(tmp_path),
        ],
    )
    assert f"trial {missing}" in err
    assert ", ".join(str(t.index) for t in cnn_search.pareto) in err
    assert not list(tmp_path.iterdir())


def test_an_unknown_search(tmp_path, capsys):
    err = one_line_error(capsys, ["deploy", "nope", "--root", str(tmp_path)])
    assert "'nope'" in err


def test_a_missing_runtime_names_the_extra(cnn_search, tmp_path, monkeypatch):
    for name in ("litert_torch", "onnx"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    for fmt, extra in (("tflite", "tflite"), ("onnx", "onnx")):
        with pytest.raises(DeployError, match=rf'pip install "sparsemod\[{extra}\]"') as info:
            deploy(cnn_search.name, format=fmt, out=tmp_path, root=cnn_search.root)
        assert "\n" not in str(info.value)
    assert not list(tmp_path.iterdir())


def test_a_format_whose_module_is_absent_is_not_available(monkeypatch):
    monkeypatch.setitem(RUNTIMES, "future", "sparsemod.deploy.no_such_runtime")
    with pytest.raises(DeployError, match=r"format 'future' is not available"):
        get_runtime("future")


def test_accuracy_off_names_both_numbers_and_writes_nothing(cnn_search, tmp_path):
    pytest.importorskip("onnxruntime", reason='needs the onnx extra: pip install "sparsemod[onnx]"')
    root = tmp_path / "copy"
    shutil.copytree(cnn_search.root, root)
    trial = cnn_search.most_accurate()
    stored = trial.metrics["accuracy_test"]
    with Store(default_url(root)) as store:  # the store now claims 10 points more
        store.record_metrics(trial.id, {"accuracy_test": stored - 0.1})
    out = tmp_path / "out"
    with pytest.raises(DeployCheckError) as info:
        deploy(cnn_search.name, trial=trial.index, format="onnx", out=out, root=root)
    message = str(info.value)
    assert f"{stored - 0.1:.4f}" in message and "0.5 points" in message and "\n" not in message
    assert not out.exists()


def test_cli_prints_the_table_and_check_rechecks(cnn_search, tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason='needs the onnx extra: pip install "sparsemod[onnx]"')
    argv = [
        "deploy",
        cnn_search.name,
        "--root",
        str(cnn_search.root),
        "--format",
        "onnx",
        "--trial",
        str(cnn_search.most_accurate().index),
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for figure in ("accuracy", "model size (bytes)", "working memory (bytes)"):
        assert figure in out
    written = sorted(p.name for p in tmp_path.iterdir())
    assert main([*argv, "--check"]) == 0
    again = capsys.readouterr().out
    assert "accuracy" in again and "wrote" not in again
    assert sorted(p.name for p in tmp_path.iterdir()) == written
    empty = tmp_path / "empty"
    empty.mkdir()
    argv[-1] = str(empty)
    assert main([*argv, "--check"]) == 2
    assert "export it first" in capsys.readouterr().err
