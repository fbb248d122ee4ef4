"""OpenAPI links: where the ids in an answer lead, for clients and for stateful testing.

A link names an operation by its id (the route function's name, see ``create_app``) and
says which part of the answer fills its path parameter, e.g. a Pareto page's first member
fills ``GET /trials/{trial_id}``.
"""

from __future__ import annotations

from typing import Any

_SEARCH_OPERATIONS = {
    "GetSearch": "get_search",
    "ListTrials": "list_trials",
    "GetPareto": "pareto",
    "GetTrialsCsv": "trials_csv",
    "GetParetoCsv": "pareto_csv",
    "CancelSearch": "cancel_search",
}
_TRIAL_OPERATIONS = {"GetTrial": "get_trial", "DownloadModel": "download_model"}


def _links(
    operations: dict[str, str], parameter: str, pointer: str, prefix: str, exclude: tuple[str, ...]
) -> dict[str, Any]:
    return {
        prefix + name: {
            "operationId": operation,
            "parameters": {parameter: f"$response.body#{pointer}"},
        }
        for name, operation in operations.items()
        if operation not in exclude
    }


def to_search(pointer: str, *, prefix: str = "", exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """Links to the routes of the search whose id is at ``pointer`` in the answer's body.

    Args:
        pointer: a JSON pointer, ``/id`` or ``/data/0/id``.
        prefix: put before each link's name, to tell several sets apart.
        exclude: operation ids to leave out (the answering route itself).
    """
    return _links(_SEARCH_OPERATIONS, "search_id", pointer, prefix, exclude)


def to_trial(pointer: str, *, prefix: str = "", exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """Links to the routes of the trial whose id is at ``pointer`` in the answer's body."""
    return _links(_TRIAL_OPERATIONS, "trial_id", pointer, prefix, exclude)


def response(description: str, links: dict[str, Any]) -> dict[str, Any]:
    """A route's ``responses`` entry for its success answer, with links."""
    return {"description": description, "links": links}
