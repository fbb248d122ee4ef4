"""Every endpoint and every error path, through TestClient against a real SQLite file."""

from __future__ import annotations

import hashlib
import io
import math
import re

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.settings import Settings
from sparsemod.errors import ConfigError
from sparsemod.problems import available, get_problem
from sparsemod.results.pareto import hypervolume
from sparsemod.store import Store

API = "/api/v1"
TOKEN = "test-token-0123456789"  # conftest's
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TINY = {
    "r1": 1,
    "r2": 0,
    "r3": 0,
    "batch_size": 1,
    "epochs1": 1,
    "device": "cpu",
    "prune_method": "magnitude_layerwise",
    "num_candidates": 8,
}
PROTECTED = [
    ("GET", "/searches"),
    ("POST", "/searches"),
    ("GET", "/searches/1"),
    ("POST", "/searches/1/cancel"),
    ("GET", "/searches/1/trials"),
    ("GET", "/searches/1/pareto"),
    ("GET", "/searches/1/hypervolume"),
    ("GET", "/searches/1/trials.csv"),
    ("GET", "/searches/1/pareto.csv"),
    ("GET", "/trials/1"),
    ("GET", "/trials/1/model"),
    ("GET", "/trials/1/history"),
    ("GET", "/problems"),
    ("GET", "/vocabulary"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
]
BY_ID = [
    ("GET", "/searches/{}"),
    ("POST", "/searches/{}/cancel"),
    ("GET", "/searches/{}/trials"),
    ("GET", "/searches/{}/pareto"),
    ("GET", "/searches/{}/hypervolume"),
    ("GET", "/searches/{}/trials.csv"),
    ("GET", "/searches/{}/pareto.csv"),
    ("GET", "/trials/{}"),
    ("GET", "/trials/{}/model"),
    ("GET", "/trials/{}/history"),
]


def submit(client: TestClient, config: dict | None = None, **fields) -> dict:
    body = {"name": "s", "problem": "digits_cnn", "config": TINY if config is None else config}
    r = client.post(f"{API}/searches", json=body | fields)
    assert r.status_code == 202, r.text
    return r.json()


def refused(r, status: int, field: str | None, *words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["field"] == field, body
    for word in (field.split(".")[-1] if field else None, *words):
        if word:
            assert word in body["detail"], body


# ------------------------------------------------------------------ health, auth, docs


def test_health_needs_no_token(client: TestClient) -> None:
    for path in ("/health", f"{API}/health"):
        r = client.get(path, headers={"Authorization": ""})
        assert r.status_code == 200
        assert r.json()["status"] == "ok"


def test_openapi_is_served(client: TestClient) -> None:
    spec = client.get(f"{API}/openapi.json").json()
    assert set(spec["paths"]) >= {f"{API}{path}" for _, path in PROTECTED[:1]} | {
        f"{API}/searches/{{search_id}}/pareto.csv",
        f"{API}/trials/{{trial_id}}/model",
        f"{API}/health",
    }
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert f"{API}/openapi.json" not in spec["paths"] and f"{API}/docs" not in spec["paths"]
    page = client.get(f"{API}/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    # The page carries the schema: its browser needs no second, tokenless request.
    assert '"spec": {' in page.text and f"{API}/searches/{{search_id}}/pareto.csv" in page.text


def test_a_405_allows_every_method_of_its_path(client: TestClient) -> None:
    spec = client.get(f"{API}/openapi.json").json()
    for template, operations in spec["paths"].items():
        path = re.sub(r"\{\w+\}", "1", template)
        documented = sorted(method.upper() for method in operations)
        for method in ("OPTIONS", "DELETE"):
            r = client.request(method, path)
            assert r.status_code == 405, (method, path, r.text)
            assert r.headers["Allow"].split(", ") == documented, (method, path)


def test_the_schema_names_the_registered_problems(client: TestClient) -> None:
    spec = client.get(f"{API}/openapi.json").json()
    problem = spec["components"]["schemas"]["SearchCreate"]["properties"]["problem"]
    assert problem["enum"] == available()
    for name in problem["enum"]:  # each one is accepted
        submit(client, problem=name)


def test_every_link_leads_to_an_operation_and_its_parameter(client: TestClient) -> None:
    spec = client.get(f"{API}/openapi.json").json()
    operations = {op["operationId"]: op for path in spec["paths"].values() for op in path.values()}
    count = 0
    for op in operations.values():
        for answer in op["responses"].values():
            for name, link in answer.get("links", {}).items():
                target = operations[link["operationId"]]
                names = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
                assert set(link["parameters"]) == names, (op["operationId"], name)
                assert all(v.startswith("$response.body#/") for v in link["parameters"].values())
                count += 1
    trial_sources = {
        op["operationId"]
        for op in operations.values()
        for answer in op["responses"].values()
        for link in answer.get("links", {}).values()
        if link["operationId"] == "get_trial"
    }
    assert trial_sources == {"pareto", "list_trials", "get_search"}
    assert count >= 30, count


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("sent", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer"])
def test_every_endpoint_but_health_needs_the_token(
    client: TestClient, method: str, path: str, sent: str | None
) -> None:
    headers = {"Authorization": sent} if sent else {}
    client.headers.pop("Authorization")
    r = client.request(method, API + path, headers=headers, json={})
    assert r.status_code == 401, r.text
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert r.json()["field"] == "Authorization"


def test_the_app_refuses_to_start_without_a_token(tmp_path, settings_for) -> None:
    with pytest.raises(Exception, match="SPARSEMOD_API_TOKEN is not set"):
        create_app(settings_for(tmp_path, api_token=None))


def test_dev_mode_without_a_token_lets_requests_through(tmp_path, settings_for) -> None:
    app = create_app(settings_for(tmp_path, api_token=None, dev=True))
    with TestClient(app) as c:
        assert c.get(f"{API}/searches").status_code == 200


def test_a_token_is_required_in_dev_mode_once_set(tmp_path, settings_for) -> None:
    with TestClient(create_app(settings_for(tmp_path, dev=True))) as c:
        assert c.get(f"{API}/searches").status_code == 401


def test_module_level_app_exits_cleanly_without_a_token(monkeypatch) -> None:
    import server.app as module
    from server.settings import load_settings

    monkeypatch.delenv("SPARSEMOD_API_TOKEN", raising=False)
    monkeypatch.delenv("SPARSEMOD_DEV", raising=False)
    load_settings.cache_clear()
    monkeypatch.delitem(module.__dict__, "app", raising=False)
    try:
        with pytest.raises(SystemExit, match="SPARSEMOD_API_TOKEN is not set"):
            module.app  # noqa: B018 (what uvicorn reads)
    finally:
        load_settings.cache_clear()


def test_settings_from_env_name_the_bad_variable() -> None:
    s = Settings.from_env({"SPARSEMOD_API_TOKEN": " t ", "SPARSEMOD_MAX_TRIALS": "7"})
    assert (s.api_token, s.max_trials, s.dev) == ("t", 7, False)
    with pytest.raises(ValueError, match="SPARSEMOD_MAX_EPOCHS"):
        Settings.from_env({"SPARSEMOD_MAX_EPOCHS": "many"})
    with pytest.raises(ValueError, match="SPARSEMOD_DEV"):
        Settings.from_env({"SPARSEMOD_DEV": "perhaps"})


# ------------------------------------------------------------------ submit


def test_submit_queues_a_search(client: TestClient, store: Store) -> None:
    r = client.post(f"{API}/searches", json={"name": "a", "problem": "digits_cnn", "config": TINY})
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "queued"
    assert r.headers["Location"] == body["url"] == f"{API}/searches/{body['id']}"
    rec = store.get_search(body["id"])
    assert (rec.status, rec.name, rec.problem, rec.ref_point) == ("queued", "a", "digits_cnn", None)
    assert rec.config["r1"] == 1 and rec.config["epochs1"] == 1
    got = client.get(body["url"]).json()
    assert got["status"] == "queued" and got["trials_total"] == 1 and got["trials_done"] == 0
    assert got["phase"] is None and got["best"] is None and got["hypervolume"] is None
    assert "root" not in got["config"]


def test_submit_takes_the_sectioned_form_and_ini_text(client: TestClient, store: Store) -> None:
    config = {
        "TRAIN": {"r1": "2", "r2": "0", "r3": "0", "batch_size": "1", "ref_point": "1, 50KB, 8KB"}
    }
    sid = submit(client, config)["id"]
    rec = store.get_search(sid)
    assert rec.config["r1"] == 2
    assert rec.ref_point == [1.0, 50 * 1024, 8 * 1024]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"problem": "digits_cnn"}, "name", ["Field required"]),
        ({"name": "../etc", "problem": "digits_cnn"}, "name", ["pattern"]),
        ({"name": "a", "problem": "nope"}, "problem", ["not a registered problem"]),
        ({"name": "a", "problem": "os:system"}, "problem", []),
        ({"name": "a", "problem": "digits_cnn", "extra": 1}, "extra", []),
        ({"name": "a", "problem": "digits_cnn", "config": {"r1": "zz"}}, "config.r1", ["zz"]),
        ({"name": "a", "problem": "digits_cnn", "config": {"r1": 0}}, "config.r1", ["range"]),
        (
            {"name": "a", "problem": "digits_cnn", "config": {"epoch1": 1}},
            "config.epoch1",
            ["epochs1"],
        ),
        ({"name": "a", "problem": "digits_cnn", "config": {"device": "tpu"}}, "config.device", []),
        ({"name": "a", "problem": "digits_cnn", "config": {"root": "/etc"}}, "config.root", []),
        (
            {"name": "a", "problem": "digits_cnn", "config": {"ray_address": "evil:1"}},
            "config.ray_address",
            [],
        ),
        (
            {"name": "a", "problem": "digits_cnn", "config": {"latency_hook": "os:system"}},
            "config.latency_hook",
            ["code"],
        ),
        ({"name": "a", "problem": "digits_cnn", "config": {"name": "b"}}, "config.name", []),
        ({"name": "a", "problem": "digits_cnn", "config": {"TEST": {"arm": 1}}}, "config.TEST", []),
        (
            {"name": "a", "problem": "digits_cnn", "config": {"r1": {"x": {"y": 1}}}},
            "config.r1",
            [],
        ),
        ({"name": "a", "problem": "digits_cnn", "config": {"r1": [{"a": 1}]}}, "config.r1", []),
        (
            {"name": "a", "problem": "digits_cnn", "config": TINY | {"prune_method": "x"}},
            "config.prune_method",
            [],
        ),
        ({"name": 5, "problem": "digits_cnn"}, "name", ["string"]),
    ],
)
def test_submit_refuses_bad_bodies_naming_the_field(
    client: TestClient, body: dict, field: str, words: list[str]
) -> None:
    refused(client.post(f"{API}/searches", json=body), 422, field, *words)


@pytest.mark.parametrize(
    ("error", "field"),
    [
        (ConfigError("too many", section="TRAIN", key="r1"), "config.r1"),
        (ConfigError("unknown key", section="TRAIN", key="epoch1"), "config.epoch1"),
        (ConfigError("not a pruner", key="prune_method"), "config.prune_method"),
        (ConfigError("not registered", key="problem"), "problem"),
        (ConfigError("[TRAIN] r1: the text is not read", section=None, key=None), None),
        (ConfigError("another section", section="TEST", key="arm"), None),
        (ConfigError("no such field", key="colour"), None),
    ],
)
def test_a_config_error_names_the_field_of_its_key(
    tmp_path, settings_for, error: ConfigError, field: str | None
) -> None:
    app = create_app(settings_for(tmp_path))

    async def refuse() -> None:
        raise error

    app.add_api_route("/refuse", refuse)
    with TestClient(app) as c:
        r = c.get("/refuse")
    assert r.status_code == 422 and r.json() == {"detail": str(error), "field": field}


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (TINY | {"r1": 11}, "config.batch_size"),
        (TINY | {"r1": 2, "r2": 2, "r3": 2, "batch_size": 2}, "config.batch_size"),
        (TINY | {"epochs1": 6}, "config.epochs1"),
        (TINY | {"r3": 1, "epochs3": 1000}, "config.epochs3"),
        (TINY | {"finetune_epochs": 99}, "config.finetune_epochs"),
        (TINY | {"num_candidates": 10**6}, "config.num_candidates"),
        (TINY | {"seed": 2**40}, "config.seed"),
    ],
)
def test_submit_refuses_budgets_over_the_limits(
    client: TestClient, store: Store, config: dict, field: str
) -> None:
    r = client.post(
        f"{API}/searches", json={"name": "a", "problem": "digits_cnn", "config": config}
    )
    refused(r, 422, field)
    assert "limit" in r.json()["detail"] or "range" in r.json()["detail"]
    assert store.count_searches() == 0


def test_the_budget_counts_r3_only_with_morphisms(client: TestClient) -> None:
    submit(client, TINY | {"r1": 5, "r3": 100, "morphisms": False, "batch_size": 2})


def test_epochs_of_a_phase_without_rounds_do_not_count(client: TestClient) -> None:
    submit(client, TINY | {"epochs2": 100, "epochs3": 100})
    refused(
        client.post(
            f"{API}/searches",
            json={"name": "a", "problem": "digits_cnn", "config": TINY | {"r2": 1, "epochs2": 100}},
        ),
        422,
        "config.epochs2",
    )


def test_a_body_over_the_size_limit_is_refused(client: TestClient, store: Store) -> None:
    body = {"name": "a", "problem": "digits_cnn", "config": TINY | {"x" * 5000: 1}}
    r = client.post(f"{API}/searches", json=body)
    assert r.status_code == 413 and "4096 bytes" in r.json()["detail"]
    # A body sent in chunks, without a Content-Length, is held to the limit too.
    chunks = iter([b'{"name": "a", ', b" " * 5000, b'"problem": "digits_cnn"}'])
    r = client.post(f"{API}/searches", content=chunks, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert store.count_searches() == 0


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", None),
        (b"[]", "body"),
        (
            b'{"name": "a", "problem": "digits_cnn", "config": {"keep_ratio": NaN}}',
            "config.keep_ratio",
        ),
        (b'{"name": "a", "problem": "digits_cnn", "config": {"r1": Infinity}}', "config.r1"),
        (b'{"name": "a", "problem": "digits_cnn", "config": {"flops": 1e400}}', "config.flops"),
    ],
)
def test_malformed_bodies_are_422(client: TestClient, raw: bytes, field: str | None) -> None:
    r = client.post(f"{API}/searches", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"]
    if field:
        assert r.json()["field"] == field


# ------------------------------------------------------------------ list, get


def test_list_paginates_and_filters(client: TestClient) -> None:
    ids = [submit(client, name=f"s{i}")["id"] for i in range(3)]
    client.post(f"{API}/searches/{ids[0]}/cancel")
    page = client.get(f"{API}/searches", params={"limit": 2}).json()
    assert page["count"] == 3 and [s["id"] for s in page["data"]] == ids[::-1][:2]
    page = client.get(f"{API}/searches", params={"limit": 2, "offset": 2}).json()
    assert [s["id"] for s in page["data"]] == [ids[0]]
    queued = client.get(f"{API}/searches", params={"status": "queued"}).json()
    assert queued["count"] == 2 and {s["id"] for s in queued["data"]} == set(ids[1:])
    cancelled = client.get(f"{API}/searches", params={"status": "cancelled"}).json()
    assert [s["id"] for s in cancelled["data"]] == [ids[0]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"offset": -1}, "offset"),
        ({"limit": "x"}, "limit"),
    ],
)
def test_list_refuses_bad_parameters(client: TestClient, params: dict, field: str) -> None:
    refused(client.get(f"{API}/searches", params=params), 422, field)


@pytest.mark.parametrize(("method", "path"), BY_ID)
def test_unknown_ids_are_404(client: TestClient, seeded, method: str, path: str) -> None:
    r = client.request(method, API + path.format(9999))
    assert r.status_code == 404, r.text
    assert "9999" in r.json()["detail"]


@pytest.mark.parametrize(("method", "path"), BY_ID)
@pytest.mark.parametrize("bad", ["0", "abc", "-3", str(2**63), "1.5"])
def test_bad_ids_are_422(client: TestClient, method: str, path: str, bad: str) -> None:
    r = client.request(method, API + path.format(bad))
    assert r.status_code == 422, r.text
    assert r.json()["field"] in ("search_id", "trial_id")


def test_get_a_finished_search(client: TestClient, seeded, store: Store) -> None:
    got = client.get(f"{API}/searches/{seeded.search_id}").json()
    assert got["status"] == "done" and got["error"] is None
    assert (got["trials_total"], got["trials_done"]) == (3, 3)
    assert (got["trials_completed"], got["trials_failed"], got["trials_running"]) == (2, 1, 0)
    assert got["phase"] == "sobol" and got["pareto_size"] == 2
    values = np.array([[0.2, 5000, 900], [0.4, 1000, 300]])
    assert got["hypervolume"] == pytest.approx(hypervolume(values, [1.0, 1e5, 1e4]))
    assert got["best"]["id"] == seeded.trial_ids[0] and got["best"]["metrics"]["error"] == 0.2
    assert got["best"]["is_pareto"] is True


def test_progress_follows_new_trials(client: TestClient, store: Store) -> None:
    sid = store.create_search("live", "digits_cnn", {"r1": 2, "batch_size": 1}, ["error"], [1.0])
    url = f"{API}/searches/{sid}"
    assert client.get(url).json()["trials_done"] == 0
    tid = store.add_trial(sid, 0, "sobol", {}, seed=0)
    got = client.get(url).json()
    assert (got["trials_running"], got["phase"]) == (1, "sobol")
    store.complete_trial(tid, "completed", {"error": 0.25})
    store.heartbeat(sid)
    got = client.get(url).json()
    assert got["trials_done"] == 1 and got["hypervolume"] == pytest.approx(0.75)


# ------------------------------------------------------------------ cancel


def test_cancel_a_queued_search_at_once(client: TestClient) -> None:
    sid = submit(client)["id"]
    r = client.post(f"{API}/searches/{sid}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    refused(client.post(f"{API}/searches/{sid}/cancel"), 409, "status", "cancelled")


def test_cancel_a_running_search_asks_it_to_stop(client: TestClient, store: Store) -> None:
    sid = submit(client)["id"]
    store.claim_search("w")
    r = client.post(f"{API}/searches/{sid}/cancel")
    assert r.json()["status"] == "cancelling"
    # Asking again while its worker is alive changes nothing.
    assert client.post(f"{API}/searches/{sid}/cancel").json()["status"] == "cancelling"


def test_cancel_a_cancelling_search_whose_worker_died(tmp_path, settings_for) -> None:
    settings = settings_for(tmp_path, stale_after_s=0.01)
    with TestClient(create_app(settings), headers=AUTH) as c, Store(settings.database_url) as s:
        sid = submit(c)["id"]
        s.claim_search("w")
        s.set_search_status(sid, "cancelling")
        import time

        time.sleep(0.05)
        assert c.post(f"{API}/searches/{sid}/cancel").json()["status"] == "cancelled"


@pytest.mark.parametrize("status", ["done", "failed", "cancelled"])
def test_cancel_a_finished_search_is_409(client: TestClient, store: Store, status: str) -> None:
    sid = submit(client)["id"]
    store.set_search_status(sid, status)
    refused(client.post(f"{API}/searches/{sid}/cancel"), 409, "status", status)
    assert store.get_search(sid).status == status


# ------------------------------------------------------------------ trials, Pareto, CSV


def test_trials_paginate_and_mark_the_front(client: TestClient, seeded) -> None:
    url = f"{API}/searches/{seeded.search_id}/trials"
    page = client.get(url).json()
    assert page["count"] == 3
    assert [t["id"] for t in page["data"]] == seeded.trial_ids
    assert [t["is_pareto"] for t in page["data"]] == [True, True, False]
    assert page["data"][2]["failure_reason"] == "BuildError: too small"
    assert page["data"][0]["model_url"] == f"{API}/trials/{seeded.trial_ids[0]}/model"
    assert page["data"][2]["model_url"] is None
    page = client.get(url, params={"limit": 1, "offset": 1}).json()
    assert [t["index"] for t in page["data"]] == [1] and page["count"] == 3
    page = client.get(url, params={"status": "failed"}).json()
    assert page["count"] == 1 and page["data"][0]["status"] == "failed"
    refused(client.get(url, params={"status": "done"}), 422, "status")


def test_pareto(client: TestClient, seeded) -> None:
    got = client.get(f"{API}/searches/{seeded.search_id}/pareto").json()
    assert got["count"] == 2 and [t["index"] for t in got["data"]] == [0, 1]
    assert got["hypervolume"] > 0


def test_csv_exports_come_from_the_store(client: TestClient, seeded) -> None:
    r = client.get(f"{API}/searches/{seeded.search_id}/trials.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert f'filename="search_{seeded.search_id}_trials.csv"' in r.headers["content-disposition"]
    trials = pd.read_csv(io.StringIO(r.text))
    assert list(trials["index"]) == [0, 1, 2]
    assert list(trials["is_pareto"]) == [True, True, False]
    assert list(trials["num_blocks"]) == [1, 2, 3]
    assert set(get_problem("digits_cnn").space.names) <= set(trials.columns)
    pareto = pd.read_csv(
        io.StringIO(client.get(f"{API}/searches/{seeded.search_id}/pareto.csv").text)
    )
    assert list(pareto["index"]) == [0, 1]
    assert list(pareto["test_error"]) == pytest.approx([0.25, 0.25])


def test_csv_of_a_search_without_trials(client: TestClient) -> None:
    sid = submit(client)["id"]
    r = client.get(f"{API}/searches/{sid}/pareto.csv")
    assert r.status_code == 200 and r.text.startswith("index,phase")


# ------------------------------------------------------------------ trials by id, models


def test_get_a_trial(client: TestClient, seeded) -> None:
    got = client.get(f"{API}/trials/{seeded.trial_ids[0]}").json()
    assert got["index"] == 0 and got["is_pareto"] is True
    assert got["model"]["format"] == "state_dict"
    assert got["model"]["sha256"] == hashlib.sha256(seeded.model).hexdigest()
    assert got["model"]["size"] == len(seeded.model)
    assert client.get(f"{API}/trials/{seeded.trial_ids[2]}").json()["model"] is None


def test_download_a_pareto_model(client: TestClient, seeded) -> None:
    tid = seeded.trial_ids[1]
    r = client.get(f"{API}/trials/{tid}/model")
    assert r.status_code == 200 and r.content == seeded.model
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == f'attachment; filename="trial_{tid}.pt"'
    assert r.headers["x-sparsemod-format"] == "state_dict"
    assert r.headers["x-sparsemod-sha256"] == hashlib.sha256(seeded.model).hexdigest()


def test_a_model_in_a_runtime_format_is_refused_with_the_reason(client, seeded) -> None:
    tid = seeded.trial_ids[1]
    r = client.get(f"{API}/trials/{tid}/model", params={"format": "tflm"})
    assert r.status_code == 422 and r.json()["field"] == "format"
    assert "'executorch', 'onnx' or 'tflite'" in r.json()["detail"]
    # the seeded bytes are no network: one line that says so, not a server error
    r = client.get(f"{API}/trials/{tid}/model", params={"format": "onnx"})
    assert r.status_code == 422 and r.json()["field"] == "format"
    assert r.json()["detail"].startswith(f"trial {tid}'s stored model cannot be rebuilt")
    off = client.get(f"{API}/trials/{seeded.trial_ids[2]}/model", params={"format": "onnx"})
    assert off.status_code == 404


def test_a_trial_off_the_front_has_no_model(client: TestClient, seeded) -> None:
    r = client.get(f"{API}/trials/{seeded.trial_ids[2]}/model")
    assert r.status_code == 404 and "Pareto" in r.json()["detail"]


@pytest.mark.parametrize(
    ("segment", "status", "field"),
    [
        ("%2E%2E", 422, "trial_id"),  # ".." as one segment reaches the route, as text
        ("~root", 422, "trial_id"),
        ("1%00", 422, "trial_id"),
        ("1.pt", 422, "trial_id"),
        ("..%2F..%2Fetc%2Fpasswd", 404, None),  # decoded, it is several segments: no route
    ],
)
def test_a_trial_id_is_an_integer_never_a_path(
    client: TestClient, seeded, segment: str, status: int, field: str | None
) -> None:
    # A dot segment sent as such ("../x") is resolved by the client before it leaves, so
    # only encoded ones test the server. Each must be refused by the router or by the id's
    # integer type, before any lookup: a route taking text, or a path, fails here.
    r = client.get(f"{API}/trials/{segment}/model")
    assert (r.status_code, r.json()["field"]) == (status, field), r.text
    if status == 404:
        assert r.json()["detail"] == "Not Found"  # the router's: no lookup answered
    else:
        assert "valid integer" in r.json()["detail"]
    assert "x-sparsemod-format" not in r.headers


# ------------------------------------------------------------------ problems


def test_problems_list_names_and_parameters(client: TestClient) -> None:
    got = client.get(f"{API}/problems").json()
    assert [p["name"] for p in got["data"]] == available() and got["count"] == len(available())
    cnn = next(p for p in got["data"] if p["name"] == "digits_cnn")
    space = get_problem("digits_cnn").space
    assert [p["name"] for p in cnn["parameters"]] == space.names
    assert cnn["reference"] == dict(space.reference)
    kinds = {p["name"]: p for p in cnn["parameters"]}
    assert kinds["b1_kernel"]["type"] == "choice" and kinds["b1_kernel"]["values"] == [3, 5]
    assert kinds["lr"]["type"] == "float" and kinds["lr"]["log"] is True
    assert all(not math.isnan(p["low"]) for p in cnn["parameters"] if p["low"] is not None)
    # conditional parameters say when they matter
    assert kinds["b3_filters"]["active_if"] == {"num_blocks": [3]}
    assert kinds["fc2_units"]["active_if"] == {"num_fc": [2]}
    assert kinds["num_blocks"]["active_if"] is None


# ------------------------------------------------------------------ a search the worker ran


@pytest.mark.slow
def test_the_worker_ran_the_search(trained) -> None:
    app = create_app(trained.settings)
    with TestClient(app, headers=AUTH) as c:
        got = c.get(f"{API}/searches/{trained.done_id}").json()
        assert got["status"] == "done" and got["trials_done"] == got["trials_total"] == 1
        assert got["hypervolume"] > 0 and got["best"]["metrics"]["accuracy_val"] > 0
        failed = c.get(f"{API}/searches/{trained.failed_id}").json()
        assert failed["status"] == "failed" and "r1" in failed["error"]
        trials = pd.read_csv(
            io.StringIO(c.get(f"{API}/searches/{trained.done_id}/trials.csv").text)
        )
        on_disk = pd.read_csv(f"{trained.settings.results_root}/{trained.done_id}/tiny/trials.csv")
        pd.testing.assert_frame_equal(trials, on_disk)
    with Store(trained.settings.database_url) as store:
        assert store.get_search(trained.done_id).owner == trained.worker_name
