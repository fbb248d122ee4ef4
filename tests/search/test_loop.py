"""The three-phase search end to end on digits: tiny budgets, real training, real Ax."""

from __future__ import annotations

import io
import json
import time

import pandas as pd
import pytest

from sparsemod.config import TrainConfig
from sparsemod.problems import get_problem
from sparsemod.results.pareto import hypervolume, pareto_mask
from sparsemod.results.reading import load_results
from sparsemod.search import Search
from sparsemod.search.costs import Costs
from sparsemod.search.encoding import Encoder
from sparsemod.search.phases import Plan, Stopper, Tools, plan
from sparsemod.store import Store, default_url
from sparsemod.train import accuracy

TINY = dict(
    r1=2,
    r2=2,
    r3=1,
    epochs1=1,
    epochs2=1,
    epochs3=1,
    batch_size=2,
    objectives=3,
    num_candidates=64,
    device="cpu",
    # as TFLM counts them (runtime = tflm): about a fifth of the CNN space fits
    max_model_size=24576,
    max_working_memory=6144,
    prune_method="magnitude_layerwise",
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    cfg = TrainConfig(name="tiny", root=str(root), **TINY)
    out = io.StringIO()
    outcome = Search(cfg, get_problem("digits_cnn"), out=out).run()
    return cfg, outcome, out.getvalue()


@pytest.mark.slow
def test_tiny_search_writes_every_file(tiny):
    cfg, outcome, log = tiny
    d = outcome.directory
    for name in ("trials.csv", "pareto.csv", "summary.json", "time.txt", "pareto.png"):
        assert (d / name).is_file(), name
    trials = pd.read_csv(d / "trials.csv")
    # 2 Sobol rounds + 2 GP rounds + 1 morph round, 2 arms each
    assert len(trials) == 10
    assert list(trials["phase"]) == ["sobol"] * 4 + ["gp"] * 4 + ["morph"] * 2
    for column in (
        "index",
        "phase",
        "parent",
        "status",
        "failure_reason",
        "b1_filters",
        "lr",
        "error",
        "model_size_bytes",
        "working_memory_bytes",
        "flops",
        "latency_s",
        "train_seconds",
        "is_pareto",
    ):
        assert column in trials.columns, column
    summary = json.loads((d / "summary.json").read_text())
    assert summary["objectives"] == ["error", "model_size_bytes", "working_memory_bytes"]
    assert (d / "summary.json").stat().st_size < 20_000
    assert set(summary["versions"]) >= {"sparsemod", "torch", "ax", "botorch"}
    pareto = pd.read_csv(d / "pareto.csv")
    assert sorted(pareto["index"]) == sorted(outcome.pareto)
    assert pareto["test_error"].between(0, 1).all()
    # only the Pareto members have a model on disk
    assert sorted(int(p.stem.split("_")[1]) for p in (d / "models").glob("*.json")) == sorted(
        outcome.pareto
    )
    # one progress line per trial
    assert sum(line.startswith("[") and " trial " in line for line in log.splitlines()) == 10


@pytest.mark.slow
def test_pareto_rows_are_exactly_the_non_dominated_completed_trials(tiny):
    _, outcome, _ = tiny
    trials = pd.read_csv(outcome.directory / "trials.csv")
    done = trials[trials["status"] == "completed"]
    values = done[["error", "model_size_bytes", "working_memory_bytes"]].to_numpy(float)
    expected = set(done["index"][pareto_mask(values)])
    assert set(trials["index"][trials["is_pareto"]]) == expected == set(outcome.pareto)
    for i in expected:
        row = values[list(done["index"]).index(i)]
        assert not ((values <= row).all(axis=1) & (values < row).any(axis=1)).any()


@pytest.mark.slow
def test_morph_children_name_a_parent_that_was_on_the_front(tiny):
    _, outcome, _ = tiny
    trials = pd.read_csv(outcome.directory / "trials.csv")
    morph = trials[trials["phase"] == "morph"]
    assert len(morph) == 2
    for _, child in morph.iterrows():
        parent = int(child["parent"])
        before = trials[(trials["index"] < child["index"]) & (trials["status"] == "completed")]
        values = before[["error", "model_size_bytes", "working_memory_bytes"]].to_numpy(float)
        front = set(before["index"][pareto_mask(values)])
        assert parent in front


@pytest.mark.slow
def test_hard_constraints_reject_before_training(tiny):
    cfg, outcome, _ = tiny
    # Sobol drew arms over the limits, and they were dropped before training: every Sobol
    # point drawn is either a trial or a rejection (the pool of the GP phase holds only
    # candidates within the limits)
    assert outcome.rejected > 0
    summary = json.loads((outcome.directory / "summary.json").read_text())
    assert summary["rejected_before_training"] == outcome.rejected
    store = Store(default_url(cfg.root))
    search = store.find_search(cfg.name)
    sobol = [t for t in outcome.trials if t.phase == "sobol"]
    assert search.sobol_drawn == len(sobol) + outcome.rejected
    for t in outcome.trials:
        # what was trained met the limits as predicted from the parameters
        assert t.predicted["model_size_bytes"] <= cfg.max_model_size
        assert t.predicted["working_memory_bytes"] <= cfg.max_working_memory
        # under runtime = tflm every measured cost equals the prediction exactly (the
        # runtime stores the weights dense, whatever pruning kept)
        if t.status == "completed":
            assert t.result.model_size_bytes <= cfg.max_model_size
            for name in ("model_size_bytes", "working_memory_bytes", "flops", "latency_s"):
                assert getattr(t.result, name) == t.predicted[name], name


@pytest.mark.slow
def test_results_load_back_with_models(tiny):
    _, outcome, _ = tiny
    results = load_results(outcome.directory)
    best = results.pareto.sort_values("error").iloc[0]
    model = results.load_model(int(best["index"]))
    data = get_problem("digits_cnn").load(0)
    assert accuracy(model, data.val) == pytest.approx(1 - best["error"])
    assert accuracy(model, data.test) == pytest.approx(1 - best["test_error"])


def test_stopper_ends_a_phase_when_the_hypervolume_stalls():
    stopper = Stopper(tolerance=0.01, patience=2)
    assert not stopper.stops([0.1, 0.2])
    assert not stopper.stops([0.1, 0.2, 0.25])
    assert stopper.stops([0.1, 0.2, 0.205, 0.209])
    assert not Stopper(tolerance=0.0, patience=1).stops([0.5, 0.5, 0.5])
    # the search's phases after Sobol carry the configured stopper; Sobol has none
    tools = Tools(Plan.of(TrainConfig(tolerance=0.01, patience=2)), None, None, None, None)
    sobol, gp, morph = plan(tools)
    assert sobol.stopper is None
    assert gp.stopper == morph.stopper == stopper


@pytest.mark.slow
def test_the_hypervolume_is_that_of_the_completed_trials(tiny):
    cfg, outcome, _ = tiny
    summary = json.loads((outcome.directory / "summary.json").read_text())
    trials = pd.read_csv(outcome.directory / "trials.csv")
    done = trials[trials["status"] == "completed"]
    values = done[["error", "model_size_bytes", "working_memory_bytes"]].to_numpy(float)
    ref = [1.0, float(cfg.max_model_size), float(cfg.max_working_memory)]
    expected = hypervolume(values, ref)
    assert 0.0 < expected < 1.0
    assert outcome.hypervolume == pytest.approx(expected)
    assert summary["hypervolume_history"][-1] == pytest.approx(expected)


@pytest.mark.slow
def test_a_cancelled_search_stops_between_trials(tmp_path):
    import threading

    from sparsemod.search import Cancelled
    from sparsemod.store import Store

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    cfg = TrainConfig(name="stop", root=str(tmp_path), **TINY)
    search = Search(cfg, get_problem("digits_cnn"), out=io.StringIO(), store=store)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            search.run()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = store.find_search("stop")
        if found is not None and store.count_trials(found.id, "completed") >= 1:
            store.set_search_status(found.id, "cancelling")
            break
        time.sleep(0.05)
    thread.join(timeout=120)
    assert raised and isinstance(raised[0], Cancelled)
    found = store.find_search("stop")
    assert found.status == "cancelled"
    assert 1 <= store.count_trials(found.id, "completed") < 10
    assert store.count_trials(found.id, "running") <= 1


def test_cost_scale_maps_the_reference_to_one_and_log_spreads_small_costs():
    problem = get_problem("digits_cnn")
    objectives = ["error", "model_size_bytes", "working_memory_bytes"]
    costs = Costs(None, {}, objectives, Encoder(problem.space), seed=0)
    ref = [1.0, 1000.0, 100.0]
    scale = costs.scale("linear", ref)
    assert scale("model_size_bytes", 500.0) == pytest.approx(0.5)
    assert scale("working_memory_bytes", 100.0) == pytest.approx(1.0)
    costs._floors = {"model_size_bytes": 10.0, "working_memory_bytes": 1.0}
    scale = costs.scale("log", ref)
    # log(x / floor) / log(ref / floor): the floor is 0, the reference 1, the geometric
    # midpoint 0.5; below the floor counts as 0
    assert scale("model_size_bytes", 10.0) == pytest.approx(0.0)
    assert scale("model_size_bytes", 100.0) == pytest.approx(0.5)
    assert scale("model_size_bytes", 1000.0) == pytest.approx(1.0)
    assert scale("model_size_bytes", 2.0) == 0.0
    assert scale("working_memory_bytes", 10.0) == pytest.approx(0.5)


@pytest.mark.slow
def test_a_log_cost_search_runs_its_gp_rounds(tmp_path):
    cfg = TrainConfig(
        name="log", root=str(tmp_path), **dict(TINY, r1=1, r2=1, r3=0), cost_scale="log"
    )
    outcome = Search(cfg, get_problem("digits_cnn"), out=io.StringIO()).run()
    assert [t.phase for t in outcome.trials] == ["sobol"] * 2 + ["gp"] * 2
    assert all(t.status == "completed" for t in outcome.trials)
