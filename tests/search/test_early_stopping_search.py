"""Early stopping on the front in a real search: the stopped trials are stored as such with
their figures, stay off the front, feed the GP their predicted error, and a resumed search
reads them back. Run under the processes executor, so the rule crosses a process."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from sparsemod.config import TrainConfig
from sparsemod.early_stopping import error_to_beat
from sparsemod.problems import get_problem
from sparsemod.search import Search
from sparsemod.store import Store, default_url

CONFIG = dict(
    problem="digits_mlp",
    r1=3,
    r2=2,
    r3=0,
    morphisms=False,
    epochs1=6,
    epochs2=6,
    batch_size=2,
    objectives=3,
    num_candidates=64,
    device="cpu",
    prune_method="magnitude",
    early_stopping="front",
    min_epochs=2,
    executor="processes",
    workers=2,
    # Only errors under 15 % count: every candidate must beat 0.15 at least, from the first
    # Sobol arm on (those go out before any result, against the reference alone).
    ref_point=(0.15, 256_000.0, 20_480.0),
)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    cfg = TrainConfig(name="stopping", root=str(root), **CONFIG)
    out = io.StringIO()
    outcome = Search(cfg, get_problem("digits_mlp"), out=out).run()
    return cfg, outcome, out.getvalue()


@pytest.mark.slow
def test_stopped_trials_are_stored_off_the_front(searched) -> None:
    cfg, outcome, log = searched
    with Store(default_url(cfg.root)) as store:
        search = store.find_search("stopping")
        trials = store.list_trials(search.id)
    stopped = [t for t in trials if t.status == "stopped"]
    assert len(trials) == 10 and stopped, log
    done = [t for t in trials if t.status == "completed"]
    for t in stopped:
        assert 2 <= t.metrics["stop_epoch"] < 6
        assert 0 < t.metrics["predicted_error"] <= t.metrics["stop_val_error"]
        assert "error" not in t.metrics and not t.has_model
        assert t.index not in outcome.pareto
        # Stopped rightly: at its exact costs, the trials completed before it had already
        # reached an error its prediction did not, as the rule it was given says.
        before = [d for d in done if d.finished_at < t.finished_at]
        ref = dict(zip(search.objectives, search.ref_point))
        costs = {o: t.predicted[o] for o in search.objectives if o != "error"}
        bar = error_to_beat(costs, [d.metrics for d in before], ref)
        assert t.metrics["predicted_error"] > bar
        assert f"trial {t.index} stopped after {int(t.metrics['stop_epoch'])} epochs" in log
    rows = pd.read_csv(outcome.directory / "trials.csv")
    assert (rows["status"] == "stopped").sum() == len(stopped)
    assert set(outcome.pareto) <= {t.index for t in done}


@pytest.mark.slow
def test_the_gp_learns_from_stopped_trials(searched) -> None:
    from sparsemod.search.state import SearchState

    cfg, outcome, _ = searched
    state = SearchState(["error"], [1.0], trials=list(outcome.trials))
    observed = state.observed()
    stopped = [t for t in observed if t.status == "stopped"]
    assert stopped and len(observed) == len(state.completed()) + len(stopped)
    for t in stopped:
        assert t.observed_error() == pytest.approx(t.result.predicted_error)
