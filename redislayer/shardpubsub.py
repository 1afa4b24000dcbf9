"""Sharded pub/sub (Redis 7 `SSUBSCRIBE` / `SPUBLISH`) with one interface on a standalone server
and on a Redis Cluster.

Why: a classic `PUBLISH` on a Redis Cluster is copied to every node over the cluster bus, so the
pub/sub traffic of every broadcast loads every shard. A *sharded* channel belongs to the slot of its
name: `SPUBLISH` goes to the master that owns the slot and reaches only the clients subscribed on
that shard. Name a channel with the hash tag of what it is about (`hub:fan:bc:{B}`,
`inv:changed:{lot:ID}`) and its messages stay on that object's shard; a Lua script may even
`SPUBLISH` to it (Redis refuses a script that names a channel of another slot on a cluster).

On a standalone server `ShardedSubscriber` is one PubSub connection. On a cluster it is redis-py's
`ClusterPubSub` (one connection per master that owns a subscribed channel; after a slot moves,
redis-py re-subscribes on the new owner when its slot map is refreshed; a server-side
`sunsubscribe` of a channel we still want triggers that refresh here). A cluster's messages are
read by polling each shard connection without blocking every `poll_s` (10 ms by default): redis-py
reads one shard connection at a time, so a blocking read on one would hold back the others.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("redislayer.shardpubsub")

MESSAGE_TYPES = ("smessage", "message")


def is_cluster(redis: Any) -> bool:
    """Whether `redis` is redis-py's asyncio RedisCluster."""
    return hasattr(redis, "nodes_manager")


def channel(prefix: str, tag: str) -> str:
    """`prefix{tag}`: the channel hashes to the slot of everything tagged `{tag}`."""
    return f"{prefix}{{{tag}}}"


class ShardedSubscriber:
    """SSUBSCRIBE to channels and read their messages as (channel, data)."""

    def __init__(self, redis: Any, *, poll_s: float = 0.01) -> None:
        self.redis = redis
        self.cluster = is_cluster(redis)
        self.poll_s = poll_s
        self.wanted: set[str] = set()
        self._ps: Any = None
        self._refreshing: asyncio.Task[None] | None = None

    async def _pubsub(self) -> Any:
        if self._ps is None:
            if self.cluster:
                await self.redis.initialize()  # the slot map, before a channel is routed
            self._ps = self.redis.pubsub(ignore_subscribe_messages=False)
        return self._ps

    async def subscribe(self, *channels: str) -> None:
        """SSUBSCRIBE (on the shard that owns each channel)."""
        if not channels:
            return
        ps = await self._pubsub()
        await ps.ssubscribe(*channels)
        self.wanted.update(channels)

    async def unsubscribe(self, *channels: str) -> None:
        if not channels:
            return
        self.wanted.difference_update(channels)
        if self._ps is not None:
            await self._ps.sunsubscribe(*channels)

    async def get_message(self, timeout: float = 0.0) -> tuple[str, bytes] | None:
        """The next message (channel, data), waiting up to `timeout` seconds; None if none came."""
        if self._ps is None:
            if timeout:
                await asyncio.sleep(timeout)
            return None
        if not self.cluster:
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                left = max(0.0, deadline - asyncio.get_running_loop().time())
                msg = await self._ps.get_message(timeout=left)
                got = self._data(msg)
                if got is not None or msg is None or left <= 0:
                    return got
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = None
            if self._ps.node_pubsub_mapping:
                msg = await self._ps.get_sharded_message(timeout=0)
            if msg is not None:
                got = self._data(msg)
                if got is not None:
                    return got
                continue  # a (s)subscribe confirmation: look again at once
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(min(self.poll_s, max(0.0, deadline - loop.time())))

    def _data(self, msg: dict[str, Any] | None) -> tuple[str, bytes] | None:
        if msg is None:
            return None
        kind = msg.get("type")
        kind = kind.decode() if isinstance(kind, bytes) else kind
        ch = msg.get("channel")
        name = ch.decode() if isinstance(ch, bytes) else str(ch)
        if kind in MESSAGE_TYPES:
            data = msg.get("data")
            return name, data if isinstance(data, bytes) else str(data).encode()
        if kind == "sunsubscribe" and self.cluster and name in self.wanted:
            # the server dropped us (its slot moved away): refresh the slot map, which makes
            # redis-py re-subscribe the channel on its new owner
            self._refresh_slots()
        return None

    def _refresh_slots(self) -> None:
        if self._refreshing is not None and not self._refreshing.done():
            return

        async def refresh() -> None:
            try:
                await self.redis.nodes_manager.initialize()
            except Exception as exc:  # noqa: BLE001 - the next sunsubscribe or MOVED retries
                log.warning("sharded pub/sub: slot map refresh failed: %s", type(exc).__name__)

        self._refreshing = asyncio.ensure_future(refresh())

    async def aclose(self) -> None:
        ps, self._ps = self._ps, None
        if self._refreshing is not None:
            self._refreshing.cancel()
        if ps is not None:
            await ps.aclose()


async def spublish_many(redis: Any, messages: list[tuple[str, bytes]]) -> list[Any]:
    """SPUBLISH each (channel, data) in one pipeline (a cluster's pipeline sends one batch per
    master, in order per channel). Returns the subscriber counts."""
    pipe = redis.pipeline(transaction=False)
    for ch, data in messages:
        pipe.spublish(ch, data)
    return list(await pipe.execute())
