"""sparsemod's errors as HTTP answers: every bad input gets a 4xx naming the field.

``ConfigError`` → 422, ``DataError`` (no such row) → 404, ``StoreError`` (the database
cannot be used) → 503, any other ``SparsemodError`` → 400. Request validation errors are
422 too, in the same ``{"detail", "field"}`` shape.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from sparsemod.config import TrainConfig
from sparsemod.errors import ConfigError, DataError, SparsemodError
from sparsemod.store import StoreError

_TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class ApiError(Exception):
    """An answer other than success, raised by a route.

    Args:
        status_code: the HTTP status.
        detail: one line saying what is wrong.
        field: the request field at fault.
        headers: extra response headers.
    """

    def __init__(
        self,
        status_code: int,
        detail: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.field = field
        self.headers = headers


def error_response(
    status_code: int, detail: str, field: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"detail": detail, "field": field}, status_code, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method the request's path answers to.

    Starlette's 405 names the methods of the first route whose path matched, but one path
    may have a route per method (``GET`` and ``POST /searches``).
    """
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]


def config_field(exc: ConfigError) -> str | None:
    """The request field a ConfigError is about: ``config.r1`` for a ``[TRAIN]`` key (or an
    evaluator's key of the same name), ``problem`` for the problem, else ``None``."""
    if exc.key is None or exc.section not in (None, "TRAIN"):
        return None
    if exc.key == "problem":
        return "problem"
    if exc.section == "TRAIN" or exc.key in _TRAIN_FIELDS:
        return f"config.{exc.key}"
    return None


# Pydantic names the member of a union an error comes from ("int", "list[...]"); a client
# only needs the field.
_TYPE_TAG = re.compile(r"^(bool|int|float|str|none|[a-z-]+\[.*\]|function-\w+.*)$")


def _loc(loc: tuple[Any, ...]) -> str:
    # ("body", "config", "r1", "int") -> "config.r1"; ("query", "limit") -> "limit".
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    kept = []
    for part in parts:
        if isinstance(part, str) and _TYPE_TAG.match(part):
            break
        kept.append(str(part))
    return ".".join(kept) or "body"


def _validation_detail(errors: list[dict[str, Any]]) -> tuple[str, str]:
    """One line naming each field at fault, and the first field."""
    by_field: dict[str, list[str]] = {}
    for e in errors:
        msgs = by_field.setdefault(_loc(tuple(e.get("loc", ()))), [])
        if e.get("msg") not in msgs:
            msgs.append(str(e.get("msg")))
    lines = []
    for field, msgs in by_field.items():
        if len(msgs) > 1:  # the members of a union, each refusing the value
            kinds = [m.removeprefix("Input should be ") for m in msgs]
            msgs = ["Input should be " + ", ".join(kinds[:-1]) + " or " + kinds[-1]]
        lines.append(f"{field}: {msgs[0]}")
    return "; ".join(lines) or "invalid request", next(iter(by_field), "body")


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own (a body that is not text: 400; no such route: 404), same shape.
        headers = exc.headers
        if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return error_response(exc.status_code, str(exc.detail), None, headers)

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status_code, exc.detail, exc.field, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail, field = _validation_detail(list(exc.errors()))
        return error_response(422, detail, field)

    @app.exception_handler(ConfigError)
    async def _config(_: Request, exc: ConfigError) -> JSONResponse:
        return error_response(422, str(exc), config_field(exc))

    @app.exception_handler(DataError)
    async def _missing(_: Request, exc: DataError) -> JSONResponse:
        return error_response(status.HTTP_404_NOT_FOUND, str(exc))

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError) -> JSONResponse:
        return error_response(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))

    @app.exception_handler(SparsemodError)
    async def _other(_: Request, exc: SparsemodError) -> JSONResponse:
        return error_response(status.HTTP_400_BAD_REQUEST, f"{type(exc).__name__}: {exc}")
