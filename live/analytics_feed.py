"""Feeding the analytics part (analytics/) from the running node. Its handlers: the report
(live/rest/analytics.py) and `proof.names` plus the counted acks (live/sockets/analytics.py).

Nothing here adds a Redis round trip to a hot path: the hub's events only update the in-memory
`Tally`, and one `Periodic` flushes it every `analytics_flush_ms` in ONE pipeline.
  - joins / leaves: the hub's join and leave hooks (viewer role only: staff are not audience);
  - chat lines, hearts, poll votes: the acks of `chat.send`, `react` (heart), `hearts` and `poll.vote`,
    seen by wrapping those commands once at registration (`COUNTED`; their modules are untouched);
  - reserves, waitlist, holds expired / paid: the stock watcher's per-sale event feed (one node
    reads each stock event; the store's cursor counts each once even across a watcher handover);
  - orders and refunds: the order ledger's event stream, read by the consumer group `analytics`
    (each entry to one node; the store's `seen` set counts each order event once).

"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from analytics import AnalyticsStore, OrderFact, StockFact, Tally
from inventory import StockEvent
from live.config import Config
from live.hub.hub import Hub
from live.hub.registry import Caller
from live.periodic import Periodic
from live.sockets.sales import Sales

log = logging.getLogger("hawker.analytics")

ORDER_STREAM = "orders:events"  # checkout.ledger.EVENTS_KEY
GROUP = "analytics"
PROOF_MAX_AGE_MS = 60_000  # an order older than this (a backlog after a restart) is no longer news
MAX_BUFFERED_STOCK = 200_000  # stock facts kept while Redis is away; past it the oldest are dropped
STOCK_TYPES = {"reserved", "waitlist_joined", "waitlist_granted", "expired", "released", "sold"}


class AnalyticsFeed:
    def __init__(self, cfg: Config, redis: aioredis.Redis, hub: Hub, sales: Sales) -> None:
        self.hub = hub
        self.redis = redis
        self.sales = sales
        self.tally = Tally()
        self.store = AnalyticsStore(self.redis, ttl_s=cfg.analytics_ttl_days * 24 * 3600)
        self.flush_s = max(0.05, cfg.analytics_flush_ms / 1000)
        self.consumer = self.hub.node_id
        self._joined: dict[str, int] = {}  # sid -> joined at (server ms)
        self._stock: list[StockFact] = []
        self._group_ready = False
        self._loop = Periodic(self.flush, self.flush_s, name="analytics-flush", log=log, first_delay=True)
        self.flushes = 0

    def now(self) -> int:
        return int(self.hub.clock.now_ms())

    # ---- feeding (in memory only) ------------------------------------------------------------------

    async def on_join(self, caller: Caller) -> None:
        # a socket that left before its welcome ran must not be counted as watching forever
        if caller.role != "viewer" or self.hub.caller(caller.sid) is None:
            return
        now = self.now()
        self._joined[caller.sid] = now
        self.tally.joined(caller.broadcast, caller.user, now)

    async def on_leave(self, caller: Caller) -> None:
        since = self._joined.pop(caller.sid, None)
        if since is not None:
            self.tally.left(caller.broadcast, since, self.now())

    async def on_stock_event(self, broadcast: str, ev: StockEvent) -> None:
        if ev.type in STOCK_TYPES:
            try:
                qty = int(ev.data.get("qty", 0) or 0)
            except ValueError:
                qty = 0
            self._stock.append(StockFact(broadcast, ev.lot_id, ev.id, ev.type, ev.at_ms, qty, ev.data.get("user", "")))
            if len(self._stock) > MAX_BUFFERED_STOCK:
                log.warning("analytics: %d stock events waiting for Redis; dropping the oldest", len(self._stock))
                del self._stock[: len(self._stock) - MAX_BUFFERED_STOCK]

    def watch_command(self, event: str, count: Callable[[dict, dict], tuple[str, int] | None]) -> None:
        """Count a command's successful acks: `count(payload, ack)` -> (metric, n) or None."""
        registry = self.hub.registry
        cmd = registry.commands.get(event)
        if cmd is None:
            log.warning("analytics: no command %s to count", event)
            return
        inner = cmd.handler
        tally, now = self.tally, self.now

        async def counted(caller: Any, payload: dict) -> Any:
            result = await inner(caller, payload)
            got = count(payload, result or {})
            if got is not None:
                tally.add(caller.broadcast, got[0], now(), got[1])
            return result

        registry.commands[event] = dataclasses.replace(cmd, handler=counted)

    # ---- flushing ------------------------------------------------------------------------------------

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self.redis.xgroup_create(ORDER_STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _order_facts(self) -> tuple[list[Any], list[OrderFact], list[dict[str, Any]]]:
        """New order events for this node (and ones another node left unacknowledged for a minute)."""
        try:
            await self._ensure_group()
            _, claimed, _ = await self.redis.xautoclaim(ORDER_STREAM, GROUP, self.consumer, 60_000, "0-0", count=200)
            got: Any = await self.redis.xreadgroup(  # redis-py types the reply per RESP version; RESP2 here
                GROUP, self.consumer, {ORDER_STREAM: ">"}, count=500)
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                self._group_ready = False
                return [], [], []
            raise
        entries = list(claimed or [])
        for _stream, items in got or []:
            entries += items
        if not entries:
            return [], [], []
        ids = [e[0] for e in entries]
        names = []
        for _id, fields in entries:
            f = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                 for k, v in fields.items()}
            names.append((f.get("type", ""), f.get("order", ""), f.get("state", "")))
        # the entry's own state: an order refunded before we read its creation was still a sale
        wanted = [(t, oid) for t, oid, st in names
                  if oid and (t == "order.refunded" or (t == "order.created" and st == "PAID"))]
        raws = await self.redis.mget([f"order:{oid}" for _t, oid in wanted]) if wanted else []
        facts, bought = [], []
        for (typ, oid), raw in zip(wanted, raws):
            if not raw:
                continue
            o = orjson.loads(raw)
            if typ == "order.created":
                contact = o.get("contact") if isinstance(o.get("contact"), dict) else {}
                bought.append({"broadcast": o["broadcast"], "sale_id": o.get("sale_id", ""), "qty": int(o.get("qty", 0)),
                               "at": int(o.get("created_at", 0)), "name": contact.get("name") or ""})
            kind = "paid" if typ == "order.created" else "refunded"
            at = int(o.get("created_at") if kind == "paid" else o.get("updated_at") or o.get("created_at") or 0)
            facts.append(OrderFact(broadcast=o["broadcast"], key=f"{oid}:{kind}", kind=kind, at_ms=at,
                                   sale_id=o.get("sale_id", ""), user=o.get("user", ""), qty=int(o.get("qty", 0)),
                                   total=int(o.get("total", 0)), currency=o.get("currency", "")))
        return ids, facts, bought

    async def flush(self) -> None:
        """One tick: this node's tally, the stock events and order events since the last one, in one
        pipeline. A failed flush is put back and carried by the next."""
        now = self.now()
        batches = self.tally.drain(now)
        stock, self._stock = self._stock, []
        try:
            order_ids, orders, bought = await self._order_facts()
            await self.store.flush(batches, stock, orders)
        except Exception:
            self.tally.restore(batches)
            self._stock = stock + self._stock
            raise
        if order_ids:
            await self.redis.xack(ORDER_STREAM, GROUP, *order_ids)
        if bought:
            await self.publish_bought(bought, now)
        self.flushes += 1

    # ---- social proof ------------------------------------------------------------------------------

    async def publish_bought(self, bought: list[dict[str, Any]], now: int) -> None:
        """Recent purchases as the coalesced level `proof` of their broadcast (latest wins per tick):
        the player's "Jiwoo just bought" ticker. One node reads each order event, so it goes out once.
        Names: a first name or a masked one, or none when the host turned names off for the show."""
        fresh = [b for b in bought if now - b["at"] <= PROOF_MAX_AGE_MS]
        if not fresh:
            return
        shows = sorted({b["broadcast"] for b in fresh})
        off = await self.redis.mget([names_key(bc) for bc in shows])
        names_off = {bc for bc, v in zip(shows, off) if v in (b"0", "0")}
        for i, b in enumerate(fresh):
            bc = b["broadcast"]
            self.hub.fanout.level(bc, "proof", {
                "sale_id": b["sale_id"], "qty": b["qty"], "at": b["at"], "v": b["at"] * 1000 + i,
                "name": None if bc in names_off else shown_name(b["name"])})

    async def names_enabled(self, broadcast: str) -> bool:
        return (await self.redis.get(names_key(broadcast))) not in (b"0", "0")

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        try:  # what this node counted since the last tick is not lost on a clean stop
            for sid, since in list(self._joined.items()):
                caller = self.hub.caller(sid)
                if caller is not None:
                    self.tally.left(caller.broadcast, since, self.now())
            self._joined.clear()
            await self.flush()
        except Exception:
            log.warning("analytics: last flush failed", exc_info=True)

    # ---- reading -------------------------------------------------------------------------------------

    async def sales_meta(self, broadcast: str) -> list[dict[str, Any]]:
        """The sales' own facts (hub's sale store and the inventory's levels)."""
        sales = self.sales
        out = []
        items = await sales.store.of_broadcast(broadcast, limit=1000)
        # concurrent: the inventory pipelines them into one round trip
        all_levels = await asyncio.gather(*(sales.inv.snapshot(s.id) for s in items))
        for s, levels in zip(items, all_levels):
            out.append({"id": s.id, "title": s.title, "product_id": s.product_id, "price": s.price,
                        "currency": s.currency, "units": levels.total if levels else s.units,
                        "sold": levels.sold if levels else 0, "available": levels.available if levels else None,
                        "opens_at": s.opens_at, "opened_at": s.opened_at, "soldout_at": s.soldout_at,
                        "closed_at": s.closed_at, "state": s.state})
        return out

    async def report(self, broadcast: str) -> dict[str, Any]:
        return await self.store.report(broadcast, now_ms=self.now(), sales=await self.sales_meta(broadcast))

def names_key(broadcast: str) -> str:
    """Whether the ticker may show buyers' names in this show ("0" = no; unset = yes)."""
    return f"an:{{an:{broadcast}}}:names"


def shown_name(full: str) -> str | None:
    """What the ticker may show of a buyer's name: the first name of a spaced name ("Jiwoo Kim" ->
    "Jiwoo"); a name written without spaces (e.g. Korean "김지우") with its middle masked ("김*우");
    never more than 12 characters; None when there is nothing to show."""
    words = [w for w in str(full or "").split() if w.isprintable()]
    if not words:
        return None
    first = words[0]
    if len(words) == 1 and len(first) >= 3 and not first.isascii():
        first = first[0] + "*" * (len(first) - 2) + first[-1]
    elif len(words) == 1 and len(first) == 2 and not first.isascii():
        first = first[0] + "*"
    return first[:12]


def _chat_sent(payload: dict, ack: dict) -> tuple[str, int] | None:
    return None if ack.get("again") else ("chat", 1)  # a retried request_id is not a new line


def _reacted(payload: dict, ack: dict) -> tuple[str, int] | None:
    return ("hearts", 1) if ack.get("emoji") == "heart" else None


def _hearts(payload: dict, ack: dict) -> tuple[str, int] | None:
    n = payload.get("n", 1)  # validated by the command (1..10) before it succeeded
    return ("hearts", n if isinstance(n, int) and not isinstance(n, bool) else 1)


def _voted(payload: dict, ack: dict) -> tuple[str, int] | None:
    return ("votes", 1) if ack.get("counted") else None


COUNTED: dict[str, Callable[[dict, dict], tuple[str, int] | None]] = {
    "chat.send": _chat_sent, "react": _reacted, "hearts": _hearts, "poll.vote": _voted}
