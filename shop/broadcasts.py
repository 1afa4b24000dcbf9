"""Broadcasts and their product catalogs, kept in Redis.

Keys share the broadcast's hash tag so one broadcast lives on one Cluster slot:
  hub:{<id>}:bc        hash  id, title, host, state, pinned, scheduled_start, created_at, ...
  hub:{<id>}:products  hash  product id -> product JSON
  hub:broadcasts       zset  broadcast id scored by created_at (the listing)

State moves scheduled -> live -> ended, only forwards, each move one Lua script (check and set)."""
from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import orjson
import redis.asyncio as aioredis

from domain import Code, DomainError
from domain import validate as v
from shop.keys import key

STATES = ("scheduled", "live", "ended")
LIST_KEY = "hub:broadcasts"
EXISTS_CACHE_S = 5.0


def bc_key(broadcast_id: str) -> str:
    return key(broadcast_id, "bc")


def products_key(broadcast_id: str) -> str:
    return key(broadcast_id, "products")


@dataclass
class Product:
    id: str
    title: str
    price: int  # minor units
    currency: str
    image_url: str = ""
    description: str = ""
    position: int = 0
    ships: bool = False  # a physical product: checkout asks for a shipping address and phone

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Broadcast:
    id: str
    title: str
    host: str
    state: str
    pinned: str | None
    scheduled_start: int | None
    created_at: int
    updated_at: int
    started_at: int | None = None
    ended_at: int | None = None
    products: list[Product] = field(default_factory=list)

    def product(self, product_id: str) -> Product | None:
        return next((p for p in self.products if p.id == product_id), None)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        pinned = self.product(self.pinned) if self.pinned else None
        d["pinned_product"] = pinned.to_dict() if pinned else None
        return d


def parse_product(data: Mapping[str, Any], *, product_id: str | None = None) -> Product:
    """A full product from untrusted input (raises validate.Invalid)."""
    v.only(data, {"id", "title", "price", "currency", "image_url", "description", "ships"})
    ships = data.get("ships", False)
    if not isinstance(ships, bool):
        raise v.Invalid("ships", "ships must be true or false")
    return Product(
        ships=ships,
        id=product_id or v.ident(data, "id"),
        title=v.text(data, "title"),
        price=v.integer(data, "price"),
        currency=v.currency(data),
        image_url=v.url(data, "image_url"),
        description=v.text(data, "description", required=False, max_len=4000, min_len=0, default="") or "",
    )


def patch_product(product: Product, data: Mapping[str, Any]) -> Product:
    """Apply a partial update from untrusted input (raises validate.Invalid)."""
    v.only(data, {"title", "price", "currency", "image_url", "description", "ships"})
    merged = {**product.to_dict(), **{k: val for k, val in data.items()}}
    merged.pop("position")
    out = parse_product(merged, product_id=product.id)
    out.position = product.position
    return out


_CREATE = """
-- KEYS: bc, products (one slot)   ARGV: id, fields-json, products-json
-- returns its created_at (ms), 0 if it existed
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = cjson.decode(ARGV[2])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'title', f.title, 'host', f.host, 'state', 'scheduled',
           'pinned', '', 'scheduled_start', f.scheduled_start, 'created_at', now, 'updated_at', now,
           'started_at', '', 'ended_at', '')
local products = cjson.decode(ARGV[3])
for i, p in ipairs(products) do
  p.position = i
  redis.call('HSETNX', KEYS[2], p.id, cjson.encode(p))
end
return now
"""

_TRANSITION = """
-- KEYS: bc   ARGV: to-state, allowed from-states...
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'NOT_FOUND', ''} end
local ok = false
for i = 2, #ARGV do if ARGV[i] == state then ok = true end end
if not ok then return {'BAD_STATE', state} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated_at', now)
if ARGV[1] == 'live' then redis.call('HSET', KEYS[1], 'started_at', now) end
if ARGV[1] == 'ended' then redis.call('HSET', KEYS[1], 'ended_at', now, 'pinned', '') end
return {'OK', tostring(now)}
"""

_PIN = """
-- KEYS: bc, products   ARGV: product id ('' to unpin)
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'NOT_FOUND' end
if state == 'ended' then return 'BAD_STATE' end
if ARGV[1] ~= '' and redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 'PRODUCT_NOT_FOUND' end
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'pinned', ARGV[1], 'updated_at', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
return 'OK'
"""

_PUT_PRODUCT = """
-- KEYS: bc, products   ARGV: product id, product json, mode ('add' | 'edit')
if redis.call('EXISTS', KEYS[1]) == 0 then return 'NOT_FOUND' end
local exists = redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1
if ARGV[3] == 'add' and exists then return 'PRODUCT_EXISTS' end
if ARGV[3] == 'edit' and not exists then return 'PRODUCT_NOT_FOUND' end
local p = cjson.decode(ARGV[2])
if ARGV[3] == 'add' then p.position = redis.call('HLEN', KEYS[2]) + 1 end
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(p))
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'updated_at', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
return 'OK'
"""

_UPDATE = """
-- KEYS: bc   ARGV: field, value, field, value...
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'updated_at', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
return 1
"""


def _opt_int(raw: bytes | None) -> int | None:
    return int(raw) if raw not in (None, b"") else None


class BroadcastStore:
    """Broadcasts in Redis. Every method is one or two round trips; state changes are atomic."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._r = redis
        self._exists_until: dict[str, float] = {}  # broadcast -> monotonic time its "exists" is trusted until
        self._create = redis.register_script(_CREATE)
        self._transition = redis.register_script(_TRANSITION)
        self._pin = redis.register_script(_PIN)
        self._put_product = redis.register_script(_PUT_PRODUCT)
        self._update = redis.register_script(_UPDATE)

    async def create(self, broadcast_id: str, *, title: str, host: str, scheduled_start: int | None = None,
                     products: Iterable[Product] = ()) -> Broadcast:
        """Create, or refuse with BROADCAST_EXISTS."""
        plist = [p.to_dict() for p in products]
        fields = {"title": title, "host": host, "scheduled_start": "" if scheduled_start is None else scheduled_start}
        created = int(await self._create(keys=[bc_key(broadcast_id), products_key(broadcast_id)],
                                         args=[broadcast_id, orjson.dumps(fields), orjson.dumps(plist) if plist else b"[]"]))
        if not created:
            raise DomainError(Code.BROADCAST_EXISTS, f"broadcast {broadcast_id!r} already exists")
        # the listing is another slot: written after the broadcast (a lost write leaves it unlisted,
        # never a listed id without a broadcast)
        await self._r.zadd(LIST_KEY, {broadcast_id: created})
        return await self.require(broadcast_id)

    async def ensure(self, broadcast_id: str, *, title: str, host: str, products: Iterable[Mapping[str, Any] | Product] = (),
                     scheduled_start: int | None = None) -> Broadcast:
        """Idempotent set-up (for seeders): create the broadcast if missing, add products that are
        missing; never overwrites what exists (a host's edits survive a re-seed)."""
        items = [p if isinstance(p, Product) else parse_product(p) for p in products]
        try:
            await self.create(broadcast_id, title=title, host=host, scheduled_start=scheduled_start, products=items)
        except DomainError as exc:
            if exc.code != "BROADCAST_EXISTS":
                raise
            for p in items:
                try:
                    await self.add_product(broadcast_id, p)
                except DomainError as e2:
                    if e2.code != "PRODUCT_EXISTS":
                        raise
        return await self.require(broadcast_id)

    async def get(self, broadcast_id: str) -> Broadcast | None:
        async with self._r.pipeline(transaction=False) as p:
            p.hgetall(bc_key(broadcast_id))
            p.hvals(products_key(broadcast_id))
            raw, prods = await p.execute()
        if not raw:
            return None
        h = {k.decode(): val.decode() for k, val in raw.items()}
        products = sorted((Product(**orjson.loads(x)) for x in prods), key=lambda p: (p.position, p.id))
        return Broadcast(
            id=h["id"], title=h["title"], host=h["host"], state=h["state"], pinned=h.get("pinned") or None,
            scheduled_start=_opt_int(h.get("scheduled_start", "").encode()), created_at=int(h["created_at"]),
            updated_at=int(h["updated_at"]), started_at=_opt_int(h.get("started_at", "").encode()),
            ended_at=_opt_int(h.get("ended_at", "").encode()), products=products,
        )

    async def require(self, broadcast_id: str) -> Broadcast:
        bc = await self.get(broadcast_id)
        if bc is None:
            raise DomainError(Code.NOT_FOUND, f"no broadcast {broadcast_id!r}")
        return bc

    async def exists(self, broadcast_id: str) -> bool:
        """Whether the broadcast exists. A yes is remembered for a few seconds (broadcasts are never
        deleted), so a storm of joins to one show asks Redis once, not once per socket."""
        now = time.monotonic()
        seen = self._exists_until.get(broadcast_id)
        if seen is not None and seen > now:
            return True
        found = bool(await self._r.exists(bc_key(broadcast_id)))
        if found:
            if len(self._exists_until) > 10_000:
                self._exists_until.clear()
            self._exists_until[broadcast_id] = now + EXISTS_CACHE_S
        return found

    async def list(self, *, limit: int = 100, ids: Iterable[str] | None = None) -> list[Broadcast]:
        """Newest first; `ids` restricts the listing (a host token sees its own broadcast)."""
        if ids is None:
            # no withscores: members only; redis-py's return type does not narrow on the flag
            raw = cast("list[bytes]", await self._r.zrevrange(LIST_KEY, 0, limit - 1))
            ids = [x.decode() for x in raw]
        out = []
        for bid in list(ids)[:limit]:
            bc = await self.get(bid)
            if bc is not None:
                out.append(bc)
        return out

    async def update(self, broadcast_id: str, *, title: str | None = None,
                     scheduled_start: int | None | object = ...) -> Broadcast:
        args: list[Any] = []
        if title is not None:
            args += ["title", title]
        if scheduled_start is not ...:
            args += ["scheduled_start", "" if scheduled_start is None else scheduled_start]
        if args and not await self._update(keys=[bc_key(broadcast_id)], args=args):
            raise DomainError(Code.NOT_FOUND, f"no broadcast {broadcast_id!r}")
        return await self.require(broadcast_id)

    async def add_product(self, broadcast_id: str, product: Product) -> Product:
        await self._put(broadcast_id, product, "add")
        bc = await self.require(broadcast_id)
        added = bc.product(product.id)
        if added is None:  # removed again before it was read back
            raise DomainError(Code.PRODUCT_NOT_FOUND, f"no product {product.id!r}")
        return added

    async def edit_product(self, broadcast_id: str, product_id: str, data: Mapping[str, Any]) -> Product:
        bc = await self.require(broadcast_id)
        current = bc.product(product_id)
        if current is None:
            raise DomainError(Code.PRODUCT_NOT_FOUND, f"no product {product_id!r} in broadcast {broadcast_id!r}")
        updated = patch_product(current, data)
        await self._put(broadcast_id, updated, "edit")
        return updated

    async def _put(self, broadcast_id: str, product: Product, mode: str) -> None:
        res = (await self._put_product(keys=[bc_key(broadcast_id), products_key(broadcast_id)],
                                       args=[product.id, orjson.dumps(product.to_dict()), mode])).decode()
        if res == "NOT_FOUND":
            raise DomainError(Code.NOT_FOUND, f"no broadcast {broadcast_id!r}")
        if res == "PRODUCT_EXISTS":
            raise DomainError(Code.PRODUCT_EXISTS, f"product {product.id!r} already exists")
        if res == "PRODUCT_NOT_FOUND":
            raise DomainError(Code.PRODUCT_NOT_FOUND, f"no product {product.id!r}")

    async def transition(self, broadcast_id: str, to: str, allowed_from: Iterable[str]) -> int:
        """Move the state forward; returns the server time of the move or raises BAD_STATE / NOT_FOUND."""
        code, detail = await self._transition(keys=[bc_key(broadcast_id)], args=[to, *allowed_from])
        code, detail = code.decode(), detail.decode()
        if code == "NOT_FOUND":
            raise DomainError(Code.NOT_FOUND, f"no broadcast {broadcast_id!r}")
        if code == "BAD_STATE":
            raise DomainError(Code.BAD_STATE, f"the broadcast is {detail}", state=detail)
        return int(detail)

    async def pin(self, broadcast_id: str, product_id: str | None) -> None:
        res = (await self._pin(keys=[bc_key(broadcast_id), products_key(broadcast_id)], args=[product_id or ""])).decode()
        if res == "NOT_FOUND":
            raise DomainError(Code.NOT_FOUND, f"no broadcast {broadcast_id!r}")
        if res == "BAD_STATE":
            raise DomainError(Code.BAD_STATE, "the broadcast has ended", state="ended")
        if res == "PRODUCT_NOT_FOUND":
            raise DomainError(Code.PRODUCT_NOT_FOUND, f"no product {product_id!r}")


