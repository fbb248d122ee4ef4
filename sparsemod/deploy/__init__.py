"""Deployment: export a trained network to a microcontroller runtime and check it there.

See :mod:`sparsemod.deploy.base` for the protocol every runtime module follows. Each
format is a module holding a ``RUNTIME`` object, found by name in :data:`RUNTIMES` and
imported only when asked for, so ``import sparsemod.deploy`` needs none of the runtimes
(nor torch). :func:`deploy` is the library call (:mod:`sparsemod.deploy.api`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sparsemod.settings import DEPLOY_FORMATS

if TYPE_CHECKING:
    from sparsemod.deploy.base import Runtime

RUNTIMES: dict[str, str] = {f: f"sparsemod.deploy.{f}" for f in DEPLOY_FORMATS}
"""Format name -> the module that holds its ``RUNTIME``."""


def get_runtime(format: str) -> Runtime:
    """The runtime of a format.

    Args:
        format: a key of :data:`RUNTIMES`.

    Returns:
        The module's ``RUNTIME`` (its runtime package itself is imported only when the
        runtime exports or checks).

    Raises:
        DeployError: the format is unknown, or its module is not part of this sparsemod.
    """
    from sparsemod.deploy.base import DeployError

    if format not in RUNTIMES:
        raise DeployError(f"format {format!r} is not one of {sorted(RUNTIMES)}")
    try:
        module = importlib.import_module(RUNTIMES[format])
    except ModuleNotFoundError as exc:
        if exc.name != RUNTIMES[format]:
            raise
        raise DeployError(
            f"format {format!r} is not available in this sparsemod ({RUNTIMES[format]} is missing)"
        ) from exc
    return module.RUNTIME


def deploy(*args: Any, **kwargs: Any) -> Any:
    """Export a stored trial's model and check it: see :func:`sparsemod.deploy.api.deploy`."""
    from sparsemod.deploy.api import deploy as _deploy

    return _deploy(*args, **kwargs)


__all__ = ["RUNTIMES", "deploy", "get_runtime"]
