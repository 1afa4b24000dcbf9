"""A node's link to the other nodes through Redis, for the fan-out engine (engine.py): the ordered
outbox and its one publisher task, the node's sharded subscriptions and what arrives on them, and
the per-broadcast viewer counts every node refreshes in a shared hash."""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import msgpack
import redis.asyncio as aioredis

from live.fanout import metrics
from redislayer.shardpubsub import channel, spublish_many

log = logging.getLogger("hawker.fanout")

CHANNEL = "hub:fan:bc:"  # + "{<broadcast>}": a sharded channel in the broadcast's slot
VIEWERS = "hub:fan:viewers:"
NODE_CHANNEL = "hub:fan:node:"  # + "{<node id>}"


def bc_channel(broadcast: str) -> str:
    """The broadcast's sharded channel (hash tag = the broadcast id)."""
    return channel(CHANNEL, broadcast)


SEQ = "v"  # a level value (a dict) with an int "v" is versioned: a lower one never replaces a higher (docs/protocol.md)


def supersedes(new: Any, old: Any) -> bool:
    """Whether `new` may replace `old` as a level's value: always, unless both are versioned and
    `new` is older (two nodes' totals can arrive in either order)."""
    if isinstance(new, dict) and isinstance(old, dict):
        n, o = new.get(SEQ), old.get(SEQ)
        if isinstance(n, int) and isinstance(o, int):
            return n >= o
    return True


def put_level(levels: dict[str, Any], key: str, value: Any) -> None:
    if key not in levels or supersedes(value, levels[key]):
        levels[key] = value


class Batch:
    """One tick's coalesced input of a broadcast: chat in order, hearts summed, levels latest-wins
    (a versioned level: highest `v` wins)."""

    __slots__ = ("chat", "hearts", "levels")

    def __init__(self) -> None:
        self.chat: list[Any] = []
        self.hearts = 0
        self.levels: dict[str, Any] = {}

    def merge(self, chat: list[Any] | None, hearts: int | None, levels: dict[str, Any] | None) -> None:
        if chat:
            self.chat.extend(chat)
        if hearts:
            self.hearts += hearts
        if levels:
            for key, value in levels.items():
                put_level(self.levels, key, value)

    def empty(self) -> bool:
        return not (self.chat or self.hearts or self.levels)



class Relay:
    """The Redis side of Fanout (which sets these attributes and delivers what arrives)."""

    redis: aioredis.Redis
    node_id: str
    clock: Any
    viewers_ttl_ms: int
    max_outbox: int
    _rooms: dict[str, Any]
    _gone: set[str]
    _totals: dict[str, tuple[int, int]]
    _inbound: dict[str, Batch]
    _outbox: deque[tuple[str, bytes, str]]
    _out_wake: asyncio.Event
    _pubsub: Any
    _node_subscribed: bool
    _running: bool

    def _deliver_event(self, broadcast: str, event: str, data: Any) -> None:
        raise NotImplementedError

    def _deliver_user(self, broadcast: str, user: str, event: str, data: Any) -> None:
        raise NotImplementedError

    async def _refresh_viewers(self) -> None:
        if not self._rooms and not self._gone:
            return
        now = self.clock()
        names = list(self._rooms)
        counts = [self._rooms[bc].count for bc in names]
        pipe = self.redis.pipeline(transaction=False)
        for bc in self._gone:
            pipe.hdel(VIEWERS + bc, self.node_id)
        gone = len(self._gone)
        self._gone = set()
        for bc, c in zip(names, counts):
            key = VIEWERS + bc
            pipe.hset(key, self.node_id, f"{c}:{now}")
            pipe.pexpire(key, self.viewers_ttl_ms * 2)
            pipe.hgetall(key)
        res = await pipe.execute()
        stale_pipe = None
        for i, (bc, c) in enumerate(zip(names, counts)):
            fields = res[gone + 3 * i + 2] or {}
            total = 0
            for node, raw in fields.items():
                try:
                    cnt, at = raw.split(b":")
                    if now - int(at) <= self.viewers_ttl_ms:
                        total += int(cnt)
                        continue
                except ValueError:
                    pass
                stale_pipe = stale_pipe or self.redis.pipeline(transaction=False)
                stale_pipe.hdel(VIEWERS + bc, node)
            self._totals[bc] = (total, c)
        for bc in list(self._totals):
            if bc not in self._rooms:
                del self._totals[bc]
        if stale_pipe is not None:
            await stale_pipe.execute()

    def _publish(self, broadcast: str, msg: dict[str, Any], kind: str) -> None:
        if len(self._outbox) >= self.max_outbox:
            log.warning("fan-out outbox full: dropping a %s message for %s", kind, broadcast)
            return
        self._outbox.append((bc_channel(broadcast), msgpack.packb(msg), kind))
        self._out_wake.set()

    async def _publisher(self) -> None:
        """One task, one pipeline per wake-up: this node's messages reach Redis in order."""
        while self._running:
            await self._out_wake.wait()
            self._out_wake.clear()
            while self._outbox:
                items: list[tuple[str, bytes, str]] = []
                while self._outbox and len(items) < 500:
                    items.append(self._outbox.popleft())
                try:
                    await spublish_many(self.redis, [(ch, data) for ch, data, _kind in items])
                    for _ch, _d, kind in items:
                        metrics.PUBLISHED.labels(kind).inc()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - Redis away: these are lost (logged), the publisher goes on
                    log.warning("fan-out publish failed (%d messages lost)", len(items), exc_info=True)
                    await asyncio.sleep(0.5)

    async def _subscribe_node(self) -> bool:
        """The node's own channel, always subscribed so listen() never idles out. Redis may be away
        when the node starts: then the node still starts (/readyz says 503) and _listen retries."""
        try:
            await self._pubsub.subscribe(channel(NODE_CHANNEL, self.node_id))
            self._node_subscribed = True
        except Exception:  # noqa: BLE001 - Redis away at start: the node starts, _listen retries
            log.warning("fan-out: Redis unavailable; subscribing when it is back")
            self._node_subscribed = False
        return self._node_subscribed

    async def _listen(self) -> None:
        while self._running:
            if not self._node_subscribed and not await self._subscribe_node():
                await asyncio.sleep(0.5)
                continue
            try:
                msg = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a broken subscription is retried, never fatal
                log.warning("fan-out subscription failed; retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if msg is None:
                continue
            try:
                self._on_message(*msg)
            except Exception:  # noqa: BLE001 - one bad message must not stop the listener
                log.warning("bad fan-out message", exc_info=True)

    def _on_message(self, ch: str, data: bytes) -> None:
        if not (ch.startswith(CHANNEL + "{") and ch.endswith("}")):
            return
        bc = ch[len(CHANNEL) + 1:-1]
        m = msgpack.unpackb(data)
        if m.get("n") == self.node_id or bc not in self._rooms:
            return
        kind = m.get("k")
        if kind == "t":
            b = self._inbound.get(bc)
            if b is None:
                b = self._inbound[bc] = Batch()
            b.merge(m.get("c"), m.get("h"), m.get("l"))
        elif kind == "u":
            self._deliver_event(bc, m["e"], m.get("d"))
        elif kind == "p":
            self._deliver_user(bc, m["u"], m["e"], m.get("d"))
