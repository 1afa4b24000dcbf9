"""Hub test helpers: real Socket.IO clients (websocket transport) against real nodes and Redis."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import socketio

from shop.broadcasts import BroadcastStore
from tests.waiting import wait_for  # noqa: F401 - re-exported for the tests of this folder

PRODUCTS = [
    {"id": "p1", "title": "Linen shirt", "price": 12900, "currency": "KRW", "image_url": "https://img.example/p1.jpg",
     "description": "Breathable"},
    {"id": "p2", "title": "Straw hat", "price": 4500, "currency": "KRW"},
]




class Client:
    """A python-socketio AsyncClient that records every event it hears."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any, float]] = []
        self.refused: Any = None

        @self.sio.on("*")
        async def _any(event: str, *args: Any) -> None:
            self.events.append((event, args[0] if args else None, time.monotonic()))

        @self.sio.on("connect_error")
        async def _refused(data: Any) -> None:
            self.refused = data

    async def connect(self, url: str, token: str | None, **auth: Any) -> Client:
        a = {"token": token, **auth} if token is not None else auth
        await self.sio.connect(url, auth=a, transports=["websocket"], wait_timeout=15)
        return self

    def of(self, event: str) -> list[Any]:
        return [d for (e, d, _) in self.events if e == event]

    async def snapshot(self) -> dict:
        return (await wait_for(lambda: self.of("snapshot"), what="snapshot"))[0]

    async def call(self, event: str, payload: Any = None, timeout: float = 15.0) -> Any:
        return await self.sio.call(event, payload, timeout=timeout)

    def levels(self, key: str) -> Any:
        """The coalesced level `key` from `tick` batches, by the client rule: keep the highest `v`."""
        value = None
        for batch in self.of("tick"):
            levels = (batch or {}).get("levels") or {}
            new = levels.get(key)
            if new is not None and (value is None or new.get("v", 0) >= value.get("v", 0)):
                value = new
        return value


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Any]]:
    """`await clients(url, token, **auth)` -> a connected Client; all are disconnected afterwards."""
    made: list[Client] = []

    async def connect(url: str, token: str | None, **auth: Any) -> Client:
        c = Client()
        made.append(c)
        return await c.connect(url, token, **auth)

    yield connect
    for c in made:
        if c.sio.connected:
            try:  # bounded: a teardown must never hang the suite
                await asyncio.wait_for(c.sio.disconnect(), 10)
            except (TimeoutError, Exception):  # noqa: BLE001 - a teardown must never fail the test it follows
                pass


@pytest.fixture
async def bc(redis) -> str:
    """Broadcast "b1" hosted by "h1" with two products."""
    await BroadcastStore(redis).ensure("b1", title="Summer drop", host="h1", products=PRODUCTS)
    await BroadcastStore(redis).ensure("b2", title="Other show", host="h2", products=PRODUCTS[:1])
    return "b1"


async def host_and_viewers(server: Any, clients: Callable[..., Any], token: Callable[..., str], n: int = 2
                           ) -> tuple[Any, list[Any]]:
    """Broadcast b1's host and `n` viewers (v0, v1, ...), each with its join snapshot received."""
    host = await clients(server.url, token("host", "b1", "h1", name="Host"))
    viewers = [await clients(server.url, token("viewer", "b1", f"v{i}", name=f"Viewer{i}")) for i in range(n)]
    for c in (host, *viewers):
        await c.snapshot()
    return host, viewers
