"""The process's one Redis connection pool, with timeouts and a bounded retry policy.

`create_app` calls `connect()` once and hands the client to every part (`Services.redis`); parts
share its pool instead of opening their own, so a process holds at most `max_connections` sockets
to Redis. Blocking readers (pub/sub, XREAD BLOCK) take a connection of that pool for as long as
they block.

Lua scripts: the chosen mechanism is redis-py's own `client.register_script(source)`. It returns a
callable `Script` that sends EVALSHA and, on a NOSCRIPT reply (a restarted or flushed Redis, a
failover), loads the script and retries - the registry the domain packages need, without
importing anything of ours. Keep a package's scripts in one module (e.g. inventory/lua.py) and
register them once per client in the package's constructor. Inside a pipeline a Script is
loaded before the pipeline runs. The inventory package builds its own loader on top of
EVALSHA for auto-pipelining (see inventory/core.py); it follows the same NOSCRIPT rule."""
from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError

RETRIES = 3


MODES = ("standalone", "cluster")


def connect(url: str, *, timeout_s: float = 5.0, max_connections: int = 256,
            mode: str = "standalone") -> aioredis.Redis:
    """A client on one pool. Commands retry 3 times with backoff (50 ms doubling, capped at 1 s) on
    connection errors and timeouts only; a Redis error reply is never retried.

    mode 'cluster' (HAWKER_REDIS_MODE): redis-py's asyncio RedisCluster, `url` naming any node; it
    routes each command by its key's slot (keys of one lot, sale or broadcast share a hash tag),
    `max_connections` per node. Experimental: see docs/scaling.md for what is verified on a cluster."""
    if mode == "cluster":
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster.from_url(  # type: ignore[return-value]
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, max_connections=max_connections,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=RETRIES),
            retry_on_error=[RedisConnectionError, RedisTimeoutError])
    if mode != "standalone":
        raise ValueError(f"redis mode {mode!r}: use one of {', '.join(MODES)}")
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
        max_connections=max_connections,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=RETRIES),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
