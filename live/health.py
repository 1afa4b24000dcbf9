"""Liveness, readiness and the metrics endpoint.

`/metrics` shows revenue per currency, order and payment counts and, per broadcast, socket counts
(broadcast ids as labels): not for strangers. `HAWKER_METRICS_TOKEN` makes it require
`Authorization: Bearer <token>`; `HAWKER_METRICS_PORT` serves it on a separate listener
(`HAWKER_METRICS_HOST`, 127.0.0.1 by default) and the public port answers 404 for it."""
from __future__ import annotations

import asyncio
import hmac
import logging
import os

from aiohttp import web

from domain import Code, DomainError
from live import metrics
from live.auth import bearer
from live.config import Config
from live.errors import error_middleware, error_response, json_response

log = logging.getLogger("hawker.health")
INTERNAL = "metrics_internal"  # app key: True on the separate metrics listener's app


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
        return error_response(DomainError(Code.REDIS_UNAVAILABLE, f"redis is not reachable: {type(exc).__name__}"))
    if gate is not None and gate.state == "refused":
        return error_response(DomainError(Code.REDIS_TOO_OLD, str(gate.error)))
    return json_response({"status": "ready"})


def _config(app: web.Application) -> Config:
    return app.get("config") or Config()  # the health routes alone (tests) run on the defaults


async def metrics_view(request: web.Request) -> web.Response:
    config = _config(request.app)
    if config.metrics_port and not request.app.get(INTERNAL):
        raise DomainError(Code.NOT_FOUND, "not found")  # served on the internal metrics port only
    if config.metrics_token:
        given = (bearer(request) or "").encode()
        if not hmac.compare_digest(given, config.metrics_token.encode()):
            raise DomainError(Code.UNAUTHORIZED, "/metrics requires Authorization: Bearer <HAWKER_METRICS_TOKEN>")
    body, ctype = metrics.render()
    return web.Response(body=body, headers={"Content-Type": ctype, "Cache-Control": "no-store"})


async def _start_metrics_listener(app: web.Application) -> None:
    """The separate metrics port: a tiny app with /metrics alone. SO_REUSEPORT, so every worker
    process may bind it (any one answers; the multiprocess registry merges them all)."""
    config = app["config"]
    internal = web.Application(middlewares=[error_middleware])
    internal["config"] = config
    internal[INTERNAL] = True
    internal.router.add_get("/metrics", metrics_view)
    runner = web.AppRunner(internal, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.metrics_host, config.metrics_port, reuse_port=True).start()
    app["metrics_runner"] = runner
    log.info("metrics on http://%s:%d/metrics", config.metrics_host, config.metrics_port)


async def _stop_metrics_listener(app: web.Application) -> None:
    runner = app.get("metrics_runner")
    if runner is not None:
        await runner.cleanup()


async def _warn_if_open(app: web.Application) -> None:
    config = _config(app)
    if not config.demo and not config.metrics_token and not config.metrics_port:
        log.warning("/metrics is open to anyone who reaches this port (it shows revenue and broadcast ids): "
                    "set HAWKER_METRICS_TOKEN or HAWKER_METRICS_PORT")


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    app.on_startup.append(_warn_if_open)
    if _config(app).metrics_port:
        app.on_startup.append(_start_metrics_listener)
        app.on_cleanup.append(_stop_metrics_listener)
