"""The composition root: builds the aiohttp application and wires every part into it."""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

import orjson
import socketio
from aiohttp import web
from aiohttp.typedefs import Handler

from live import assets, headers, health, metrics, node, pages
from live.config import Config
from live.errors import error_middleware
from live.fanout import Bounds, FanoutServer
from live.redis_gate import RedisGate
from live.rest import analytics as rest_analytics
from live.rest import auctions as rest_auctions
from live.rest import broadcasts as rest_broadcasts
from live.rest import checkout as rest_checkout
from live.rest import giveaways as rest_giveaways
from live.rest import media as rest_media
from live.rest import orders_export as rest_orders_export
from live.rest import privacy as rest_privacy
from live.sockets import analytics as sockets_analytics
from live.sockets import auctions as sockets_auctions
from live.sockets import broadcast as sockets_broadcast
from live.sockets import chat as sockets_chat
from live.sockets import checkout as sockets_checkout
from live.sockets import giveaways as sockets_giveaways
from live.sockets import media as sockets_media
from live.sockets import polls as sockets_polls
from live.sockets import replay as sockets_replay
from live.sockets import sales as sockets_sales
from live.store import connect

# Every feature's socket handlers, registered in this order: analytics counts the acks of commands
# registered before it, and the replay's pin log wraps product.pin / product.unpin.
SOCKETS = (sockets_broadcast, sockets_polls, sockets_sales, sockets_media, sockets_chat, sockets_checkout,
           sockets_auctions, sockets_giveaways, sockets_analytics, sockets_replay)
# Every feature's HTTP handlers.
REST = (rest_broadcasts, rest_media, rest_checkout, rest_privacy, rest_auctions, rest_giveaways,
        rest_orders_export, rest_analytics)

log = logging.getLogger("hawker")


class _OrjsonModule:
    """python-socketio's JSON hook: orjson for speed, same API as the json module."""

    @staticmethod
    def dumps(obj: Any, **_kw: Any) -> str:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()

    @staticmethod
    def loads(s: bytes | bytearray | memoryview | str, **_kw: Any) -> Any:
        return orjson.loads(s)


@web.middleware
async def _count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: counts the answer the client got, errors included (the error middleware is inside)."""
    try:
        resp = await handler(request)
    except web.HTTPException as exc:  # redirects and the like, which the error middleware lets through
        metrics.HTTP_REQUESTS.labels(request.method, str(exc.status)).inc()
        raise
    metrics.HTTP_REQUESTS.labels(request.method, str(resp.status)).inc()
    return resp


def create_app(config: Config) -> web.Application:
    """Build the app. Redis is connected lazily by the pool; nothing here blocks."""
    app = web.Application(middlewares=[_count_requests, error_middleware], client_max_size=config.max_request_bytes)
    app["config"] = config
    app["redis"] = connect(config.redis_url, timeout_s=config.redis_timeout_s, mode=config.redis_mode,
                           max_connections=config.redis_max_connections, wait_s=config.redis_wait_ms / 1000,
                           replicas_ack=config.redis_replicas_ack,
                           ack_timeout_ms=config.redis_replicas_ack_timeout_ms)
    app["redis_gate"] = RedisGate(app["redis"], config.redis_url)  # Redis >= 7, checked once reached
    sio = FanoutServer(  # socketio.AsyncServer with the fan-out engine's writer and codecs (live/fanout/)
        bounds=Bounds(max_queued_bytes=config.fanout_queue_kb * 1024, stall_s=config.fanout_stall_s,
                      close_grace_s=config.fanout_close_grace_s),
        async_mode="aiohttp",
        cors_allowed_origins="*",
        json=_OrjsonModule,
        max_http_buffer_size=config.max_message_bytes,
        ping_interval=20,
        ping_timeout=20,
    )
    sio.attach(app, socketio_path="socket.io")
    app["sio"] = sio
    # server.py awaits these on SIGTERM/SIGINT, in order, after the port stopped accepting.
    app["shutdown_hooks"] = [functools.partial(_tell_sockets_to_reconnect, sio)]

    headers.setup(app)
    health.setup(app)
    assets.setup(app)
    pages.setup(app)
    the_node = node.build(config, app["redis"], sio)
    app[node.NODE] = the_node
    for sockets in SOCKETS:
        sockets.register(the_node)
    for rest in REST:
        rest.register(app, the_node)

    async def _start(_app: web.Application) -> None:
        await the_node.start()

    async def _stop(_app: web.Application) -> None:
        await the_node.stop()

    async def _close_media(_app: web.Application) -> None:
        await the_node.close_media()

    app.on_startup.append(_start)
    app.on_shutdown.append(_close_media)
    app.on_cleanup.insert(0, _stop)  # before the Redis client closes (_close)
    app["shutdown_hooks"].append(the_node.hub.disconnect_all)
    app.on_startup.append(_start_background)
    app.on_cleanup.append(_close)
    return app


async def _tell_sockets_to_reconnect(sio: socketio.AsyncServer) -> None:
    """Graceful shutdown: every socket hears `server.shutdown` {"reconnect": true}, then is closed,
    so clients reconnect at once (to another node behind the load balancer) instead of timing out."""
    try:
        await sio.emit("server.shutdown", {"reconnect": True})
    except Exception:  # noqa: BLE001 - a dead socket must not stop the goodbye to the others
        log.debug("server.shutdown emit failed", exc_info=True)
    for sid, _eio_sid in list(sio.manager.get_participants("/", None)):
        try:
            await sio.disconnect(sid)
        except Exception:  # noqa: BLE001 - one dead socket must not keep the others open
            log.debug("disconnect %s failed", sid, exc_info=True)


async def _start_background(app: web.Application) -> None:
    metrics.PROCESS_UP.inc()
    app["redis_gate"].start()
    app["lag_task"] = asyncio.create_task(_watch_loop_lag())


async def _close(app: web.Application) -> None:
    app["lag_task"].cancel()
    await app["redis_gate"].stop()
    metrics.PROCESS_UP.dec()
    await app["redis"].aclose()


async def _watch_loop_lag(period: float = 0.1) -> None:
    """Event-loop lag: how late a timer fires. A busy loop delays pings and every reply."""
    while True:
        start = time.perf_counter()
        await asyncio.sleep(period)
        metrics.EVENT_LOOP_LAG.observe(max(0.0, time.perf_counter() - start - period))
