"""The auto-pipeline's own connections (redislayer.client.TimedRedis.dedicated_pool): a burst of
script calls never waits behind plain commands for a connection of the shared pool, its
connections are open before a burst needs them, and they close with the client."""
from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from redislayer import AutoPipeline, Script, connect
from tests.conftest import CLUSTER, SENTINEL

pytestmark = pytest.mark.skipif(CLUSTER or SENTINEL, reason="a standalone client's pool (a cluster's batches use "
                                "node connections; a sentinel pool is shared to follow failovers)")

ECHO = Script("echo_arg", "return ARGV[1]")


async def _clients(redis_url: str) -> int:
    probe = aioredis.Redis.from_url(redis_url)
    try:
        return len(await probe.client_list())
    finally:
        await probe.aclose()


async def test_script_calls_are_answered_while_plain_commands_hold_every_shared_connection(redis_url: str) -> None:
    client = connect(redis_url, max_connections=4, wait_s=0.5)
    pipe = AutoPipeline(client)
    shared = client.connection_pool
    held = [await shared.get_connection() for _ in range(4)]  # payments, chat... every shared connection busy
    try:
        with pytest.raises(Exception) as exc_info:  # a plain command now waits its whole wait, then BUSY
            await client.get("k")
        assert type(exc_info.value).__name__ == "PoolTimeout"
        answers = await asyncio.gather(*(pipe.call(ECHO, ["k"], [i]) for i in range(200)))
        assert answers == [str(i).encode() for i in range(200)]
    finally:
        for conn in held:
            await shared.release(conn)
        await client.aclose()


async def test_the_dedicated_connections_are_open_after_the_first_call(redis_url: str) -> None:
    client = connect(redis_url, max_connections=16)
    pipe = AutoPipeline(client, max_inflight=6)
    try:
        before = await _clients(redis_url)
        assert await pipe.call(ECHO, ["k"], ["x"]) == b"x"
        for _ in range(100):  # the warm-up runs beside the first call
            if await _clients(redis_url) - before >= 6:
                break
            await asyncio.sleep(0.02)
        assert await _clients(redis_url) - before >= 6
        # a burst now finds them open: no new connection is made for it
        opened = await _clients(redis_url)
        await asyncio.gather(*(pipe.call(ECHO, ["k"], [i]) for i in range(6 * 64)))
        assert await _clients(redis_url) == opened
    finally:
        await client.aclose()


async def test_closing_the_client_closes_the_pipelines_connections(redis_url: str) -> None:
    before = await _clients(redis_url)
    client = connect(redis_url, max_connections=8)
    pipe = AutoPipeline(client, max_inflight=4)
    await asyncio.gather(*(pipe.call(ECHO, ["k"], [i]) for i in range(300)))
    await asyncio.sleep(0.1)
    assert await _clients(redis_url) > before
    await client.aclose()
    for _ in range(100):
        if await _clients(redis_url) == before:
            break
        await asyncio.sleep(0.02)
    assert await _clients(redis_url) == before
