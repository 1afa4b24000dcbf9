"""A plain stand-in with the `live.fanout.Fanout` interface, used only while live.fanout is absent.

It is correct but not fast: one Redis pub/sub channel per broadcast carrying JSON, delivered with
stock `sio.emit(room=...)`. The real engine (live/fanout/) replaces it as soon as it is importable."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
import redis.asyncio as aioredis
import socketio

log = logging.getLogger("hawker.hub.fanout")

PREFIX = "hub:fan:"


class InterimFanout:
    def __init__(self, sio: socketio.AsyncServer, redis: aioredis.Redis, *, node_id: str, tick_ms: int = 100) -> None:
        self._sio = sio
        self._r = redis
        self._node = node_id
        self._tick = tick_ms / 1000.0
        self._members: dict[str, tuple[str, str | None]] = {}
        self._count: dict[str, int] = {}
        self._viewers: dict[str, int] = {}
        self._batch: dict[str, dict[str, Any]] = {}
        self._tasks: list[asyncio.Task] = []
        self._pubsub: Any = None
        self._out: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=100_000)

    async def start(self) -> None:
        self._pubsub = self._r.pubsub()
        await self._pubsub.psubscribe(PREFIX + "*")
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._ticker()),
                       asyncio.create_task(self._publisher())]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self._pubsub is not None:
            try:
                await self._pubsub.aclose()
            except Exception:  # noqa: BLE001
                pass

    async def join(self, sid: str, broadcast: str, *, staff: bool = False, user: str | None = None) -> None:
        self._members[sid] = (broadcast, user)
        await self._sio.enter_room(sid, f"bc:{broadcast}")
        if user:
            await self._sio.enter_room(sid, f"u:{broadcast}:{user}")
        self._count[broadcast] = self._count.get(broadcast, 0) + 1

    async def leave(self, sid: str) -> None:
        bc, _ = self._members.pop(sid, (None, None))
        if bc is not None:
            self._count[bc] = max(0, self._count.get(bc, 0) - 1)

    def _publish(self, broadcast: str, msg: dict[str, Any]) -> None:
        self._out.put_nowait((PREFIX + broadcast, orjson.dumps(msg)))  # one publisher: order kept

    async def _publisher(self) -> None:
        while True:
            channel, data = await self._out.get()
            try:
                await self._r.publish(channel, data)
            except Exception:  # noqa: BLE001
                log.warning("interim fanout publish failed", exc_info=True)

    def urgent(self, broadcast: str, event: str, data: Any) -> None:
        self._publish(broadcast, {"k": "u", "e": event, "d": data})

    def to_user(self, broadcast: str, user: str, event: str, data: Any) -> None:
        self._publish(broadcast, {"k": "p", "u": user, "e": event, "d": data})

    def _b(self, broadcast: str) -> dict[str, Any]:
        return self._batch.setdefault(broadcast, {"chat": [], "hearts": 0, "levels": {}})

    def chat(self, broadcast: str, message: dict) -> None:
        self._b(broadcast)["chat"].append(message)

    def hearts(self, broadcast: str, n: int = 1) -> None:
        self._b(broadcast)["hearts"] += n

    def level(self, broadcast: str, key: str, value: Any) -> None:
        self._b(broadcast)["levels"][key] = value

    def viewer_count(self, broadcast: str) -> int:
        return max(self._viewers.get(broadcast, 0), self._count.get(broadcast, 0))

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            try:
                now = int(time.time() * 1000)
                for bc, n in list(self._count.items()):
                    key = f"{PREFIX}viewers:{bc}"
                    await self._r.hset(key, self._node, f"{n}:{now}")
                    counts = await self._r.hgetall(key)
                    total = 0
                    for raw in counts.values():
                        c, at = raw.decode().split(":")
                        if now - int(at) < 5000:
                            total += int(c)
                    self._viewers[bc] = total
                batch, self._batch = self._batch, {}
                for bc, b in batch.items():
                    self._publish(bc, {"k": "t", "d": {"ts": now, **b, "viewers": self._viewers.get(bc, 0)}})
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.warning("interim fanout tick failed", exc_info=True)

    async def _listen(self) -> None:
        async for msg in self._pubsub.listen():
            if msg.get("type") != "pmessage":
                continue
            try:
                bc = msg["channel"].decode()[len(PREFIX):]
                if bc not in self._count or not self._count[bc]:
                    continue
                m = orjson.loads(msg["data"])
                if m["k"] == "u":
                    await self._sio.emit(m["e"], m["d"], room=f"bc:{bc}")
                elif m["k"] == "p":
                    await self._sio.emit(m["e"], m["d"], room=f"u:{bc}:{m['u']}")
                elif m["k"] == "t":
                    await self._sio.emit("tick", m["d"], room=f"bc:{bc}")
            except Exception:  # noqa: BLE001
                log.warning("interim fanout delivery failed", exc_info=True)
