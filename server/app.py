"""The FastAPI app: ``uvicorn server.app:app`` (or :func:`create_app` in tests).

The app validates requests and reads and writes the store; it never trains (the worker,
``python -m server.worker``, does). It refuses to start without ``SPARSEMOD_API_TOKEN``
unless ``SPARSEMOD_DEV=1``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import sparsemod
from server import errors
from server.dashboard import router as dashboard_router
from server.deps import open_store
from server.routes import api_router
from server.routes.health import health
from server.routes.problems import problem_names
from server.schemas import ErrorOut
from server.settings import Settings, get_settings, load_settings
from sparsemod.errors import ConfigError

_BODY_METHODS = {"POST", "PUT", "PATCH"}


class BodyLimit:
    """Answer 413 to a request whose body is over ``max_bytes``, before the app reads it.

    The body is read here (at most ``max_bytes + 1`` bytes) and handed on to the app, so
    a client that sends no Content-Length, or a false one, is held to the limit too.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        response = errors.error_response(
            413, f"the request body is over this server's limit of {self.max_bytes} bytes"
        )
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _warm() -> None:
    # The first hypervolume imports BoTorch (seconds); do it before the first poll.
    import numpy as np

    from sparsemod.results.pareto import hypervolume

    hypervolume(np.array([[0.5, 0.5]]), [1.0, 1.0])


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API app.

    Args:
        settings: what the app may do; read from the environment when ``None``. Given
            settings are also what the routes' settings dependency returns.

    Raises:
        ConfigError: no API token and not in development mode (the message says what
            to set), or a setting of the wrong type.
    """
    given = settings is not None
    settings = settings if settings is not None else load_settings()
    settings.require_token()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        open_store(settings.database_url)  # a bad URL or schema stops the start here
        warm = threading.Thread(target=_warm, name="warm-botorch")
        warm.start()
        yield
        warm.join()  # an import cut off by the interpreter's exit aborts the process

    app = FastAPI(
        title="sparsemod",
        version=sparsemod.__version__,
        summary="Submit, poll and cancel hardware-aware architecture searches; "
        "read their trials and Pareto sets, download the Pareto models.",
        # Served by server.routes.docs, behind the token; FastAPI's own would be open.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # Operation ids are the route functions' names: the spec's links refer to them.
        generate_unique_id_function=lambda route: route.name,
    )
    if given:
        # Only then: FastAPI re-inspects an overriding callable on every request.
        app.dependency_overrides[get_settings] = lambda: settings
    errors.install(app)
    app.include_router(api_router)
    app.add_api_route("/health", health, methods=["GET"], include_in_schema=False)
    app.include_router(dashboard_router)  # the pages carry no data: the API checks the token
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    # JSON pages and CSV shrink ~6x; models go as they are stored (their sha256 is of
    # those bytes), and the dashboard's files come compressed already.
    app.add_middleware(
        GZipMiddleware, minimum_size=2048, exclude_content_types=("application/octet-stream",)
    )
    _complete_schema(app)
    return app


def _complete_schema(app: FastAPI) -> None:
    """Add to the spec what the models cannot say: ErrorOut in the components, where every
    error answer refers to it, and the registered problems as the values ``problem`` takes.

    The problems are read when the spec is first built, not when the app is: loading them
    imports the training stack, which a request that never asks for the spec does not need.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            schemas.setdefault(
                "ErrorOut", ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
            )
            schemas["SearchCreate"]["properties"]["problem"]["enum"] = problem_names()
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def __getattr__(name: str) -> Any:
    # ``uvicorn server.app:app`` reads this attribute. It is built on first access, not at
    # import, so that importing create_app needs no token in the environment.
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        application = create_app()
    except ConfigError as exc:
        raise SystemExit(f"sparsemod server: {exc}") from None
    globals()["app"] = application
    return application
