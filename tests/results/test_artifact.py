"""A deployed model's metadata: one writer for the store and the files, and old files still load."""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from server.client import load_model_bytes
from sparsemod.evaluate import ModelArtifact
from sparsemod.problems import get_problem
from sparsemod.results.artifact import artifact_from, artifact_metadata, artifact_problem
from sparsemod.results.files import write_results
from sparsemod.results.reading import load_results
from sparsemod.results.trials import trials_frame
from sparsemod.search.record import model_payload

PROBLEM = "digits_mlp"


@pytest.fixture(scope="module")
def artifact() -> ModelArtifact:
    """An untrained float network of the digits MLP space, as a state_dict artifact."""
    problem = get_problem(PROBLEM)
    params = dict(problem.space.reference)
    torch.manual_seed(0)
    model = problem.build(params, (1, 8, 8), 10)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return ModelArtifact("state_dict", buf.getvalue(), params, (1, 8, 8), 10, "none")


def _outputs(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.linspace(-1, 1, 2 * 64).reshape(2, 1, 8, 8))


@pytest.fixture(scope="module")
def folder(artifact, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results") / "s"
    rows = [{"index": 4, "phase": "sobol", "status": "completed", "params": artifact.params,
             "error": 0.5, "model_size_bytes": 1000, "working_memory_bytes": 100}]  # fmt: skip
    frame = trials_frame(rows, get_problem(PROBLEM).space.names, ["error", "model_size_bytes"])
    write_results(out, frame, pareto_columns={}, summary={"name": "s"}, models={4: artifact},
                  problem_name=PROBLEM, objectives=["error", "model_size_bytes"],
                  wall_seconds=1.0)  # fmt: skip
    return out


def test_metadata_round_trip(artifact):
    meta = artifact_metadata(artifact, PROBLEM)
    assert meta == {
        "params": dict(artifact.params),
        "input_shape": [1, 8, 8],
        "num_classes": 10,
        "quant_scheme": "none",
        "problem": PROBLEM,
    }
    # JSON in between, as the store and the sidecar keep it
    again = artifact_from(json.loads(json.dumps(meta)), artifact.data, artifact.format)
    assert again == artifact
    assert artifact_from({**meta, "format": "state_dict"}, artifact.data) == artifact


def test_store_and_sidecar_write_the_same_metadata(artifact, folder):
    fmt, data, stored = model_payload(artifact, PROBLEM)
    assert (fmt, data) == (artifact.format, artifact.data)
    sidecar = json.loads((folder / "models" / "trial_4.json").read_text())
    assert sidecar == {"index": 4, "format": "state_dict", "file": "trial_4.pt", **stored}
    assert stored == artifact_metadata(artifact, PROBLEM)


def test_the_problem_under_either_spelling():
    assert artifact_problem({"problem": "a"}) == "a"
    assert artifact_problem({"problem_name": "b"}) == "b"  # models/*.json before 0.1.x
    assert artifact_problem({"problem": "a", "problem_name": "b"}) == "a"
    assert artifact_problem({"params": {}}) is None


def test_an_old_spelling_sidecar_still_loads(artifact, folder, tmp_path):
    expected = _outputs(load_results(folder).load_model(4))
    sidecar = folder / "models" / "trial_4.json"
    meta = json.loads(sidecar.read_text())
    old = {k: v for k, v in meta.items() if k != "problem"} | {"problem_name": PROBLEM}
    copy = tmp_path / "old"
    (copy / "models").mkdir(parents=True)
    for name in ("trials.csv", "pareto.csv", "summary.json"):
        (copy / name).write_bytes((folder / name).read_bytes())
    (copy / "models" / "trial_4.pt").write_bytes(artifact.data)
    (copy / "models" / "trial_4.json").write_text(json.dumps(old))
    assert torch.equal(_outputs(load_results(copy).load_model(4)), expected)
    # the client takes the same dict as a trial's model.meta
    model = load_model_bytes(artifact.data, "state_dict", old)
    assert torch.equal(_outputs(model), expected)


def test_client_refuses_meta_without_a_problem(artifact):
    from sparsemod.errors import ConfigError

    meta = artifact_metadata(artifact, PROBLEM)
    del meta["problem"]
    with pytest.raises(ConfigError, match="names no problem"):
        load_model_bytes(artifact.data, "state_dict", meta)


def test_results_import_neither_torch_nor_the_search():
    code = (
        "import sys\n"
        "import sparsemod.results.pareto, sparsemod.results.trials, sparsemod.results.artifact\n"
        "import sparsemod.results.reading, sparsemod.results.plots\n"
        "assert 'torch' not in sys.modules, 'torch'\n"
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    package = Path(__file__).parents[2] / "sparsemod" / "results"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not [n for n in names if n.startswith("sparsemod.search")], path.name
