"""``compression = lut``: a search counts the LUT-compressed flatbuffer, and deploy writes it."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import run_search

from sparsemod.deploy import deploy, get_runtime
from sparsemod.deploy.api import export_source
from sparsemod.store import Store, default_url

BITS = (3, 5)  # the lut_bits range of deploy_problems:reference_mlp_lut


def _agree(sparsemod: float, runtime: float) -> bool:
    return abs(sparsemod - runtime) <= max(0.01 * runtime, 64)


def test_a_lut_search_counts_what_tflm_stores_and_runs(tmp_path):
    for module in ("litert_torch", "tflite_micro"):
        pytest.importorskip(module, reason='needs the extra: pip install "sparsemod[tflite]"')
    # The decoded weights live in the arena while their layer runs: config.ini's 8 KB
    # working-memory limit is below what this MLP needs with them.
    options = ("compression=lut", "deploy_check=tflite", "max_working_memory=none")
    searched = run_search(tmp_path, "digits_mlp_lut", *options)
    folder = tmp_path / searched.name
    pareto = pd.read_csv(folder / "pareto.csv")
    summary = json.loads((folder / "summary.json").read_text())
    assert len(pareto) >= 1
    for _, row in pareto.iterrows():
        index = int(row["index"])
        assert "failed" not in summary["deploy_check"]["trials"][str(index)]
        # the objectives the search used are TFLM's figures for the compressed flatbuffer
        assert _agree(row["model_size_bytes"], row["runtime_model_bytes"]), row
        assert _agree(row["working_memory_bytes"], row["runtime_memory_bytes"]), row
        assert abs(row["runtime_accuracy_test"] - (1 - row["test_error"])) <= 0.005 + 1e-12
        done = deploy(searched.name, trial=index, format="tflite", out=tmp_path / "out",
                      root=tmp_path)  # fmt: skip
        art = done.artifact
        assert art.size_bytes == row["runtime_model_bytes"]
        # each compressed weight is decoded by its own DECODE op right before its layer
        luts, ops = art.meta["lut"], art.meta["ops"]
        assert len(luts) == ops.count("TFLM_DECODE") >= 1
        decoded = [ops[i + 1] for i, op in enumerate(ops) if op == "TFLM_DECODE"]
        assert decoded == ["FULLY_CONNECTED"] * len(luts)
        with Store(default_url(tmp_path)) as store:
            trial = next(t for t in store.list_trials(store.find_search(searched.name).id)
                         if t.index == index)  # fmt: skip
        bits = trial.params["lut_bits"]
        assert BITS[0] <= bits <= BITS[1]
        for lut in luts:
            assert 1 <= lut["bits"] <= bits and lut["values_per_channel"] <= 2 ** lut["bits"]
    # the same network without the compressor is larger by what the indices save
    from sparsemod.deploy.source import trial_source
    from sparsemod.problems import get_problem
    from sparsemod.results.export import artifact_from_store

    with Store(default_url(tmp_path)) as store:
        search = store.find_search(searched.name)
        stored = artifact_from_store(store, searched.pareto[0].id)
        source = trial_source(get_problem(search.config["problem"]), stored, search.config)
    plain = get_runtime("tflite").export(source.model, source.example, source.calibration)
    packed = export_source(get_runtime("tflite"), source)
    assert "lut" not in plain.meta and packed.meta["lut"]
    assert packed.size_bytes < plain.size_bytes
