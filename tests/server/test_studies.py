"""An ask/tell study in the service's store reads like any search: rows, trials, front, CSV."""

from __future__ import annotations

from sparsemod import Study
from tests.search.test_study import SPACE, costs, error


def test_a_study_is_served_like_a_search(client, settings):
    study = Study(SPACE, ("error", "model_size_bytes"), costs, store=settings.database_url,
                  name="board-farm", phases={"sobol": 3, "gp": 2}, batch_size=2)  # fmt: skip
    asked = study.ask(3)
    for t in asked[:2]:
        study.tell(t, {"error": error(t.params)})
    found = client.get("/api/v1/searches").json()["data"]
    (row,) = [r for r in found if r["name"] == "board-farm"]
    assert row["problem"] == "study" and row["status"] == "running"
    assert row["trials_total"] == 6  # 2 Sobol rounds + 1 GP round of 2
    trials = client.get(f"/api/v1/searches/{row['id']}/trials").json()["data"]
    assert [t["status"] for t in trials] == ["completed", "completed", "running"]
    assert trials[0]["params"] == asked[0].params
    front = client.get(f"/api/v1/searches/{row['id']}/pareto").json()["data"]
    assert {t["index"] for t in front} == {t.index for t in study.pareto()}
    csv = client.get(f"/api/v1/searches/{row['id']}/trials.csv").text.splitlines()
    assert csv[0].startswith("index,phase") and "width" in csv[0] and len(csv) == 4
