"""Liveness, readiness and the metrics endpoint."""
from __future__ import annotations

import asyncio
import os

from aiohttp import web

from live import metrics
from live.errors import error_response, json_response


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "pid": os.getpid()})


async def readyz(request: web.Request) -> web.Response:
    try:
        await asyncio.wait_for(request.app["redis"].ping(), timeout=1.0)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return error_response(503, "REDIS_UNAVAILABLE", f"redis is not reachable: {type(exc).__name__}")
    return json_response({"status": "ready"})


async def metrics_view(request: web.Request) -> web.Response:
    body, ctype = metrics.render()
    return web.Response(body=body, headers={"Content-Type": ctype})


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
