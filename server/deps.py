"""The dependencies routes declare: settings, the store, the bearer token."""

from __future__ import annotations

import hashlib
import hmac
import threading
from typing import Annotated

from fastapi import Depends, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.errors import ApiError
from server.settings import Settings, get_settings
from sparsemod.store import Store

SettingsDep = Annotated[Settings, Depends(get_settings)]

_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def open_store(url: str) -> Store:
    """The process's store for ``url``, opened once (opening checks the schema revision).

    Raises:
        StoreError: the database is not a sparsemod store of the code's revision.
        ConfigError: a bad URL.
    """
    store = _stores.get(url)
    if store is None:
        with _stores_lock:
            store = _stores.get(url)
            if store is None:
                store = _stores[url] = Store(url)
    return store


async def get_store(settings: SettingsDep) -> Store:
    # async: resolved on the event loop, not through a worker thread (the store is opened
    # once, at start-up, by the app's lifespan).
    return open_store(settings.database_url)


StoreDep = Annotated[Store, Depends(get_store)]

bearer = HTTPBearer(
    auto_error=False,
    description="the server's SPARSEMOD_API_TOKEN, as 'Authorization: Bearer <token>'",
)


def _digest(text: str) -> bytes:
    # Comparing digests keeps compare_digest's time independent of the token's length too.
    return hashlib.sha256(text.encode()).digest()


async def require_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Let the request through only with the server's bearer token.

    A server in development mode without a token lets every request through.

    Raises:
        ApiError: 401, the token is missing or wrong.
    """
    if settings.api_token is None:
        if settings.dev:
            return
        raise ApiError(status.HTTP_401_UNAUTHORIZED, "the server has no API token configured")
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise ApiError(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token (send 'Authorization: Bearer <token>')",
            "Authorization",
            challenge,
        )
    if not hmac.compare_digest(_digest(credentials.credentials), _digest(settings.api_token)):
        raise ApiError(
            status.HTTP_401_UNAUTHORIZED, "invalid bearer token", "Authorization", challenge
        )


async def require_writable(settings: SettingsDep) -> None:
    """Let a request that changes the store through only on a server that is not read-only.

    Raises:
        ApiError: 403, the server serves its store read-only (``sparsemod dashboard``).
    """
    if settings.read_only:
        raise ApiError(
            status.HTTP_403_FORBIDDEN,
            "this server is read-only (sparsemod dashboard): submit and cancel searches "
            "through sparsemod serve or the service",
        )
