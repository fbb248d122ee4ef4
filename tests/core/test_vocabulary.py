"""The shared names: one declaration that the results, the store, the config and the API use."""

from __future__ import annotations

import json
import typing
from dataclasses import fields

from sparsemod.core.results import COMPLETED, FAILED, TrialResult
from sparsemod.core.vocabulary import (
    METRIC_INFO,
    METRICS,
    OBJECTIVES,
    RUNTIME_METRICS,
    SEARCH_STATUSES,
    TRIAL_STATUSES,
    SearchStatus,
    TrialStatus,
)

_NOT_METRICS = {"status", "params", "seed", "failure_reason", "history", "model", "trained_state"}


def test_every_number_a_trial_result_holds_is_a_declared_metric_with_a_unit():
    numbers = {f.name for f in fields(TrialResult)} - _NOT_METRICS
    assert numbers <= set(METRICS)
    assert set(METRICS) - numbers == set(RUNTIME_METRICS)  # the deploy check adds those
    units = {name: METRIC_INFO[name].unit for name in OBJECTIVES}
    assert units == {
        "error": "1",
        "model_size_bytes": "B",
        "working_memory_bytes": "B",
        "latency_s": "s",
    }
    assert all(METRIC_INFO[m].description for m in METRICS)


def test_objectives_are_the_results_and_the_configs_in_cumulative_order():
    from sparsemod import settings
    from sparsemod.config import TrainConfig

    assert list(TrialResult(COMPLETED, {}, 0).objectives()) == list(OBJECTIVES)
    assert settings.OBJECTIVES is OBJECTIVES
    assert TrainConfig(objectives=2).objective_names == ["error", "model_size_bytes"]


def test_statuses_are_plain_strings_everywhere_they_go():
    assert SEARCH_STATUSES == ("queued", "running", "cancelling", "cancelled", "done", "failed")
    assert TRIAL_STATUSES == ("running", "completed", "failed", "stopped") == tuple(TrialStatus)
    assert (COMPLETED, FAILED) == (TrialStatus.COMPLETED, TrialStatus.FAILED)
    assert json.dumps({"s": SearchStatus.CANCELLING}) == '{"s": "cancelling"}'


def test_the_store_and_the_api_take_the_same_statuses():
    from server import schemas
    from sparsemod.store import records

    assert records.SEARCH_STATUSES is SEARCH_STATUSES
    assert records.TRIAL_STATUSES is TRIAL_STATUSES
    assert typing.get_args(schemas.SearchStatus) == SEARCH_STATUSES
    assert typing.get_args(schemas.TrialStatus) == TRIAL_STATUSES
