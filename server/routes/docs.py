"""GET /openapi.json and /docs: the API's schema and its interactive page.

They take the token like every route but health: the schema of a private service is
private too. The page carries the schema in it, so a client that could send the token for
the page needs no second, tokenless request for the schema.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
async def openapi(request: Request) -> JSONResponse:
    """The OpenAPI schema."""
    return JSONResponse(request.app.openapi())


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    """Swagger UI on the schema."""
    app = request.app
    return get_swagger_ui_html(
        openapi_url=request.url_for("openapi").path,
        title=f"{app.title} API",
        swagger_ui_parameters={"spec": app.openapi()},  # Swagger UI prefers it to the url
    )
