"""User code a config names as ``package.module:function``: a problem, a latency hook.

:func:`import_object` imports the object and says in one line what is wrong when it
cannot (the module is not there, or has no such name). The ``latency_hook`` key is read
here: :func:`check_latency_hook` checks and imports it (the config does so when it is read,
before anything trains) and :func:`measure_latency` calls it on an exported artifact and
checks what it returns. Nothing here imports torch.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from numbers import Real
from typing import Any

from sparsemod.errors import ConfigError, LatencyHookError


def import_object(
    spec: str, key: str, section: str | None = None, *, kind: str = "attribute"
) -> Any:
    """The object ``spec`` (``package.module:name``) names.

    Args:
        spec: the path, as the config gives it.
        key: the config key, named in the message.
        section: the config section, named in the message when given.
        kind: what ``name`` should be (``function``, ``attribute``), for the message.

    Raises:
        ConfigError: ``{key}: cannot import {spec!r} (...)``: the module is not found, a
            module it imports is not installed, or it has no ``name``.
    """
    where = f"[{section}] " if section else ""
    module_name, _, name = spec.partition(":")

    def fail(why: str) -> ConfigError:
        return ConfigError(
            f"{where}{key}: cannot import {spec!r} ({why})", section=section, key=key
        )

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        if module_name == missing or module_name.startswith(missing + "."):
            raise fail(f"no module named {missing!r}; is its folder on sys.path?") from exc
        raise fail(f"module {module_name!r} imports {missing!r}, which is not installed") from exc
    except ImportError as exc:
        raise fail(f"importing module {module_name!r} failed: {exc}") from exc
    try:
        return getattr(module, name)
    except AttributeError:
        raise fail(f"module {module_name!r} has no {kind} {name!r}") from None


def latency_hook(spec: str, section: str | None = None) -> Callable[[Any], Any]:
    """The function ``latency_hook = spec`` names.

    Raises:
        ConfigError: it cannot be imported (see :func:`import_object`), or is not callable.
    """
    hook = import_object(spec, "latency_hook", section, kind="function")
    if not callable(hook):
        where = f"[{section}] " if section else ""
        raise ConfigError(
            f"{where}latency_hook: {spec!r} is a {type(hook).__name__}, not a function "
            "(allowed: a function taking the exported artifact and returning seconds)",
            section=section,
            key="latency_hook",
        )
    return hook


def check_latency_hook(spec: str | None, runtime: str, section: str | None = None) -> None:
    """Check a ``latency_hook`` value against ``runtime``, and import it once.

    Raises:
        ConfigError: a hook with ``runtime`` other than ``tflm`` (the hook measures the
            ``.tflite`` flatbuffer TFLM runs; ``ideal`` counts another network), or one that
            cannot be imported or is not callable (see :func:`latency_hook`).
    """
    if spec is None:
        return
    if runtime != "tflm":
        where = f"[{section}] " if section else ""
        raise ConfigError(
            f"{where}latency_hook: {spec!r} measures the .tflite flatbuffer TFLM runs, and "
            f"runtime = {runtime} counts another network (set runtime = tflm, or "
            "latency_hook = none)",
            section=section,
            key="latency_hook",
        )
    latency_hook(spec, section)


def measure_latency(spec: str, artifact: Any) -> float:
    """Call the hook ``spec`` names on ``artifact`` and return its seconds.

    Args:
        spec: the ``latency_hook`` value (the config resolved it once already).
        artifact: the exported :class:`~sparsemod.deploy.base.Artifact` (``data`` holds the
            ``.tflite`` flatbuffer).

    Returns:
        The latency the hook measured, in seconds.

    Raises:
        LatencyHookError: the hook raised, or returned anything but a finite number > 0;
            the message is ``latency_hook <spec>: <what happened>``.
        ConfigError: the hook can no longer be imported.
    """
    hook = latency_hook(spec)
    try:
        value = hook(artifact)
    except Exception as exc:  # the user's code: its failure fails the trial, not the search
        raise LatencyHookError(f"latency_hook {spec}: {type(exc).__name__}: {exc}") from exc
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        ok = False
    else:
        ok = value > 0
    if not ok:
        raise LatencyHookError(
            f"latency_hook {spec}: returned {value!r} ({type(value).__name__}), "
            "not a number of seconds > 0"
        )
    return float(value)
