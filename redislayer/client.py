"""The process's Redis client: one blocking pool of fixed size, timeouts, bounded retries, timing.

redis-py's default asyncio pool raises `MaxConnectionsError: Too many connections` the moment every
connection is busy, which under a flash-sale burst turned hundreds of buyers' answers into
`INTERNAL`. The blocking pool makes a caller wait for a connection to come back instead (bounded
by `wait_s`), and the auto-pipeline (redislayer.pipeline) keeps the number needed small.

Long blocking readers (pub/sub, XREAD BLOCK) take a connection for as long as they block: give
them their own client (`connect(..., max_connections=...)` once more) rather than the hot-path pool
when they are many; one pub/sub per process is fine inside it."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

RETRIES = 3

# fn(operation, seconds): how long one Redis round trip took (a command, or a pipeline of scripts).
RedisTimer = Callable[[str, float], None]


class PoolTimeout(RedisTimeoutError):
    """No pooled connection came free within the pool's wait: the process has more Redis work in
    flight than its connections carry. A Redis TimeoutError, so it reads as `BUSY`."""


class BoundedPool(BlockingConnectionPool):
    """A blocking pool whose give-up is a `PoolTimeout`, not a ConnectionError (which would read as
    "Redis is down")."""

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)
        except RedisConnectionError as exc:
            if isinstance(exc.__cause__, TimeoutError) and str(exc) == "No connection available.":
                raise PoolTimeout(f"no Redis connection free within {self.timeout}s "
                                  f"({self.max_connections} in use)") from None
            raise


class TimedRedis(aioredis.Redis):
    """A client that reports each command's round trip to `timer` (set after construction)."""

    timer: RedisTimer | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        timer = self.timer
        if timer is None:
            return await super().execute_command(*args, **options)
        start = time.perf_counter()
        try:
            return await super().execute_command(*args, **options)
        finally:
            name = args[0] if args else "?"
            timer(name.decode() if isinstance(name, bytes) else str(name).upper(), time.perf_counter() - start)


MODES = ("standalone", "cluster")


def connect(url: str, *, timeout_s: float = 5.0, max_connections: int = 64, wait_s: float = 2.0,
            timer: RedisTimer | None = None, mode: str = "standalone") -> TimedRedis:
    """A client on one bounded pool of `max_connections`.

    A command waits up to `wait_s` for a free connection (then `PoolTimeout`); commands retry 3
    times with backoff (50 ms doubling, capped at 1 s) on connection errors and socket timeouts
    only; a Redis error reply is never retried.

    mode 'cluster': redis-py's asyncio RedisCluster, `url` naming any node; it routes each command
    by its key's slot (keys of one lot, sale or broadcast share a hash tag), `max_connections` per
    node. Experimental (docs/scaling.md says what is verified on a cluster)."""
    if mode == "cluster":
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster.from_url(  # type: ignore[return-value]  # not a TimedRedis: callers use only commands both have
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, max_connections=max_connections,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=RETRIES),
            retry_on_error=[RedisConnectionError, RedisTimeoutError])
    if mode != "standalone":
        raise ValueError(f"redis mode {mode!r}: use one of {', '.join(MODES)}")
    pool = BoundedPool.from_url(
        url,
        max_connections=max_connections,
        timeout=wait_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=RETRIES),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    # redis-py annotates `from_pool` as returning `Redis`, but it builds `cls(...)`: a TimedRedis here
    client = cast(TimedRedis, TimedRedis.from_pool(pool))  # closing the client closes its pool
    client.timer = timer
    return client
