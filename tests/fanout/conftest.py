"""Fan-out test helpers: real nodes (make_server), real python-socketio clients of both codecs."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import socketio

from shop.broadcasts import BroadcastStore
from tests.waiting import wait_for  # noqa: F401 - re-exported for the tests of this folder


class Client:
    """A python-socketio AsyncClient (websocket only) recording every event it hears."""

    def __init__(self, serializer: str = "msgpack") -> None:
        self.sio = socketio.AsyncClient(reconnection=False, serializer=serializer)
        self.events: list[tuple[str, Any]] = []
        self.disconnected = asyncio.Event()

        @self.sio.on("*")
        async def _any(event: str, *args: Any) -> None:
            self.events.append((event, args[0] if args else None))

        @self.sio.on("disconnect")
        async def _gone(*_a: Any) -> None:
            self.disconnected.set()

    async def connect(self, url: str, token: str) -> Client:
        await self.sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=20)
        return self

    def of(self, event: str) -> list[Any]:
        return [d for (e, d) in self.events if e == event]

    def ticks(self) -> list[dict]:
        return self.of("tick")

    def chat(self) -> list[Any]:
        return [m for t in self.ticks() for m in t.get("chat", [])]

    def hearts(self) -> int:
        return sum(t.get("hearts", 0) for t in self.ticks())


@pytest.fixture
async def bc(redis) -> str:
    await BroadcastStore(redis).ensure("b1", title="Fan-out test", host="h1", products=[])
    return "b1"


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Any]]:
    """`await clients(url, token, serializer="msgpack"|"default")` -> a connected Client."""
    made: list[Client] = []

    async def connect(url: str, token: str, serializer: str = "msgpack") -> Client:
        c = Client(serializer)
        made.append(c)
        return await c.connect(url, token)

    yield connect
    for c in made:
        try:
            await c.sio.disconnect()
        except Exception:  # noqa: BLE001 - a teardown must never fail the test it follows
            pass


def fanout_of(server: Any) -> Any:
    return server.app["node"].hub.fanout
