"""schemathesis against a real uvicorn, with every check it has.

The examples, coverage and fuzzing phases run through the ``st`` command line, as a user
would run them (schemathesis' pytest plugin does not run under pytest 9). The stateful
phase runs as schemathesis' state machine here, so that each scenario can start with a
finished search as the newest one: only then do the spec's links (search list → Pareto
set → trial) lead to trials that exist, and the test checks that they did.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.config import SchemathesisConfig

from sparsemod.store import Store

TOKEN = "test-token-0123456789"  # conftest's
EXAMPLES = 25  # per operation and phase: ~650 cases in all
STATEFUL_EXAMPLES = 50  # scenarios of up to 10 calls; about one in five reaches a trial
SEED = 20240611

# Rules the schema cannot state: a budget is a product of several fields ((r1 + r2 + r3) *
# batch_size) and a config value is checked as config.ini would be, so a body the schema
# allows may still get a 422 naming the field. Only for that operation. Link inference is
# off: the links under test are the spec's own.
CONFIG = f"""
[cache]
enabled = false

[headers]
Authorization = "Bearer {TOKEN}"

[phases.stateful.inference]
algorithms = []

[[operations]]
include-operation-id = "submit_search"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "422"]

# A stored model the runtime cannot take (the seeded models are not real networks) is a
# 422 naming why, for any valid ?format=.
[[operations]]
include-operation-id = "download_model"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "404", "422"]
"""
GET_TRIAL = "GET /api/v1/trials/{trial_id}"


@pytest.mark.slow
def test_api_conforms_to_its_schema(live, seeder, tmp_path: Path) -> None:
    with Store(live.env["SPARSEMOD_DATABASE_URL"]) as store:
        seeder(store)  # lookups by id find something
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run"]
        + [f"{live.url}/api/v1/openapi.json", "--checks", "all"]
        + ["--phases", "examples,coverage,fuzzing", "--max-examples", str(EXAMPLES)]
        + ["--seed", str(SEED), "--workers", "1"],
        cwd=tmp_path,  # what it writes stays out of the checkout
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-3000:]
    cases = re.search(r"(\d+) generated", run.stdout)
    assert cases and int(cases.group(1)) >= 500, run.stdout[-3000:]


@pytest.mark.slow
def test_links_lead_to_real_trials(live, seeder) -> None:
    schema = schemathesis.openapi.from_url(
        f"{live.url}/api/v1/openapi.json", config=SchemathesisConfig.from_str(CONFIG)
    )
    store = Store(live.env["SPARSEMOD_DATABASE_URL"])
    seeded: set[int] = set()
    reached: Counter[str] = Counter()  # link name → 200s from GET /trials/{id}

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            seeder(store)
            # Every trial the server holds: the module's live server also keeps the trials
            # the schema test seeded before this one, and a link may lead to those.
            for search in store.list_searches(limit=10_000):
                seeded.update(t.id for t in store.list_trials(search.id))

        def step(self, input):  # noqa: A002 (schemathesis' name)
            output = super().step(input)  # calls, then runs every check on the answer
            case, response = output.case, output.response
            if case.operation.label == GET_TRIAL and response.status_code == 200:
                trial = response.json()
                assert trial["id"] == case.path_parameters["trial_id"]
                if input.transition is not None and input.is_applied:
                    assert trial["id"] in seeded, trial
                    reached[input.transition.id] += 1
            return output

    settings = hypothesis_settings(
        max_examples=STATEFUL_EXAMPLES,
        stateful_step_count=10,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    try:
        try:
            Workflow.run(settings=settings)
        except FlakyStrategyDefinition:
            # The live server's state carries over between hypothesis' runs (a run cancels
            # a search whose links a later run follows), so a replayed prefix can draw
            # differently: hypothesis reports that as a flaky strategy, not as a wrong
            # answer (the checks in step() raise those). Seen once in 9 CI runs; run again.
            Workflow.run(settings=settings)
    finally:
        store.close()
    # Seeded trials were reached by following links: from a Pareto set, a page of trials or
    # a search's best trial. Which links a run follows is left to chance (in 3 of 6 runs
    # none from a page, with 5 or more from a best trial), so any of them counts here;
    # test_every_link_leads_to_an_operation_and_its_parameter checks each link itself.
    assert sum(reached.values()) > 0, reached
