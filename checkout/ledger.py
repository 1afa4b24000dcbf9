"""The order ledger in Redis: one order per reservation, listed per broadcast, user and lot, with
an order event stream. Creation is one Lua script, so a retried confirm can never make two orders.

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

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from redis.exceptions import WatchError
from redis.typing import EncodableT, FieldT

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


_CREATE = """
-- KEYS: by_res, order, bc_index, user_index, lot_index, events, pii
-- ARGV: id, json, score, state, retention_ms (0: keep), has_contact
local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing} end
if ARGV[6] == '1' then redis.call('ZADD', KEYS[7], ARGV[3], ARGV[1]) end
local keep = tonumber(ARGV[5])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
for i = 3, 5 do redis.call('ZADD', KEYS[i], ARGV[3], ARGV[1]) end
if keep > 0 then
  local tm = redis.call('TIME')
  local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
  local left = math.max(1, tonumber(ARGV[3]) + keep - now)
  redis.call('PEXPIRE', KEYS[1], left)
  redis.call('PEXPIRE', KEYS[2], left)
  for i = 3, 5 do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. (now - keep))
    redis.call('PEXPIRE', KEYS[i], keep)
  end
end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', %d, '*', 'type', 'order.created', 'order', ARGV[1], 'state', ARGV[4])
return {1, ARGV[1]}
""" % EVENTS_MAXLEN


class Ledger:
    def __init__(self, redis: aioredis.Redis, *, retention_s: int | None = None) -> None:
        if retention_s is not None and (type(retention_s) is not int or retention_s < 1):
            raise ValueError(f"retention_s must be a positive int or None, got {retention_s!r}")
        self.redis = redis
        self.retention_s = retention_s
        self._create = redis.register_script(_CREATE)

    @staticmethod
    def _order_key(order_id: str) -> str:
        return f"order:{order_id}"

    async def create(self, order: Order) -> tuple[Order, bool]:
        """Record `order` unless its reservation already has one; returns (the order, created?)."""
        keys = [f"order:by-res:{order.sale_id}:{order.reservation_id}", self._order_key(order.id),
                f"orders:bc:{order.broadcast}", f"orders:user:{order.user}", f"orders:lot:{order.sale_id}", EVENTS_KEY,
                PII_KEY]
        created, oid = await self._create(keys=keys, args=[order.id, orjson.dumps(order.to_dict()), order.created_at,
                                                            order.state.value, (self.retention_s or 0) * 1000,
                                                            "1" if order.contact or order.shipping else "0"])
        if created:
            return order, True
        existing = await self.get(oid.decode() if isinstance(oid, bytes) else oid)
        assert existing is not None
        return existing, False

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
                    if event:
                        p.xadd(EVENTS_KEY, event, maxlen=EVENTS_MAXLEN, approximate=True)
                    await p.execute()
                    break
                except WatchError:
                    continue
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

    async def _list(self, index: str, limit: int) -> list[Order]:
        ids = await self.redis.zrevrange(index, 0, limit - 1)
        if not ids:
            return []
        raws = await self.redis.mget([self._order_key(i.decode() if isinstance(i, bytes) else str(i)) for i in ids])
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
            raws = await self.redis.mget([self._order_key(i.decode() if isinstance(i, bytes) else str(i)) for i in ids])
            yield [Order.from_json(r) for r in raws if r]
