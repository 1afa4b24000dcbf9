"""Files shipped inside the package (live/static/) and served at /static/: demo product images and
anything else the pages need. Served locally so a page never depends on another site."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static"


def setup(app: web.Application) -> None:
    app.router.add_static(STATIC_PREFIX + "/", STATIC_DIR, name="static", append_version=False)
