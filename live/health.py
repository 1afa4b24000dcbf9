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
    """Ready: Redis answers and is >= 7.0 (live/redis_gate.py). A too-old Redis is 503
    REDIS_TOO_OLD naming the version found; an unreachable one 503 REDIS_UNAVAILABLE."""
    gate = request.app.get("redis_gate")
    try:
        await asyncio.wait_for(request.app["redis"].ping(), timeout=1.0)
        if gate is not None and gate.state == "waiting":
            await asyncio.wait_for(gate.check(), timeout=1.0)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return error_response(503, "REDIS_UNAVAILABLE", f"redis is not reachable: {type(exc).__name__}")
    if gate is not None and gate.state == "refused":
        return error_response(503, "REDIS_TOO_OLD", str(gate.error))
    return json_response({"status": "ready"})


async def metrics_view(request: web.Request) -> web.Response:
    body, ctype = metrics.render()
    return web.Response(body=body, headers={"Content-Type": ctype})


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
