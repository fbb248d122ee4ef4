"""Server settings, read from the environment.

Routes get them through the :func:`get_settings` dependency (read once per process by the
``lru_cache``d :func:`load_settings`), never from an import-time global, so a test
overrides them with ``app.dependency_overrides[get_settings]`` or passes them to
:func:`server.app.create_app`.

Environment (all optional):

* ``SPARSEMOD_API_TOKEN``: the bearer token every endpoint but ``/health`` requires.
* ``SPARSEMOD_DEV``: ``1`` to allow starting without a token (local development only).
* ``SPARSEMOD_READ_ONLY``: ``1`` to refuse every request that would change the store
  (submit, cancel): ``sparsemod dashboard`` serves a local store this way.
* ``SPARSEMOD_RESULTS_ROOT``: the folder searches export their files to (default
  ``results``); the database defaults to ``<root>/sparsemod.db``.
* ``SPARSEMOD_DATABASE_URL``: a SQLAlchemy URL (wins over the results root).
* ``SPARSEMOD_MAX_TRIALS``, ``SPARSEMOD_MAX_EPOCHS``, ``SPARSEMOD_MAX_CANDIDATES``,
  ``SPARSEMOD_MAX_REQUEST_BYTES``: the budgets one request may ask for.
* ``SPARSEMOD_STALE_AFTER_S``, ``SPARSEMOD_HEARTBEAT_S``, ``SPARSEMOD_POLL_S``: the
  worker's timings.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sparsemod.errors import ConfigError
from sparsemod.store import default_url

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class Settings:
    """What the API and the worker are allowed to do.

    Attributes:
        database_url: the store's SQLAlchemy URL.
        results_root: the folder searches export to (``<root>/<id>/<name>/``).
        api_token: the bearer token; ``None`` only in development mode.
        dev: development mode: no token needed.
        read_only: refuse submissions and cancellations (403); the dashboard's mode.
        max_trials: largest ``(r1 + r2 + r3) * batch_size`` a request may ask for.
        max_epochs: largest ``epochs1..3`` and ``finetune_epochs``.
        max_candidates: largest ``num_candidates``.
        max_request_bytes: largest request body.
        stale_after_s: a running search whose heartbeat is older is taken over.
        heartbeat_s: how often the worker says a search is alive while it trains.
        poll_s: how long an idle worker sleeps between looks for work.
    """

    database_url: str
    results_root: str = "results"
    api_token: str | None = None
    dev: bool = False
    read_only: bool = False
    max_trials: int = 200
    max_epochs: int = 50
    max_candidates: int = 4096
    max_request_bytes: int = 64 * 1024
    stale_after_s: float = 120.0
    heartbeat_s: float = 10.0
    poll_s: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from environment variables (see the module docstring).

        Raises:
            ConfigError: a variable that is not of its type, naming it.
        """
        env = os.environ if env is None else env
        root = env.get("SPARSEMOD_RESULTS_ROOT", "").strip() or "results"
        url = env.get("SPARSEMOD_DATABASE_URL", "").strip() or default_url(root)
        token = env.get("SPARSEMOD_API_TOKEN", "").strip() or None
        return cls(
            database_url=url,
            results_root=str(Path(root).resolve()),
            api_token=token,
            dev=_flag(env, "SPARSEMOD_DEV"),
            read_only=_flag(env, "SPARSEMOD_READ_ONLY"),
            max_trials=_number(env, "SPARSEMOD_MAX_TRIALS", cls.max_trials, int),
            max_epochs=_number(env, "SPARSEMOD_MAX_EPOCHS", cls.max_epochs, int),
            max_candidates=_number(env, "SPARSEMOD_MAX_CANDIDATES", cls.max_candidates, int),
            max_request_bytes=_number(
                env, "SPARSEMOD_MAX_REQUEST_BYTES", cls.max_request_bytes, int
            ),
            stale_after_s=_number(env, "SPARSEMOD_STALE_AFTER_S", cls.stale_after_s, float),
            heartbeat_s=_number(env, "SPARSEMOD_HEARTBEAT_S", cls.heartbeat_s, float),
            poll_s=_number(env, "SPARSEMOD_POLL_S", cls.poll_s, float),
        )

    def require_token(self) -> None:
        """Refuse to serve without a token unless in development mode.

        Raises:
            ConfigError: no token and not ``dev``; the message says how to fix it.
        """
        if self.api_token is None and not self.dev:
            raise ConfigError(
                "SPARSEMOD_API_TOKEN is not set: the service refuses to start without a "
                "bearer token. Set it (e.g. SPARSEMOD_API_TOKEN=$(python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')), or set SPARSEMOD_DEV=1 to run without "
                "one on your own machine"
            )


def _flag(env: Mapping[str, str], name: str) -> bool:
    text = env.get(name, "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name}: {text!r} is not a boolean (allowed: 1, 0, true, false)")


def _number(env: Mapping[str, str], name: str, default: float, kind: type) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(f"{name}: {text!r} is not a {kind.__name__}") from None
    if not value > 0:
        raise ConfigError(f"{name}: {text!r} is out of range (allowed: > 0)")
    return value


@functools.lru_cache(maxsize=1)
def load_settings() -> Settings:
    """The process's settings, read from the environment on first use.

    Raises:
        ConfigError: an environment variable of the wrong type.
    """
    return Settings.from_env()


async def get_settings() -> Settings:
    """The settings dependency of the routes (tests override it).

    ``async`` so that FastAPI calls it on the event loop, not through a thread.
    """
    return load_settings()
