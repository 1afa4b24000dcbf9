"""Files shipped inside the package (live/static/) and served at /static/: demo product images and
anything else the pages need. Served locally so a page never depends on another site."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static"
MAX_NAME_BYTES = 255  # a longer path segment cannot name a file (NAME_MAX); aiohttp would answer 500


def setup(app: web.Application) -> None:
    app.router.add_static(STATIC_PREFIX + "/", STATIC_DIR, name="static", append_version=False)
    app.middlewares.append(_no_impossible_names)


@web.middleware
async def _no_impossible_names(request: web.Request,
                               handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """A /static/ name no file system can hold is simply not found (aiohttp's static handler lets
    the OS's "file name too long" escape as a 500)."""
    path = request.path
    if path.startswith(STATIC_PREFIX + "/") and (
            len(path) > 1024 or any(len(part.encode()) > MAX_NAME_BYTES for part in path.split("/"))):
        raise web.HTTPNotFound()
    return await handler(request)
