"""The order ledger in Redis: one order per reservation, listed per broadcast, user and lot, with
an order event stream. Creation claims the reservation for one order id first (a one-key script),
so a retried or concurrent confirm can never make two orders; the record and indexes follow, one
key per command, so the ledger runs on any slot of a Redis Cluster.

Buyers' contact data is personal data: an order with a contact is indexed in `orders:pii` by its
creation time, and `expire_contacts` removes the contact once it is older than the retention
(totals, state and ids stay for the audit); `erase_user` removes it at the buyer's request and
replaces the buyer's id with a pseudonym.

Retention (`retention_s`, HAWKER_ORDER_RETENTION_DAYS in the server): Redis is the working copy,
the merchant's system of record gets every order by webhook and CSV export. An order's keys expire
`retention_s` after it was created; each index drops entries older than that when a new order is
added to it and expires as a whole once nothing was added for `retention_s`. A state change
(refund) keeps the order's expiry. None keeps orders for ever (the library's default)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from redis.exceptions import WatchError
from redis.typing import EncodableT, FieldT

from redislayer import AutoPipeline, Script

EVENTS_KEY = "orders:events"
EVENTS_MAXLEN = 100_000
PII_KEY = "orders:pii"  # zset: order id -> created_at ms, for orders that still carry a contact


class OrderState(str, Enum):
    PAID = "PAID"
    REFUNDED = "REFUNDED"
    REFUND_FAILED = "REFUND_FAILED"  # a refund the provider refused or did not answer: retried by recovery


@dataclass(frozen=True)
class Order:
    id: str
    user: str
    broadcast: str
    sale_id: str
    reservation_id: str
    qty: int
    unit_price: int
    total: int
    currency: str
    state: OrderState
    charge_id: str
    created_at: int
    updated_at: int
    contact: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    # False when the payment went through the sandbox (test cards: no money moved). Orders written
    # before the field existed read False: never ship goods on an order that is not livemode.
    livemode: bool = False
    # why `contact` is empty although the buyer gave one: "retention" (expired) or "erasure"
    contact_removed: str = ""
    shipping: dict[str, str] = field(default_factory=dict)  # recipient, phone, address (products that ship)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = self.state.value
        return d

    @classmethod
    def from_json(cls, raw: bytes | str) -> Order:
        d = orjson.loads(raw)
        d["state"] = OrderState(d["state"])
        return cls(**d)


_NOW = "local tm = redis.call('TIME') local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"

# One script per key, so each runs in one slot of a Redis Cluster (an order's keys are spread over
# the slots of its reservation, its id, its broadcast, its buyer and its lot).
_CLAIM = _NOW + """
-- KEYS: by_res   ARGV: order id, created_at ms, retention_ms (0: keep)
-- the one order of a reservation: the first claim wins; returns the winner's id
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[1])
local keep = tonumber(ARGV[3])
if keep > 0 then redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(ARGV[2]) + keep - now)) end
return ARGV[1]
"""

_RECORD = _NOW + """
-- KEYS: order   ARGV: json, created_at ms, retention_ms
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end  -- a retry never overwrites a refund
redis.call('SET', KEYS[1], ARGV[1])
local keep = tonumber(ARGV[3])
if keep > 0 then redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(ARGV[2]) + keep - now)) end
return 1
"""


class Ledger:
    def __init__(self, redis: aioredis.Redis, *, retention_s: int | None = None) -> None:
        if retention_s is not None and (type(retention_s) is not int or retention_s < 1):
            raise ValueError(f"retention_s must be a positive int or None, got {retention_s!r}")
        self.redis = redis
        self.retention_s = retention_s
        # auto-pipelined: with HAWKER_REDIS_REPLICAS_ACK the order is confirmed by replicas (WAIT)
        # before it is acknowledged, like the stock change it records
        self._pipe = AutoPipeline(redis)
        self._claim = Script("order_claim", _CLAIM)
        self._record = Script("order_record", _RECORD)

    @staticmethod
    def _order_key(order_id: str) -> str:
        return f"order:{order_id}"

    async def create(self, order: Order) -> tuple[Order, bool]:
        """Record `order` unless its reservation already has one; returns (the order, created?).

        First the reservation is claimed for this order id (one key, atomic: a retried or
        concurrent confirm can never make two orders), then the record and its indexes are
        written (each key its own script: any slot of a cluster). A retry of a create that stopped
        between the two (same order id) finishes it and counts as the creation."""
        keep = (self.retention_s or 0) * 1000
        won = await self._pipe.call(self._claim, [f"order:by-res:{order.sale_id}:{order.reservation_id}"],
                                    [order.id, order.created_at, keep])
        oid = won.decode() if isinstance(won, bytes) else str(won)
        if oid != order.id:
            for delay in (0, 0.05, 0.1, 0.25, 0.5, 1.0):  # the winner may be writing its record right now
                await asyncio.sleep(delay)
                existing = await self.get(oid)
                if existing is not None:
                    return existing, False
            raise LookupError(f"order {oid} of reservation {order.reservation_id} is not recorded")
        if not await self._pipe.call(self._record, [self._order_key(order.id)],
                                     [orjson.dumps(order.to_dict()), order.created_at, keep]):
            existing = await self.get(order.id)
            if existing is not None:
                return existing, False
        pipe = self.redis.pipeline(transaction=False)  # one key a command: any slot
        for index in (f"orders:bc:{order.broadcast}", f"orders:user:{order.user}", f"orders:lot:{order.sale_id}"):
            pipe.zadd(index, {order.id: order.created_at})
            if keep:  # entries older than the retention go; an idle index expires as a whole
                pipe.zremrangebyscore(index, "-inf", f"({order.created_at - keep}")
                pipe.pexpire(index, keep)
        if order.contact or order.shipping:
            pipe.zadd(PII_KEY, {order.id: order.created_at})
        pipe.xadd(EVENTS_KEY, {"type": "order.created", "order": order.id, "state": order.state.value},
                  maxlen=EVENTS_MAXLEN, approximate=True)
        await pipe.execute()
        return order, True

    async def get(self, order_id: str) -> Order | None:
        raw = await self.redis.get(self._order_key(order_id))
        return Order.from_json(raw) if raw else None

    async def of_reservation(self, sale_id: str, reservation_id: str) -> Order | None:
        oid = await self.redis.get(f"order:by-res:{sale_id}:{reservation_id}")
        return await self.get(oid.decode() if isinstance(oid, bytes) else oid) if oid else None

    async def set_state(self, order_id: str, state: OrderState, *, now_ms: int, reason: str = "") -> Order | None:
        changes = {"state": state.value, "updated_at": now_ms, "reason": reason}
        event: dict[FieldT, EncodableT] = {"type": f"order.{state.value.lower()}", "order": order_id, "state": state.value}
        return await self._update(order_id, changes, event)

    async def _update(self, order_id: str, changes: dict[str, Any],
                      event: dict[FieldT, EncodableT] | None = None) -> Order | None:
        """Read-modify-write under WATCH: a concurrent change (a refund, an erasure) is never lost."""
        key = self._order_key(order_id)
        async with self.redis.pipeline(transaction=True) as p:
            while True:
                try:
                    await p.watch(key)
                    raw = await p.get(key)
                    if raw is None:
                        await p.reset()
                        return None
                    d = orjson.loads(raw) | changes
                    p.multi()
                    p.set(key, orjson.dumps(d), keepttl=True)  # retention counts from creation
                    await p.execute()
                    break
                except WatchError:
                    continue
        if event:  # another slot on a cluster: after the change it reports
            await self.redis.xadd(EVENTS_KEY, event, maxlen=EVENTS_MAXLEN, approximate=True)
        return await self.get(order_id)

    async def expire_contacts(self, created_before_ms: int, limit: int = 1000) -> int:
        """Remove the contact of orders created before `created_before_ms` (the retention);
        everything else stays. Returns how many orders lost their contact."""
        n = 0
        for member in await self.redis.zrangebyscore(PII_KEY, "-inf", created_before_ms, start=0, num=limit):
            oid = member.decode() if isinstance(member, bytes) else str(member)
            if await self._update(oid, {"contact": {}, "shipping": {}, "contact_removed": "retention"}) is not None:
                n += 1
            await self.redis.zrem(PII_KEY, oid)
        return n

    async def erase_user(self, user: str, pseudonym: str) -> list[str]:
        """The buyer's orders lose their contact and name the pseudonym instead of the user; the
        user's index moves to the pseudonym. Ids, amounts and states stay (the audit). Returns
        the order ids."""
        # withscores: (member, score) pairs; redis-py's return type does not narrow on the flag
        pairs = cast("list[tuple[bytes | str, float]]",
                     await self.redis.zrange(f"orders:user:{user}", 0, -1, withscores=True))
        scored = {(m.decode() if isinstance(m, bytes) else m): s for m, s in pairs}
        for oid in scored:
            await self._update(oid, {"contact": {}, "shipping": {}, "contact_removed": "erasure", "user": pseudonym})
            await self.redis.zrem(PII_KEY, oid)
        if scored:
            await self.redis.zadd(f"orders:user:{pseudonym}", scored)
        await self.redis.delete(f"orders:user:{user}")
        return list(scored)

    async def _mget(self, keys: list[str]) -> list[Any]:
        """MGET; on a cluster one MGET per slot (orders are spread over slots)."""
        if hasattr(self.redis, "mget_nonatomic"):
            return list(await self.redis.mget_nonatomic(keys))
        return list(await self.redis.mget(keys))

    async def _list(self, index: str, limit: int) -> list[Order]:
        ids = await self.redis.zrevrange(index, 0, limit - 1)
        if not ids:
            return []
        raws = await self._mget([self._order_key(i.decode() if isinstance(i, bytes) else str(i)) for i in ids])
        return [Order.from_json(r) for r in raws if r]

    async def of_broadcast(self, broadcast: str, limit: int = 100) -> list[Order]:
        return await self._list(f"orders:bc:{broadcast}", limit)

    async def of_user(self, user: str, limit: int = 100) -> list[Order]:
        return await self._list(f"orders:user:{user}", limit)

    async def of_lot(self, sale_id: str, limit: int = 100_000) -> list[Order]:
        return await self._list(f"orders:lot:{sale_id}", limit)

    async def iter_broadcast(self, broadcast: str, since_ms: int = 0, until_ms: int | None = None,
                             page: int = 500) -> AsyncIterator[list[Order]]:
        """Every order of the broadcast still kept, oldest first, `page` at a time (for exports:
        memory stays bounded whatever the count)."""
        lo, hi = since_ms, "+inf" if until_ms is None else until_ms
        offset = 0
        while True:
            ids = await self.redis.zrangebyscore(f"orders:bc:{broadcast}", lo, hi, start=offset, num=page)
            if not ids:
                return
            offset += len(ids)
            raws = await self._mget([self._order_key(i.decode() if isinstance(i, bytes) else str(i)) for i in ids])
            yield [Order.from_json(r) for r in raws if r]
