"""The core records: torch-free, and the same classes the evaluator returns."""

from __future__ import annotations

import subprocess
import sys

import sparsemod.evaluate
from sparsemod.core import results


def test_core_imports_no_torch():
    code = (
        "import sys, sparsemod.core.results\n"
        "print(sorted(m for m in ('torch', 'sqlalchemy', 'ax') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_evaluator_re_exports_the_same_records():
    for name in ("COMPLETED", "FAILED", "ModelArtifact", "TrialResult", "WarmStart"):
        assert getattr(sparsemod.evaluate, name) is getattr(results, name)


def test_a_result_names_its_objectives():
    r = results.TrialResult(results.COMPLETED, {}, 0, error=0.1, model_size_bytes=10)
    assert r.ok and not results.TrialResult(results.FAILED, {}, 0).ok
    assert r.objectives() == {
        "error": 0.1,
        "model_size_bytes": 10,
        "working_memory_bytes": None,
        "latency_s": None,
    }
