"""What the dashboard reads and serves, through TestClient against a real SQLite file: the
page and its files, the read-only mode, the trials' sort and filters, the hypervolume
history, a trial's training history and the vocabulary."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.routes.trials import FORMATS
from sparsemod.core.vocabulary import METRIC_INFO, TRIAL_STATUSES
from sparsemod.results.pareto import hypervolume
from sparsemod.store import Store
from tests.server.dashboard_data import OBJECTIVES, REF_POINT, pareto_indices, seed_search

API = "/api/v1"


@pytest.fixture
def many(store: Store) -> int:
    return seed_search(store, 60, seed=3)


def test_the_page_and_its_files_are_served_without_data(client: TestClient, many) -> None:
    client.headers.pop("Authorization")
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "many" not in page.text  # the search's name: no data without the token
    scripts = re.findall(r'src="(/static/[^"]+)"', page.text)
    assert len(scripts) == 2 and any(
        re.search(r"plotly-\d+\.\d+\.\d+\.min\.js", s) for s in scripts
    )
    for path in [*scripts, "/static/style.css"]:
        r = client.get(path, headers={"Accept-Encoding": "identity"})
        assert r.status_code == 200, path
        assert len(r.content) > 1000, path
    bundle = next(s for s in scripts if "plotly" in s)
    plain = client.get(bundle, headers={"Accept-Encoding": "identity"})
    import plotly

    assert plain.content.startswith(b"/**") and b"plotly.js v" in plain.content[:200]
    assert plotly.__version__ in bundle
    assert "immutable" in plain.headers["cache-control"]
    # Compressed for browsers that say they take it (the bundle is ~4.8 MB plain).
    zipped = client.get(bundle, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == plain.content  # httpx decodes it


@pytest.mark.parametrize("name", ["../app.py", "index.html", "app.py", "plotly-0.0.0.min.js"])
def test_only_the_dashboard_files_are_served(client: TestClient, name: str) -> None:
    r = client.get(f"/static/{name}")
    assert r.status_code == 404, (name, r.status_code)


def test_read_only_refuses_submit_and_cancel_and_keeps_the_store(
    tmp_path, settings_for, many, store: Store
) -> None:
    app = create_app(settings_for(tmp_path, api_token=None, dev=True, read_only=True))
    store.set_search_status(many, "running")
    with TestClient(app) as c:
        assert c.get(f"{API}/health").json()["read_only"] is True
        assert c.get(f"{API}/searches").json()["count"] == 1  # no token on a dev server
        r = c.post(f"{API}/searches", json={"name": "x", "problem": "digits_cnn", "config": {}})
        assert r.status_code == 403 and "read-only" in r.json()["detail"]
        r = c.post(f"{API}/searches/{many}/cancel")
        assert r.status_code == 403 and "read-only" in r.json()["detail"]
    assert store.count_searches() == 1 and store.get_search(many).status == "running"


def test_a_writable_server_says_so(client: TestClient) -> None:
    assert client.get(f"{API}/health").json()["read_only"] is False


def test_trials_sorted_by_a_metric_and_filtered(client: TestClient, many, store: Store) -> None:
    every = store.list_trials(many)
    got = client.get(
        f"{API}/searches/{many}/trials",
        params={"sort": "model_size_bytes", "order": "desc", "limit": 10, "offset": 5},
    ).json()
    sized = sorted(
        (t for t in every if "model_size_bytes" in t.metrics),
        key=lambda t: (-t.metrics["model_size_bytes"], t.index),
    )
    assert [t["index"] for t in got["data"]] == [t.index for t in sized[5:15]]
    assert got["count"] == len(every) == 60
    # A trial without the metric (the failed ones) comes last either way.
    tail = client.get(
        f"{API}/searches/{many}/trials", params={"sort": "error", "order": "asc", "offset": 50}
    ).json()["data"]
    failed = [t.index for t in every if t.status == "failed"]
    assert [t["index"] for t in tail[-len(failed) :]] == failed
    morphs = client.get(
        f"{API}/searches/{many}/trials", params={"phase": "morph", "status": "completed"}
    ).json()
    want = [t.index for t in every if t.phase == "morph" and t.status == "completed"]
    assert [t["index"] for t in morphs["data"]] == want and morphs["count"] == len(want) > 0
    assert all(t["parent_index"] is not None for t in morphs["data"])


@pytest.mark.parametrize(
    ("params", "field"),
    [({"sort": "nonsense"}, "sort"), ({"order": "up"}, "order"), ({"phase": "GP;"}, "phase")],
)
def test_bad_sort_and_filters_are_422(client: TestClient, many, params, field) -> None:
    r = client.get(f"{API}/searches/{many}/trials", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


def test_hypervolume_history_by_hand(client: TestClient, store: Store) -> None:
    sid = store.create_search(
        "hv", "digits_cnn", {"r1": 3}, ["error", "model_size_bytes"], ref_point=[1.0, 100.0]
    )
    # error, size; normalised by (1, 100): (0.5, 0.5) -> 0.25; (0.2, 0.8) adds 0.3 * 0.2;
    # (0.6, 0.9) is dominated and adds nothing; (0.5, 0.5) again is a duplicate.
    for i, (phase, e, size, dup) in enumerate(
        [
            ("sobol", 0.5, 50, None),
            ("sobol", 0.6, 90, None),
            ("gp", 0.2, 80, None),
            ("gp", 0.5, 50, 0),
        ]
    ):
        tid = store.add_trial(sid, i, phase, {"w": i}, duplicate_of=dup)
        store.complete_trial(tid, "completed", {"error": e, "model_size_bytes": size})
    tid = store.add_trial(sid, 4, "gp", {"w": 4})
    store.complete_trial(tid, "failed", {}, failure_reason="x")
    got = client.get(f"{API}/searches/{sid}/hypervolume").json()
    assert [p["index"] for p in got["data"]] == [0, 1, 2]
    assert [p["phase"] for p in got["data"]] == ["sobol", "sobol", "gp"]
    assert [p["hypervolume"] for p in got["data"]] == pytest.approx([0.25, 0.25, 0.31])
    assert got["ref_point"] == [1.0, 100.0] and got["count"] == 3
    detail = client.get(f"{API}/searches/{sid}").json()
    assert detail["hypervolume"] == pytest.approx(0.31)
    assert detail["pareto_size"] == 2  # the duplicate of trial 0 is not a second member


def test_hypervolume_history_matches_the_search_on_many(client: TestClient, many) -> None:
    got = client.get(f"{API}/searches/{many}/hypervolume").json()["data"]
    hv = [p["hypervolume"] for p in got]
    assert hv == sorted(hv) and len(hv) == 60 - 5 - 1  # 5 failed, 1 duplicate
    assert hv[-1] == pytest.approx(client.get(f"{API}/searches/{many}").json()["hypervolume"])


def test_no_hypervolume_before_the_reference_point(client: TestClient, store: Store) -> None:
    sid = store.create_search("early", "digits_cnn", {"r1": 3}, ["error", "model_size_bytes"])
    got = client.get(f"{API}/searches/{sid}/hypervolume").json()
    assert got == {"data": [], "count": 0, "ref_point": None}


def test_pareto_of_the_api_is_the_count_by_hand(client: TestClient, many, store: Store) -> None:
    members = client.get(f"{API}/searches/{many}/pareto").json()
    want = pareto_indices(store, many)
    assert {t["index"] for t in members["data"]} == want
    values = np.array([[t["metrics"][o] for o in OBJECTIVES] for t in members["data"]], dtype=float)
    assert members["hypervolume"] == pytest.approx(hypervolume(values, REF_POINT))


def test_a_trials_history(client: TestClient, many, store: Store) -> None:
    trial = store.list_trials(many, "completed")[0]
    got = client.get(f"{API}/trials/{trial.id}/history").json()
    assert got["count"] == 5
    assert [r["stage"] for r in got["data"]] == ["train"] * 3 + ["prune", "quantize:static_int8"]
    assert [r["epoch"] for r in got["data"][:3]] == [1, 2, 3]
    assert got["data"][0]["loss"] == pytest.approx(2.0) and got["data"][3]["loss"] is None
    assert got["data"][3]["method"] == "magnitude"  # a stage's own keys come through
    assert got["data"][4]["sparsity"] == pytest.approx(0.5)
    failed = next(t for t in store.list_trials(many, "failed"))
    assert client.get(f"{API}/trials/{failed.id}/history").json() == {"data": [], "count": 0}


def test_the_vocabulary_is_the_core_one(client: TestClient) -> None:
    got = client.get(f"{API}/vocabulary").json()
    assert [m["name"] for m in got["metrics"]] == list(METRIC_INFO)
    assert {m["name"]: m["unit"] for m in got["metrics"]}["model_size_bytes"] == "B"
    assert [m["name"] for m in got["metrics"] if m["objective"]][:2] == [
        "error",
        "model_size_bytes",
    ]
    assert got["trial_statuses"] == list(TRIAL_STATUSES)
    assert got["finished_statuses"] == ["done", "failed", "cancelled"]
    assert got["deploy_formats"] == list(FORMATS)


def test_the_bundle_is_valid_gzip(client: TestClient) -> None:
    page = client.get("/").text
    bundle = re.search(r'src="(/static/plotly[^"]+)"', page).group(1)
    with client.stream("GET", bundle, headers={"Accept-Encoding": "gzip"}) as r:
        raw = b"".join(r.iter_raw())
    assert len(raw) < 2_000_000 and gzip.decompress(raw).startswith(b"/**")


def test_the_hypervolume_history_grows_with_a_running_search(
    client: TestClient, store: Store
) -> None:
    from sparsemod.results.pareto import hypervolume_trace

    sid = store.create_search(
        "growing", "digits_cnn", {"r1": 9}, ["error", "model_size_bytes"], ref_point=[1.0, 100.0]
    )
    rng = np.random.default_rng(5)
    rows = rng.uniform(0, 1, size=(9, 2)) * [1.0, 100.0]
    url = f"{API}/searches/{sid}/hypervolume"
    for start, stop in ((0, 3), (3, 4), (4, 9)):
        for i in range(start, stop):
            tid = store.add_trial(sid, i, "gp", {"w": i})
            store.complete_trial(
                tid, "completed", {"error": rows[i, 0], "model_size_bytes": rows[i, 1]}
            )
        got = client.get(url).json()["data"]
        assert [p["index"] for p in got] == list(range(stop))
        want = hypervolume_trace(rows[:stop], [1.0, 100.0])
        assert [p["hypervolume"] for p in got] == pytest.approx(want, rel=1e-12)


def test_json_pages_are_compressed_and_models_are_not(client: TestClient, many, store) -> None:
    url = f"{API}/searches/{many}/trials?limit=500"
    with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as r:
        raw = b"".join(r.iter_raw())
        assert r.headers["content-encoding"] == "gzip"
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert gzip.decompress(raw) == plain.content and len(raw) < len(plain.content) / 3
    trial = next(t for t in store.list_trials(many) if t.has_model)
    with client.stream(
        "GET", f"{API}/trials/{trial.id}/model", headers={"Accept-Encoding": "gzip"}
    ) as r:
        assert "content-encoding" not in r.headers
        assert b"".join(r.iter_raw()) == store.get_model(trial.id).data


def test_a_stopped_trial_counts_as_done_and_stays_off_the_front(
    client: TestClient, store: Store
) -> None:
    sid = store.create_search(
        "stops", "digits_cnn", {"r1": 2}, ["error", "model_size_bytes"], ref_point=[1.0, 100.0]
    )
    done = store.add_trial(sid, 0, "sobol", {"w": 0}, predicted={"model_size_bytes": 60.0})
    store.complete_trial(done, "completed", {"error": 0.2, "model_size_bytes": 60.0})
    stop = store.add_trial(sid, 1, "gp", {"w": 1}, predicted={"model_size_bytes": 70.0})
    figures = {"stop_epoch": 3, "stop_val_error": 0.5, "predicted_error": 0.42}
    store.complete_trial(stop, "stopped", figures)
    got = client.get(f"{API}/searches/{sid}").json()
    assert (got["trials_done"], got["trials_completed"], got["trials_stopped"]) == (2, 1, 1)
    assert got["pareto_size"] == 1 and got["hypervolume"] == pytest.approx(0.8 * 0.4)
    page = client.get(f"{API}/searches/{sid}/trials", params={"status": "stopped"}).json()
    assert [t["index"] for t in page["data"]] == [1]
    assert page["data"][0]["metrics"] == figures and page["data"][0]["is_pareto"] is False
    assert [p["index"] for p in client.get(f"{API}/searches/{sid}/hypervolume").json()["data"]] == [
        0
    ]
