"""Chat fixtures: a Chat on the session's real Redis with a generous rate limit unless a test says otherwise."""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
import socketio

from chat import Actor, Chat, ChatPolicy
from tests.redis_proc import client_for
from tests.waiting import wait_for  # noqa: F401 - re-exported for the tests of this folder

HOST = Actor("host1", "Host", "host")
MOD = Actor("mod1", "Mo", "moderator")
ALICE = Actor("alice", "Alice", "viewer")
BOB = Actor("bob", "Bob", "viewer")


@pytest.fixture
async def make_chat(redis, redis_url: str) -> AsyncIterator[Callable[..., Chat]]:
    """`make_chat(**policy)` -> a Chat on its own connection (two calls = two nodes)."""
    clients: list[aioredis.Redis] = []

    def make(**policy) -> Chat:
        client = client_for(redis_url)  # a RedisCluster under HAWKER_TEST_REDIS=cluster
        clients.append(client)
        base = {"rate_per_s": 1000.0, "burst": 1000}
        base.update(policy)
        return Chat(client, ChatPolicy(**base))

    yield make
    for c in clients:
        await c.aclose()


@pytest.fixture
def chat(make_chat) -> Chat:
    return make_chat()


# --- hub clients ---------------------------------------------------------------------------------


PRODUCTS = [{"id": "p1", "title": "Linen shirt", "price": 12900, "currency": "KRW"}]


class Client:
    """A python-socketio AsyncClient (websocket transport) that records every event it hears."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []

        @self.sio.on("*")
        async def _any(event: str, *args: Any) -> None:
            self.events.append((event, args[0] if args else None))

    async def connect(self, url: str, token: str) -> Client:
        await self.sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=15)
        await wait_for(lambda: self.of("snapshot"), what="snapshot")
        return self

    def of(self, event: str) -> list[Any]:
        return [d for (e, d) in self.events if e == event]

    @property
    def snapshot(self) -> dict:
        return self.of("snapshot")[-1]

    def chat_lines(self) -> list[dict]:
        """Every chat message delivered in tick batches, in order."""
        return [m for batch in self.of("tick") for m in ((batch or {}).get("chat") or [])]

    def level(self, key: str) -> Any:
        value = None
        for batch in self.of("tick"):
            levels = (batch or {}).get("levels") or {}
            if key in levels:
                value = levels[key]
        return value

    async def call(self, event: str, payload: Any = None) -> Any:
        return await self.sio.call(event, payload if payload is not None else {}, timeout=20)


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Any]]:
    """`await clients(url, token)` -> a connected Client (snapshot received); all closed afterwards."""
    made: list[Client] = []

    async def connect(url: str, token: str) -> Client:
        c = Client()
        made.append(c)
        return await c.connect(url, token)

    yield connect
    for c in made:
        if c.sio.connected:
            await c.sio.disconnect()


@pytest.fixture
async def bc(redis) -> str:
    """Broadcast "b1" hosted by "h1" with one product."""
    from shop.broadcasts import BroadcastStore

    await BroadcastStore(redis).ensure("b1", title="Chat show", host="h1", products=PRODUCTS)
    return "b1"
