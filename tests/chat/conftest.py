"""Chat fixtures: a Chat on the session's real Redis with a generous rate limit unless a test says otherwise."""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from chat import Actor, Chat, ChatPolicy

HOST = Actor("host1", "Host", "host")
MOD = Actor("mod1", "Mo", "moderator")
ALICE = Actor("alice", "Alice", "viewer")
BOB = Actor("bob", "Bob", "viewer")


@pytest.fixture
async def make_chat(redis, redis_url: str) -> AsyncIterator[Callable[..., Chat]]:  # type: ignore[no-untyped-def]
    """`make_chat(**policy)` -> a Chat on its own connection (two calls = two nodes)."""
    clients: list[aioredis.Redis] = []

    def make(**policy) -> Chat:  # type: ignore[no-untyped-def]
        client = aioredis.Redis.from_url(redis_url)
        clients.append(client)
        base = {"rate_per_s": 1000.0, "burst": 1000}
        base.update(policy)
        return Chat(client, ChatPolicy(**base))

    yield make
    for c in clients:
        await c.aclose()


@pytest.fixture
def chat(make_chat) -> Chat:  # type: ignore[no-untyped-def]
    return make_chat()
