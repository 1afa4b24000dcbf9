"""A merchant's webhook endpoint for the checkout tests: a real aiohttp server on loopback that
records what reaches it (Receiver verifies Hawker-Signature, Recorder keeps the raw request)."""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import orjson
from aiohttp import web

from checkout import verify
from tests.redis_proc import free_port

SECRET = "whsec_0123456789abcdef"
E = TypeVar("E", "Receiver", "Recorder")


class Receiver:
    """The merchant's endpoint: answers 503 while `down`, records what it accepted."""

    def __init__(self) -> None:
        self.url = ""  # set by serve(): http://127.0.0.1:<port>/hooks
        self.down = False
        self.accepted: list[dict] = []
        self.attempts = 0
        self.bad_signatures = 0
        self.seen_ids: set[str] = set()  # event ids on every attempt, failed ones included

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.read()
        self.seen_ids.add(request.headers.get("Hawker-Event-Id", ""))
        if not verify(SECRET, body, request.headers.get("Hawker-Signature", "")):
            self.bad_signatures += 1
            return web.Response(status=400)
        if self.down:
            return web.Response(status=503)
        event = orjson.loads(body)
        assert request.headers["Hawker-Event-Id"] == event["id"]
        self.accepted.append(event)
        return web.Response(status=204)


class Recorder:
    """An endpoint that keeps every request's headers and body as they came; the first
    `fail_first` requests are answered 503 (to see the retry)."""

    def __init__(self) -> None:
        self.url = ""
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503)
        return web.Response(status=204)


async def serve(endpoint: Receiver | Recorder,
                routes: Callable[[web.Application], None] | None = None) -> tuple[web.AppRunner, int]:
    """Serve `endpoint` at POST /hooks (and `routes` beside it) on a free loopback port; sets
    endpoint.url. The caller cleans the runner up."""
    app = web.Application()
    app.router.add_post("/hooks", endpoint.handle)
    if routes:
        routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    endpoint.url = f"http://127.0.0.1:{port}/hooks"
    return runner, port


@asynccontextmanager
async def served(endpoint: E) -> AsyncIterator[E]:
    """`endpoint` served (see serve) for the block, then stopped."""
    runner, _ = await serve(endpoint)
    try:
        yield endpoint
    finally:
        await runner.cleanup()
