"""Stock changes that do not come through a hub command (holds expiring, checkout selling, units
handed to the waitlist) reach viewers through the inventory's per-lot event stream.

One node at a time watches a sale (a Redis lease, renewed while it lives; another node takes over
when it dies, resuming from the cursor kept in Redis). The watcher, every `period_ms`:
  - expires due holds (`expire_due`), which is what hands freed units to the waitlist;
  - reads new events: the latest levels go out coalesced (`stock:<sale_id>`), a `waitlist_granted`
    becomes a private `hold.granted` to that user on whatever node they are (claimed once per event);
    a cancelled sale's `hold_cancelled` / `waitlist_cancelled` become `hold.cancelled` /
    `waitlist.cancelled` to that user, the same way.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

import redis.asyncio as aioredis
from inventory import Inventory

from live.periodic import Periodic
from live.hub.cmd_sales import Sales, levels_dict, reservation_dict

log = logging.getLogger("hawker.hub.stock")

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""


def _lease_key(sale_id: str) -> str:
    return f"hub:sale:{{{sale_id}}}:watcher"


def _cursor_key(sale_id: str) -> str:
    return f"hub:sale:{{{sale_id}}}:cursor"


def stream_version(stream_id: str) -> int:
    """A stream id "ms-seq" as one growing integer (ms * 1000 + seq; safe in JavaScript)."""
    ms, _, seq = stream_id.partition("-")
    return int(ms) * 1000 + min(int(seq or 0), 999)


class StockWatch:
    def __init__(self, redis: aioredis.Redis, inventory: Inventory, sales: Sales, *, node_id: str,
                 period_ms: int = 100, expire_every_ms: int = 500) -> None:
        self._r = redis
        self._inv = inventory
        self._sales = sales
        self._node = node_id
        self._period = period_ms / 1000.0
        self._expire_every = max(1, expire_every_ms // max(1, period_ms))
        self._renew = redis.register_script(_RENEW)
        self._loop = Periodic(self.round, self._period, name="stock-watch", log=log)
        self._rounds = 0
        # Other parts (checkout's webhooks) see every stock event once per watcher: fn(broadcast, event).
        self.listeners: list[Callable[[str, Any], Awaitable[None]]] = []

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def round(self) -> None:
        self._rounds += 1
        sale_ids = await self._sales.store.watched(self._sales.hub.clock.now_ms())
        lease_ms = int(self._period * 1000 * 20) + 1000
        mine = []
        for sale_id in sale_ids:
            if await self._renew(keys=[_lease_key(sale_id)], args=[self._node, lease_ms]):
                mine.append(sale_id)
        if mine:
            await asyncio.gather(*(self._watch(s) for s in mine))

    async def _watch(self, sale_id: str) -> None:
        if self._rounds % self._expire_every == 0:
            await self._inv.expire_due(sale_id)
        broadcast = await self._sales.store.broadcast_of(sale_id)
        if broadcast is None:
            return
        cursor = (await self._r.get(_cursor_key(sale_id)) or b"0-0").decode()
        events = await self._inv.read_events(sale_id, after_id=cursor, count=500)
        if not events:
            return
        for ev in events:
            if ev.type == "waitlist_granted":
                await self._grant(broadcast, sale_id, ev)
            elif ev.type in ("hold_cancelled", "waitlist_cancelled"):
                await self._tell_cancelled(broadcast, sale_id, ev)
            for listener in self.listeners:
                try:
                    await listener(broadcast, ev)
                except Exception:  # noqa: BLE001 - a listener must not stop the stock feed
                    log.warning("stock event listener failed", exc_info=True)
        await self._r.set(_cursor_key(sale_id), events[-1].id, ex=24 * 3600)
        await self._sales.publish_levels(sale_id, broadcast, events[-1].levels, version=stream_version(events[-1].id))

    async def _tell_cancelled(self, broadcast: str, sale_id: str, ev: Any) -> None:
        user = ev.data.get("user")
        if not user or not await self._r.set(f"hub:sale:{{{sale_id}}}:told:{ev.id}", 1, nx=True, ex=24 * 3600):
            return
        if ev.type == "hold_cancelled":
            reservation = await self._inv.get_reservation(sale_id, ev.data.get("reservation", ""))
            self._sales.hub.fanout.to_user(broadcast, user, "hold.cancelled", {
                "sale_id": sale_id, "reservation": reservation_dict(reservation), "at": ev.at_ms,
                "levels": levels_dict(ev.levels)})
        else:
            self._sales.hub.fanout.to_user(broadcast, user, "waitlist.cancelled", {"sale_id": sale_id, "at": ev.at_ms})

    async def _grant(self, broadcast: str, sale_id: str, ev: Any) -> None:
        user = ev.data.get("user")
        if not user:
            return
        if not await self._r.set(f"hub:sale:{{{sale_id}}}:granted:{ev.id}", 1, nx=True, ex=24 * 3600):
            return  # another watcher already told them
        reservation = await self._inv.get_reservation(sale_id, ev.data.get("reservation", ""))
        self._sales.hub.fanout.to_user(broadcast, user, "hold.granted", {
            "sale_id": sale_id, "reservation": reservation_dict(reservation), "at": ev.at_ms,
            "levels": levels_dict(ev.levels)})
