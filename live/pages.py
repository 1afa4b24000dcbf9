"""The studio and player pages (placeholders until the pages work lands)."""
from __future__ import annotations

from aiohttp import web


async def studio(request: web.Request) -> web.Response:
    return web.Response(text="<!doctype html><title>Hawker studio</title><h1>Hawker studio</h1>", content_type="text/html")


async def watch(request: web.Request) -> web.Response:
    bc = request.match_info["broadcast"]
    return web.Response(text=f"<!doctype html><title>Hawker</title><h1>Broadcast {bc}</h1>", content_type="text/html")


def setup(app: web.Application) -> None:
    app.router.add_get("/studio", studio)
    app.router.add_get("/watch/{broadcast}", watch)
