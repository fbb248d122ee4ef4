"""The dashboard: static pages at ``/`` that read the JSON API, no build step.

The page, its scripts (ES modules, loaded as they are: ``app.js`` routes between the views
of ``searches.js``, ``search.js`` and ``trial.js``, over ``api.js``, ``ui.js`` and
``plots.js``) and its style sheet live in ``static/`` beside this module; the
plotting library is plotly.js, the bundle that plotly's own PyPI package ships
(``plotly/package_data/plotly.min.js``), served from there under a versioned name. So the
page works offline and needs no Node toolchain. Nothing served here carries data: every
figure comes from ``/api/v1`` with the token the login form keeps for the browser session.
"""

from __future__ import annotations

import functools
import gzip
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request, Response, status

from server.errors import ApiError

STATIC = Path(__file__).resolve().parent / "static"
_PLOTLY = "plotly"
# The page refers to the bundle by version, so a browser may keep it for good.
_IMMUTABLE = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
# The page's own scripts only; plotly draws with inline styles and data: images.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Asset:
    """A file the dashboard serves, kept in memory with its gzip form."""

    body: bytes
    zipped: bytes
    media_type: str
    cache: str


def plotly_bundle() -> Path:
    """plotly.js as plotly's Python package ships it.

    Raises:
        ApiError: 503, plotly is not installed (``pip install "sparsemod[server]"``).
    """
    import importlib.util

    spec = importlib.util.find_spec(_PLOTLY)
    if spec is None or spec.origin is None:
        raise ApiError(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the dashboard's plots need plotly: pip install 'sparsemod[server]'",
        )
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


@functools.cache
def plotly_name() -> str:
    """The versioned name the page loads the bundle under (read once: every request for a
    file asks for it)."""
    try:
        version = importlib.metadata.version(_PLOTLY)
    except importlib.metadata.PackageNotFoundError:
        version = "missing"
    return f"plotly-{version}.min.js"


@functools.cache
def asset(name: str) -> Asset:
    """One served file by its public name (read and compressed once per process)."""
    if name == plotly_name():
        body = plotly_bundle().read_bytes()
        return Asset(body, gzip.compress(body, 6, mtime=0), _TYPES[".js"], _IMMUTABLE)
    path = STATIC / name
    body = path.read_bytes()
    if name == "index.html":
        body = body.replace(b"{{plotly}}", plotly_name().encode())
    kind = _TYPES[path.suffix] + "; charset=utf-8"
    return Asset(body, gzip.compress(body, 6, mtime=0), kind, _REVALIDATE)


# The names a request may ask for, listed once at import: nothing from a URL reaches a path.
_OWN = frozenset(p.name for p in STATIC.iterdir() if p.is_file() and p.name != "index.html")


def _send(request: Request, name: str) -> Response:
    a = asset(name)
    headers = {
        "Cache-Control": a.cache,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    body = a.body
    if "gzip" in request.headers.get("accept-encoding", ""):
        body, headers["Content-Encoding"] = a.zipped, "gzip"
    if a.media_type.startswith("text/html"):
        headers["Content-Security-Policy"] = CSP
    return Response(body, media_type=a.media_type, headers=headers)


@router.get("/")
async def page(request: Request) -> Response:
    """The dashboard's one page (its views are chosen by the URL's fragment)."""
    return _send(request, "index.html")


@router.get("/static/{name}")
async def static_file(name: str, request: Request) -> Response:
    """The page's script, style sheet and plotly.js."""
    if name not in _OWN and name != plotly_name():
        raise ApiError(status.HTTP_404_NOT_FOUND, f"no dashboard file called {name!r}")
    return _send(request, name)
