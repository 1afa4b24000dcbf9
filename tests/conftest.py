"""Shared fixtures: a real redis-server for the session, a clean database per test."""
from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from live.config import Config
from tests.redis_proc import RedisClusterProcess, RedisProcess, RedisSentinelProcess, free_port, redis_test_mode

CLUSTER = redis_test_mode() == "cluster"
SENTINEL = redis_test_mode() == "sentinel"


@pytest.fixture(scope="session")
def redis_proc() -> Iterator[RedisProcess]:
    """The session's server: HAWKER_TEST_REDIS picks system (default), embedded, cluster or
    sentinel (its `url` is the master's)."""
    if CLUSTER:
        proc: Any = RedisClusterProcess().start()
    elif SENTINEL:
        proc = RedisSentinelProcess(replicas=1).start()
    else:
        proc = RedisProcess().start()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="session")
def redis_url(redis_proc: RedisProcess) -> str:
    return redis_proc.url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client on a flushed database: each test starts from nothing (every primary of a cluster)."""
    if CLUSTER:
        from redis.asyncio.cluster import RedisCluster

        cluster = RedisCluster.from_url(redis_url)
        await cluster.flushall(target_nodes=RedisCluster.PRIMARIES)
        yield cluster
        await cluster.aclose()
        return
    client = aioredis.Redis.from_url(redis_url)
    await client.flushall()
    yield client
    await client.aclose()


# --- running servers ---------------------------------------------------------------------------


TEST_SECRET = "test-secret-for-hawker-tests-0123456789"


@dataclasses.dataclass
class RunningServer:
    """One Hawker node served on loopback inside the test's event loop."""

    app: web.Application
    runner: web.AppRunner
    url: str
    config: Config

    async def stop(self) -> None:
        await self.runner.cleanup()


@pytest.fixture
def config(redis_url: str, redis_proc) -> Config:
    """A node's settings; under HAWKER_TEST_REDIS=sentinel it reaches Redis through the sentinels
    and waits for the replica on every stock or payment change."""
    if SENTINEL:
        return Config(redis_url=redis_proc.sentinel_url, redis_mode="sentinel", redis_replicas_ack=1,
                      redis_replicas_ack_timeout_ms=1000, secret=TEST_SECRET, tick_ms=50, payment_provider="sandbox")
    return Config(redis_url=redis_url, secret=TEST_SECRET, tick_ms=50, payment_provider="sandbox",
                  redis_mode="cluster" if CLUSTER else "standalone")


@pytest.fixture
async def make_server(config: Config, redis) -> AsyncIterator:
    """Factory: `await make_server(**config_changes)` starts a node; all are stopped after the test.
    Two calls give two nodes that meet in the same Redis."""
    from live.app import create_app

    started: list[RunningServer] = []

    async def start(**changes) -> RunningServer:
        cfg = config.with_(port=free_port(), **changes)
        app = create_app(cfg)
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", cfg.port).start()
        server = RunningServer(app, runner, f"http://127.0.0.1:{cfg.port}", cfg)
        started.append(server)
        return server

    yield start
    for s in reversed(started):
        await s.stop()


@pytest.fixture
async def server(make_server) -> RunningServer:
    return await make_server()


@pytest.fixture
def token():
    """`token(role, broadcast, sub)` -> a JWT signed with the test secret."""
    from live.auth import mint

    def make(role: str = "viewer", broadcast: str = "b1", sub: str = "u1", **kw) -> str:
        return mint(TEST_SECRET, sub=sub, role=role, broadcast=broadcast, **kw)

    return make
