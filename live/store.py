"""The process's one Redis client: the shared bounded layer (redislayer) with this node's settings.

`create_app` calls `connect()` once and hands the client to every part (`Node.redis`); parts
share its pool instead of opening their own, so a process holds at most `max_connections` sockets
to Redis, and a burst waits for a free one (bounded by `wait_s`, then BUSY) instead of failing.
Script calls on hot paths go through `redislayer.AutoPipeline` (inventory, chat); other scripts
use redis-py's `register_script` (EVALSHA, reloaded on NOSCRIPT). Every round trip is timed into
`hawker_redis_seconds{op}`."""
from __future__ import annotations

from live.metrics import observe_redis
from redislayer import connect as _connect
from redislayer.client import RETRIES, TimedRedis

__all__ = ["RETRIES", "connect"]


def connect(url: str, *, timeout_s: float = 5.0, max_connections: int = 64, wait_s: float = 2.0,
            mode: str = "standalone", replicas_ack: int = 0, ack_timeout_ms: int = 100) -> TimedRedis:
    """A client on one bounded pool, timed into Prometheus. mode (HAWKER_REDIS_MODE): standalone,
    cluster (redis-py's asyncio RedisCluster) or sentinel (the master the sentinels name);
    replicas_ack (HAWKER_REDIS_REPLICAS_ACK): script batches that change stock or payments wait
    for that many replicas (docs/scaling.md)."""
    return _connect(url, timeout_s=timeout_s, max_connections=max_connections, wait_s=wait_s, timer=observe_redis,
                    mode=mode, replicas_ack=replicas_ack, ack_timeout_ms=ack_timeout_ms)
