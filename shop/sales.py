"""Flash sales as the hub sees them: which broadcast and product a sale belongs to, and which
lifecycle announcements have been made. Stock itself lives in the inventory lot of the same id.

Keys:
  hub:sale:{<id>}     hash  broadcast, product, price, units, limit, hold_s, opens_at, closes_at,
                            state (scheduled | open | closed), opened_at, soldout_at, closed_at, ...
  hub:{bc}:sales      zset  sale ids of a broadcast by opens_at
  hub:sales:watch     zset  sale ids whose stock the hub watches, scored by "watch until" (ms)

Each announcement (`sale.open`, `sale.soldout`, `sale.closed`) is claimed by one Lua script that
moves the hub's state once, so it goes out once however many nodes try.

Every script touches the sale's hash alone (one slot on a Redis Cluster); the two indexes, which
live in other slots, are written right after it: a retried create whose first attempt stopped
between the two finds the sale still `scheduled` and writes them then (ZADD NX); a close whose
index write was lost leaves the sale watched until the next close attempt (harmless: the watcher
reads a closed sale that does not change for nothing)."""
from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, cast

import redis.asyncio as aioredis

from shop.keys import key
from shop.keys import text as _s

WATCH_KEY = "hub:sales:watch"
WATCH_AFTER_CLOSE_MS = 15 * 60 * 1000  # holds made before the close may still be paid or expire
FOREVER = 2**52


def sale_key(sale_id: str) -> str:
    return f"hub:sale:{{{sale_id}}}"


def bc_sales_key(broadcast: str) -> str:
    return key(broadcast, "sales")


def new_sale_id(broadcast: str, user: str, request_id: str | None) -> str:
    """Deterministic for a (broadcast, host, request_id): a retried schedule finds the first sale."""
    if request_id:
        digest = hashlib.sha256(f"{broadcast}\0{user}\0{request_id}".encode()).hexdigest()[:16]
        return f"s{digest}"
    return f"s{uuid.uuid4().hex[:16]}"


@dataclass
class Sale:
    id: str
    broadcast: str
    product_id: str
    title: str
    image_url: str
    price: int
    currency: str
    units: int
    limit: int
    hold_s: int
    opens_at: int
    closes_at: int | None
    state: str
    created_at: int
    opened_at: int | None = None
    soldout_at: int | None = None
    closed_at: int | None = None
    close_reason: str | None = None
    replay: bool = False  # stays open after the broadcast ends: buyable from the replay

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_FIELDS = frozenset(f.name for f in fields(Sale))
_INTS = {"price", "units", "limit", "hold_s", "opens_at", "closes_at", "created_at", "opened_at", "soldout_at", "closed_at"}

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

_CREATE = _NOW + """
-- KEYS: sale   ARGV: id, opens_at, field, value, ...
-- 1: created; 2: exists and still scheduled (a retry: index it again); 0: exists
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'state') == 'scheduled' then return 2 end
  return 0
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'state', 'scheduled', 'created_at', now,
           'opened_at', '', 'soldout_at', '', 'closed_at', '', 'close_reason', '')
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""

_OPEN = _NOW + """
-- KEYS: sale
local s = redis.call('HMGET', KEYS[1], 'state', 'opens_at')
if not s[1] then return {'GONE'} end
if s[1] ~= 'scheduled' then return {'LOST'} end
if now < tonumber(s[2]) then return {'NOT_YET'} end
redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now)
return {'OK', now}
"""

_SOLDOUT = _NOW + """
-- KEYS: sale
local s = redis.call('HMGET', KEYS[1], 'state', 'soldout_at')
if not s[1] then return {'GONE'} end
if s[1] == 'closed' or s[2] ~= '' then return {'LOST'} end
redis.call('HSET', KEYS[1], 'soldout_at', now)
return {'OK', now}
"""

_CLOSE = _NOW + """
-- KEYS: sale   ARGV: reason, only-if-due ('1' from the timer)
local s = redis.call('HMGET', KEYS[1], 'state', 'closes_at')
if not s[1] then return {'GONE'} end
if s[1] == 'closed' then return {'LOST'} end
if ARGV[2] == '1' and s[2] ~= '' and now < tonumber(s[2]) then return {'NOT_YET'} end
redis.call('HSET', KEYS[1], 'state', 'closed', 'closed_at', now, 'close_reason', ARGV[1])
return {'OK', now}
"""


def selling_now(sales: list[Sale], now_ms: int) -> Sale | None:
    """The sale that is selling at `now_ms` (opened, not closed, not past its end): the latest to
    open, if several. Comment-to-buy orders go to it."""
    best = None
    for sale in sales:
        if sale.state == "closed" or sale.opens_at > now_ms or (sale.closes_at and sale.closes_at <= now_ms):
            continue
        if best is None or sale.opens_at >= best.opens_at:
            best = sale
    return best


class SaleStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._r = redis
        self._create = redis.register_script(_CREATE)
        self._open = redis.register_script(_OPEN)
        self._soldout = redis.register_script(_SOLDOUT)
        self._close = redis.register_script(_CLOSE)
        self._owner: dict[str, str] = {}  # sale id -> broadcast (immutable once created)
        self._opens: dict[str, int] = {}  # sale id -> opens_at (immutable once created)

    async def create(self, sale: Sale) -> bool:
        """False when a sale with this id exists already (an idempotent retry)."""
        fields: list[Any] = []
        for k, val in sale.to_dict().items():
            if k in ("id", "state", "created_at", "opened_at", "soldout_at", "closed_at", "close_reason"):
                continue
            fields += [k, "" if val is None else int(val) if isinstance(val, bool) else val]
        res = int(await self._create(keys=[sale_key(sale.id)], args=[sale.id, sale.opens_at, *fields]))
        if res:  # the indexes (other slots): after the sale, NX so a retry changes nothing written
            pipe = self._r.pipeline(transaction=False)
            pipe.zadd(bc_sales_key(sale.broadcast), {sale.id: sale.opens_at}, nx=True)
            pipe.zadd(WATCH_KEY, {sale.id: FOREVER}, nx=True)
            await pipe.execute()
        return res == 1

    async def get(self, sale_id: str) -> Sale | None:
        return self._parse(await self._r.hgetall(sale_key(sale_id)))

    def _parse(self, raw: Mapping[bytes | str, bytes | str] | None) -> Sale | None:
        if not raw:
            return None
        h: dict[str, Any] = {_s(k): _s(val) for k, val in raw.items()}
        for k in _INTS:
            h[k] = int(h[k]) if h.get(k) not in (None, "") else None
        h["close_reason"] = h.get("close_reason") or None
        if "replay" in h:
            h["replay"] = h["replay"] == "1"
        # other parts may keep fields of their own in the record (an auction win's `auction_id`)
        sale = Sale(**{k: val for k, val in h.items() if k in _FIELDS})
        self._owner[sale.id] = sale.broadcast
        self._opens[sale.id] = sale.opens_at
        return sale

    async def broadcast_of(self, sale_id: str) -> str | None:
        """Which broadcast a sale belongs to (cached: it never changes)."""
        if sale_id not in self._owner:
            broadcast, opens_at = await self._r.hmget(sale_key(sale_id), ["broadcast", "opens_at"])
            if broadcast is None:
                return None
            self._owner[sale_id] = _s(broadcast)
            if opens_at:
                self._opens[sale_id] = int(opens_at)
        return self._owner[sale_id]

    def cached_opens_at(self, sale_id: str) -> int | None:
        """opens_at of a sale this node has looked up (no Redis call)."""
        return self._opens.get(sale_id)

    async def of_broadcast(self, broadcast: str, limit: int = 20) -> list[Sale]:
        """The broadcast's latest sales (by opens_at), oldest first."""
        # no withscores: members only; redis-py's return type does not narrow on the flag
        ids = cast("list[bytes]", await self._r.zrange(bc_sales_key(broadcast), -limit, -1))
        if not ids:
            return []
        pipe = self._r.pipeline(transaction=False)  # one round trip on one connection, not one each
        for x in ids:
            pipe.hgetall(sale_key(x.decode()))
        sales = [self._parse(raw) for raw in await pipe.execute()]
        return [s for s in sales if s is not None]

    async def watched(self, now_ms: int) -> list[str]:
        await self._r.zremrangebyscore(WATCH_KEY, "-inf", now_ms)
        return [x.decode() for x in cast("list[bytes]", await self._r.zrange(WATCH_KEY, 0, -1))]  # members only

    async def claim_open(self, sale_id: str) -> tuple[str, int | None]:
        return _claim(await self._open(keys=[sale_key(sale_id)]))

    async def claim_soldout(self, sale_id: str) -> tuple[str, int | None]:
        return _claim(await self._soldout(keys=[sale_key(sale_id)]))

    async def claim_close(self, sale_id: str, reason: str, *, only_if_due: bool = False) -> tuple[str, int | None]:
        code, at = _claim(await self._close(keys=[sale_key(sale_id)], args=[reason, "1" if only_if_due else "0"]))
        if code == "OK" and at is not None:  # watched a while longer: holds made before may still settle
            await self._r.zadd(WATCH_KEY, {sale_id: at + WATCH_AFTER_CLOSE_MS})
        return code, at


def _claim(res: list[Any]) -> tuple[str, int | None]:
    code = res[0].decode() if isinstance(res[0], bytes) else str(res[0])
    return code, (int(res[1]) if len(res) > 1 else None)
