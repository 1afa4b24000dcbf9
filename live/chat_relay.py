"""Chat overload for a fan-out engine that cannot sample: the chat wiring does it at the source.

Used only when the engine takes no `ChatSampler` (see `live.chat_events._attach_sampler`). Every
node counts the messages its senders post and adds them, once per tick, to a per-second counter in
Redis; the sum over the last second is the broadcast's inbound rate. While it is at most
`overload_rate`, messages go to `fanout.chat` at once, as usual. Above it, a node holds its messages
for the tick and then:
  * claims up to K slots of the current tick window from a shared Redis counter (so all nodes
    together hand the engine at most K lines per window), keeping staff/system lines first and
    spreading the rest, and passes the chosen ones to `fanout.chat` (everyone sees them);
  * publishes the rest on `hawker:chat:staff:<broadcast>`, which every node relays to its own
    host/moderator sockets as `chat.staff` {"messages": [...]} - so staff, merging `tick.chat`
    and `chat.staff` by id, get every line.
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

import orjson

from chat.overload import OverloadPolicy, _always_kept, sample

log = logging.getLogger("hawker.chat")

CHANNEL = "hawker:chat:staff:"


def staff_room(broadcast: str) -> str:
    return f"chat-staff:{broadcast}"


class ChatRelay:
    def __init__(self, *, hub: Any, redis: Any, policy: OverloadPolicy, tick_ms: int) -> None:
        self.hub = hub
        self.redis = redis
        self.policy = policy
        self.tick_ms = max(10, tick_ms)
        self._counts: dict[str, int] = defaultdict(int)
        self._held: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._overloaded: set[str] = set()
        self._pubsub: Any = None
        self._tasks: list[asyncio.Task] = []

    # ---- the send path -------------------------------------------------------------------------

    def post(self, broadcast: str, message: dict[str, Any]) -> None:
        self._counts[broadcast] += 1
        if broadcast in self._overloaded:
            self._held[broadcast].append(message)
        else:
            self.hub.fanout.chat(broadcast, message)

    def overloaded(self, broadcast: str) -> bool:
        return broadcast in self._overloaded

    # ---- once per tick -------------------------------------------------------------------------

    async def tick(self) -> None:
        now = self.hub.clock.now_ms()
        sec = now // 1000
        busy = set(self._counts) | self._overloaded
        counts, self._counts = self._counts, defaultdict(int)
        for bc in busy:
            try:
                await self._tick_one(bc, counts.get(bc, 0), now, sec)
            except Exception:  # noqa: BLE001 - never lose held lines: hand them to the engine
                log.warning("chat relay tick failed", exc_info=True)
                for m in self._held.pop(bc, []):
                    self.hub.fanout.chat(bc, m)

    async def _tick_one(self, bc: str, n: int, now: int, sec: int) -> None:
        base = "chat:{" + bc + "}:"
        pipe = self.redis.pipeline(transaction=False)
        pipe.incrby(f"{base}in:{sec}", n)
        pipe.pexpire(f"{base}in:{sec}", 3000)
        pipe.get(f"{base}in:{sec - 1}")
        cur, _, prev = await pipe.execute()
        rate = max(int(prev or 0), int(cur))  # more than R lines within this second is > R/s already
        if self.policy.sampling(rate):
            self._overloaded.add(bc)
        else:
            self._overloaded.discard(bc)
        held = self._held.pop(bc, [])
        if not held:
            return
        window = now // self.tick_ms
        key = f"{base}k:{window}"
        pipe = self.redis.pipeline(transaction=False)
        pipe.incrby(key, len(held))
        pipe.pexpire(key, self.tick_ms * 4)
        total, _ = await pipe.execute()
        room = max(0, min(len(held), self.policy.k - (int(total) - len(held))))
        chosen = sample(held, room, keep=_always_kept) if room else []
        picked = {id(m) for m in chosen}
        for m in chosen:
            self.hub.fanout.chat(bc, m)
        rest = [m for m in held if id(m) not in picked]
        if rest:
            await self.redis.publish(CHANNEL + bc, orjson.dumps({"messages": rest}))

    # ---- staff relay ---------------------------------------------------------------------------

    async def join(self, caller: Any) -> None:
        if caller.is_staff:
            await self.hub.sio.enter_room(caller.sid, staff_room(caller.broadcast))

    async def _listen(self) -> None:
        async for msg in self._pubsub.listen():
            if msg.get("type") != "pmessage":
                continue
            try:
                bc = msg["channel"].decode()[len(CHANNEL):]
                if any(c.is_staff for c in self.hub.callers(bc)):
                    await self.hub.sio.emit("chat.staff", orjson.loads(msg["data"]), room=staff_room(bc))
            except Exception:  # noqa: BLE001 - one bad message must not stop the relay
                log.warning("chat staff relay failed", exc_info=True)

    async def start(self) -> None:
        self._pubsub = self.redis.pubsub()
        await self._pubsub.psubscribe(CHANNEL + "*")
        self._tasks = [asyncio.create_task(self._listen())]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self._pubsub is not None:
            try:
                await self._pubsub.aclose()
            except Exception:  # noqa: BLE001 - closing a dead subscription must not fail shutdown
                pass
