"""Stock changes that do not come through a hub command (holds expiring, checkout selling, units
handed to the waitlist) reach viewers through the inventory's per-lot event stream.

One node at a time is the stock watcher (a Redis lease, renewed while it lives; another node takes
over when it dies, resuming from the per-sale cursors kept in Redis). It does work only where
something happens:
  - every inventory script that appends events SPUBLISHes the lot id on the lot's sharded channel
    `inv:changed:{lot:ID}` (its slot: on a Redis Cluster only the lot's shard carries it); the
    watcher SSUBSCRIBEs to the channels of the watched sales (the watch set is re-read every
    second; a sale that joins it is read once at once, since its wakes before that were not
    heard) and reads the events of exactly the sales that changed, each tick;
  - due holds are expired (`expire_due`, which also hands freed units to the waitlist) only for
    sales that have units held, and only once the earliest of them falls due (the script says when);
  - a slow safety sweep (every `sweep_ms`) reads every watched sale, in case a wake was lost while
    the subscription was down;
  - a sale that is sold out with nothing held and nobody waiting leaves the watch set after a
    minute (a later change wakes it again), so CPU at steady load does not grow with the number of
    sales ever run.
New events: the latest levels go out coalesced (`stock:<sale_id>`), a `waitlist_granted` becomes a
private `hold.granted` to that user on whatever node they are (claimed once per event); a
cancelled sale's `hold_cancelled` / `waitlist_cancelled` become `hold.cancelled` /
`waitlist.cancelled` to that user, the same way.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from inventory import Inventory, StockEvent, StockLevels, changed_channel
from live.periodic import Periodic
from live.sockets.sales import Sales, levels_dict, reservation_dict
from redislayer import overload_code
from redislayer.shardpubsub import ShardedSubscriber
from shop.sales import WATCH_KEY

log = logging.getLogger("hawker.hub.stock")

LEASE_KEY = "hub:stockwatch:lease"
SETTLED_LINGER_MS = 60_000  # a settled sold-out sale stays watched this long
REWATCH_MS = 15 * 60 * 1000  # a woken sale that was not watched is watched this long again
MEMBERS_EVERY_MS = 1000  # how often the watch set is re-read to follow its channels

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""


def _cursor_key(sale_id: str) -> str:
    return f"hub:sale:{{{sale_id}}}:cursor"


def stream_version(stream_id: str) -> int:
    """A stream id "ms-seq" as one growing integer (ms * 1000 + seq; safe in JavaScript)."""
    ms, _, seq = stream_id.partition("-")
    return int(ms) * 1000 + min(int(seq or 0), 999)


class StockWatch:
    def __init__(self, redis: aioredis.Redis, inventory: Inventory, sales: Sales, *, node_id: str,
                 period_ms: int = 100, expire_every_ms: int = 500, sweep_every_ms: int = 5000) -> None:
        self._r = redis
        self._inv = inventory
        self._sales = sales
        self._node = node_id
        self._period = period_ms / 1000.0
        self._expire_every = max(1, expire_every_ms // max(1, period_ms))
        self._sweep_every = max(1, sweep_every_ms // max(1, period_ms))
        self._members_every = max(1, MEMBERS_EVERY_MS // max(1, period_ms))
        self._renew = redis.register_script(_RENEW)
        self._loop = Periodic(self.round, self._period, name="stock-watch", log=log)
        self._rounds = 0
        self._leading = False
        self._pubsub: ShardedSubscriber | None = None
        self._subscribed: set[str] = set()  # sales whose wake channel we are subscribed to
        self._kept: set[str] = set()  # subscribed, out of the watch set, open (asked once)
        self._woken: set[str] = set()
        self._cursor: dict[str, str] = {}  # sale -> last event id read (mirrors Redis while leading)
        self._levels: dict[str, StockLevels] = {}  # sale -> latest levels seen
        self._next_due: dict[str, int] = {}  # sale -> when its next hold falls due (server ms)
        self.sales_read = 0  # sales whose events were read (tests and the benchmark look)
        # Other parts (checkout's webhooks) see every stock event once per watcher: fn(broadcast, event).
        self.listeners: list[Callable[[str, StockEvent], Awaitable[None]]] = []  # checkout webhooks, analytics

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self._unsubscribe()

    # ---- one tick ----------------------------------------------------------------------------------

    async def round(self) -> None:
        self._rounds += 1
        lease_ms = int(self._period * 1000 * 20) + 1000
        leading = bool(await self._renew(keys=[LEASE_KEY], args=[self._node, lease_ms]))
        if not leading:
            if self._leading:  # lost the lease: forget what another node now owns
                self._leading = False
                self._cursor.clear()
                await self._unsubscribe()
            return
        sweep = not self._leading or self._pubsub is None or self._rounds % self._sweep_every == 0
        self._leading = True
        if self._pubsub is None:
            await self._subscribe()
            sweep = True  # wakes may have been missed while not subscribed
        woken = await self._drain() | self._woken
        self._woken = set()
        todo = set(woken)
        if sweep or self._rounds % self._members_every == 0:
            watched = await self._sales.store.watched(self._sales.hub.clock.now_ms())
            todo.update(await self._follow(set(watched)))  # newly subscribed: read once
            if sweep:
                for gone in set(self._levels) - set(watched) - woken:  # left the watch set: forget it
                    self._forget(gone)
                todo.update(watched)
        expiring: set[str] = set()
        if self._rounds % self._expire_every == 0:
            now = self._sales.hub.clock.now_ms()
            expiring = {s for s in set(self._levels) | todo
                        if (self._levels.get(s) is None or self._levels[s].held > 0)
                        and self._next_due.get(s, 0) <= now}
            todo |= expiring
        if todo:
            await asyncio.gather(*(self._watch(s, expire=s in expiring, woken=s in woken) for s in todo))

    async def _subscribe(self) -> None:
        self._pubsub = ShardedSubscriber(self._r)
        self._subscribed = set()

    async def _follow(self, watched: set[str]) -> set[str]:
        """Subscribe to the wake channels of the watched sales, leave the others. Returns the
        sales newly subscribed (their earlier wakes were not heard)."""
        if self._pubsub is None:
            return set()
        new, old = watched - self._subscribed, self._subscribed - watched - self._kept
        self._kept &= self._subscribed - watched  # back in the watch set: asked again when it leaves
        try:
            for sale in [s for s in old if not await self._finished(s)]:  # settled open: may change again
                self._kept.add(sale)
                old.discard(sale)
            if old:
                await self._pubsub.unsubscribe(*(changed_channel(s) for s in old))
                self._subscribed -= old
            for sale in new:  # one by one: each channel is in its own slot
                await self._pubsub.subscribe(changed_channel(sale))
                self._subscribed.add(sale)
        except Exception as exc:  # noqa: BLE001 - resubscribe next tick; the sweep covers the gap
            log.warning("stock watcher: subscribe failed: %s", type(exc).__name__)
            await self._unsubscribe()
        return new

    async def _finished(self, sale_id: str) -> bool:
        """Closed, cancelled or gone: no stock change can come any more (asked once, when the sale
        leaves the watch set). An open sale that settled (sold out, nothing held) stays subscribed,
        so a later change (more stock) wakes it, as the old single channel did."""
        lot = await self._inv.get_lot(sale_id)
        return lot is None or lot.state.value in ("CLOSED", "CANCELLED")

    async def _unsubscribe(self) -> None:
        ps, self._pubsub = self._pubsub, None
        self._subscribed, self._kept = set(), set()
        if ps is not None:
            try:
                await ps.aclose()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail; it is dropped either way
                log.debug("stock watcher: pubsub close failed", exc_info=True)

    async def _drain(self, limit: int = 10_000) -> set[str]:
        """Lot ids published since the last tick (without waiting)."""
        woken: set[str] = set()
        if self._pubsub is None:
            return woken
        try:
            for _ in range(limit):
                msg = await self._pubsub.get_message(timeout=0)
                if msg is None:
                    break
                data = msg[1]
                if isinstance(data, bytes):
                    woken.add(data.decode(errors="replace"))
        except Exception as exc:  # noqa: BLE001 - resubscribe next tick and sweep
            log.warning("stock watcher: subscription lost: %s", type(exc).__name__)
            await self._unsubscribe()
        return woken

    # ---- one sale ----------------------------------------------------------------------------------

    async def _watch(self, sale_id: str, *, expire: bool, woken: bool) -> None:
        try:
            await self._watch_sale(sale_id, expire=expire, woken=woken)
        except Exception as exc:  # noqa: BLE001 - one sale's failure must not stop the others
            if overload_code(exc) is None:
                log.exception("stock watcher: sale %s failed", sale_id)
            else:
                log.warning("stock watcher: sale %s: %s", sale_id, type(exc).__name__)
            self._woken_again(sale_id)

    def _woken_again(self, sale_id: str) -> None:
        """Try this sale again next tick (its wake was consumed)."""
        self._woken.add(sale_id)

    async def _watch_sale(self, sale_id: str, *, expire: bool, woken: bool) -> None:
        broadcast = await self._sales.store.broadcast_of(sale_id)
        if broadcast is None:
            self._forget(sale_id)
            return
        if expire:  # and learn when the next hold falls due: no call for it before then
            _, nxt = await self._inv.expire_due_next(sale_id)
            self._next_due[sale_id] = nxt if nxt is not None else 2**62
        cursor = self._cursor.get(sale_id)
        if cursor is None:
            stored = await self._r.get(_cursor_key(sale_id))
            cursor = (stored.decode() if isinstance(stored, bytes) else stored) or "0-0"
        self.sales_read += 1
        events = await self._inv.read_events(sale_id, after_id=cursor, count=500)
        if not events:
            self._cursor[sale_id] = cursor
            if sale_id not in self._levels:
                lv = await self._inv.snapshot(sale_id)
                if lv is None:
                    self._forget(sale_id)
                    return
                self._levels[sale_id] = lv
            await self._maybe_settle(sale_id)
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
        last = events[-1]
        self._next_due.pop(sale_id, None)  # holds made, extended or paid: ask again at the next expiry round
        await self._r.set(_cursor_key(sale_id), last.id, ex=24 * 3600)
        self._cursor[sale_id] = last.id
        self._levels[sale_id] = last.levels
        if woken:  # activity: keep it watched (expiry needs it) even if it had left the set
            await self._r.zadd(WATCH_KEY, {sale_id: self._sales.hub.clock.now_ms() + REWATCH_MS}, gt=True)
        await self._sales.publish_levels(sale_id, broadcast, last.levels, version=stream_version(last.id))
        if len(events) == 500:
            self._woken_again(sale_id)  # more to read next tick
        await self._maybe_settle(sale_id)

    async def _maybe_settle(self, sale_id: str) -> None:
        """Sold out, nothing held, nobody waiting: nothing can change by itself any more."""
        lv = self._levels.get(sale_id)
        if lv is None or lv.total <= 0 or lv.available or lv.held or lv.waitlist:
            return
        until = self._sales.hub.clock.now_ms() + SETTLED_LINGER_MS
        await self._r.zadd(WATCH_KEY, {sale_id: until}, xx=True, lt=True)

    def _forget(self, sale_id: str) -> None:
        self._cursor.pop(sale_id, None)
        self._levels.pop(sale_id, None)
        self._next_due.pop(sale_id, None)

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
