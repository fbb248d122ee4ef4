"""Tiny real searches whose Pareto models the deploy tests export, each run once a session.

Each search trains one network, the reference network of a built-in problem
(:mod:`deploy_problems`), and stores it as ``python main.py`` does: the model of its Pareto
member, scored on the test split.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sparsemod.cli import main
from sparsemod.store import Store, default_url

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(HERE) not in sys.path:  # the problems are named deploy_problems:<function>
    sys.path.insert(0, str(HERE))
TINY = ["r1=1", "r2=0", "r3=0", "batch_size=1", "epochs1=4", "device=cpu", "morphisms=false"]


@dataclass(frozen=True)
class Searched:
    """A finished tiny search: its results root, name and Pareto trials (index order)."""

    root: Path
    name: str
    pareto: list

    def most_accurate(self):
        return max(self.pareto, key=lambda t: (t.metrics["accuracy_test"], -t.index))


def run_search(root: Path, problem: str, *options: str) -> Searched:
    """Run a tiny search of ``problem`` under ``root`` and read its Pareto trials back."""
    argv = ["--config", str(REPO / "config.ini")]
    spec = f"deploy_problems:reference_{problem.removeprefix('digits_')}"
    for item in [f"name={problem}", f"problem={spec}", f"root={root}", *TINY, *options]:
        argv += ["--set", f"TRAIN.{item}"]
    assert main(argv) == 0
    with Store(default_url(root)) as store:
        search = store.find_search(problem)
        pareto = [t for t in store.list_trials(search.id) if t.has_model]
    assert pareto, "the tiny search kept no model"
    return Searched(root, problem, sorted(pareto, key=lambda t: t.index))


@pytest.fixture(scope="session")
def cnn_search(tmp_path_factory) -> Searched:
    return run_search(tmp_path_factory.mktemp("cnn"), "digits_cnn")


@pytest.fixture(scope="session")
def mlp_search(tmp_path_factory) -> Searched:
    return run_search(tmp_path_factory.mktemp("mlp"), "digits_mlp")


@pytest.fixture(scope="session")
def rnn_search(tmp_path_factory) -> Searched:
    return run_search(
        tmp_path_factory.mktemp("rnn"), "digits_rnn", "quant_scheme=dynamic", "runtime=ideal"
    )


@pytest.fixture(scope="session")
def rnn_tflm_search(tmp_path_factory) -> Searched:
    """The reference LSTM under the defaults: runtime = tflm, quant_scheme = post (its
    stored model is the TFLM int8 twin, sparsemod.compress.rnn_int8)."""
    return run_search(
        tmp_path_factory.mktemp("rnn_tflm"),
        "digits_rnn",
        "max_model_size=128KB",  # the unrolled graph: 96 KB of flatbuffer, 45 KB of arena
        "max_working_memory=64KB",
    )
