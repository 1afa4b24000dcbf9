"""The order ledger in Redis: one order per reservation, listed per broadcast, user and lot, with
an order event stream. Creation is one Lua script, so a retried confirm can never make two orders."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

import orjson
import redis.asyncio as aioredis

EVENTS_KEY = "orders:events"
EVENTS_MAXLEN = 100_000


class OrderState(str, Enum):
    PAID = "PAID"
    REFUNDED = "REFUNDED"


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
    shipping: dict[str, str] = field(default_factory=dict)  # recipient, phone, address (products that ship)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = self.state.value
        return d

    @classmethod
    def from_json(cls, raw: bytes | str) -> "Order":
        d = orjson.loads(raw)
        d["state"] = OrderState(d["state"])
        return cls(**d)


_CREATE = """
-- KEYS: by_res, order, bc_index, user_index, lot_index, events   ARGV: id, json, score, state
local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing} end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[1])
redis.call('XADD', KEYS[6], 'MAXLEN', '~', %d, '*', 'type', 'order.created', 'order', ARGV[1], 'state', ARGV[4])
return {1, ARGV[1]}
""" % EVENTS_MAXLEN


class Ledger:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._create = redis.register_script(_CREATE)

    @staticmethod
    def _order_key(order_id: str) -> str:
        return f"order:{order_id}"

    async def create(self, order: Order) -> tuple[Order, bool]:
        """Record `order` unless its reservation already has one; returns (the order, created?)."""
        keys = [f"order:by-res:{order.sale_id}:{order.reservation_id}", self._order_key(order.id),
                f"orders:bc:{order.broadcast}", f"orders:user:{order.user}", f"orders:lot:{order.sale_id}", EVENTS_KEY]
        created, oid = await self._create(keys=keys, args=[order.id, orjson.dumps(order.to_dict()), order.created_at,
                                                            order.state.value])
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
        order = await self.get(order_id)
        if order is None:
            return None
        d = order.to_dict() | {"state": state.value, "updated_at": now_ms, "reason": reason}
        async with self.redis.pipeline(transaction=True) as p:
            p.set(self._order_key(order_id), orjson.dumps(d))
            p.xadd(EVENTS_KEY, {"type": f"order.{state.value.lower()}", "order": order_id, "state": state.value},
                   maxlen=EVENTS_MAXLEN, approximate=True)
            await p.execute()
        return await self.get(order_id)

    async def _list(self, index: str, limit: int) -> list[Order]:
        ids = await self.redis.zrevrange(index, 0, limit - 1)
        if not ids:
            return []
        raws = await self.redis.mget([self._order_key(i.decode() if isinstance(i, bytes) else i) for i in ids])
        return [Order.from_json(r) for r in raws if r]

    async def of_broadcast(self, broadcast: str, limit: int = 100) -> list[Order]:
        return await self._list(f"orders:bc:{broadcast}", limit)

    async def of_user(self, user: str, limit: int = 100) -> list[Order]:
        return await self._list(f"orders:user:{user}", limit)

    async def of_lot(self, sale_id: str, limit: int = 100_000) -> list[Order]:
        return await self._list(f"orders:lot:{sale_id}", limit)
