"""Writing a tick's analytics to Redis in one pipeline, and reading a broadcast's figures back.

Counts from this node's own sockets (joins, chat, hearts, votes, viewer-seconds) are plain
HINCRBY/PFADD: each node adds what only it saw, so N nodes sum correctly. Facts that every node
could see (stock events, orders) are applied by scripts that count each one once: stock events
behind a per-sale cursor (stream ids only grow), order events behind a `seen` set."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from analytics import keys
from analytics.report import build_report
from analytics.tally import Batch

DEFAULT_TTL_S = 90 * 24 * 3600

# stock event type -> (count field, units field)
STOCK_FIELDS = {
    "reserved": ("reserves", "reserved_units"),
    "waitlist_joined": ("waitlist", "waitlist_units"),
    "waitlist_granted": ("granted", "granted_units"),
    "expired": ("expired", "expired_units"),
    "released": ("released", "released_units"),
    "sold": ("paid_holds", "sold_units"),
}

_STOCK = """
-- KEYS: sale hash, minute hash, show reservers, sales set, seconds? (unused)   ARGV: sale, ttl, (id, type, at, qty, user)*
local MAP = {%s}
local cur = redis.call('HGET', KEYS[1], 'cursor')
local cms, cseq = -1, -1
if cur then
  local a, b = string.match(cur, '^(%%d+)-(%%d+)$')
  cms, cseq = tonumber(a), tonumber(b)
end
local last = nil
local applied = 0
for i = 3, #ARGV, 5 do
  local a, b = string.match(ARGV[i], '^(%%d+)-(%%d+)$')
  local ms, seq = tonumber(a), tonumber(b)
  if ms and (ms > cms or (ms == cms and seq > cseq)) then
    cms, cseq, last = ms, seq, ARGV[i]
    local f = MAP[ARGV[i + 1]]
    if f then
      local m = string.format('%%d:', math.floor(tonumber(ARGV[i + 2]) / 60000))
      local qty = tonumber(ARGV[i + 3]) or 0
      redis.call('HINCRBY', KEYS[1], f[1], 1)
      redis.call('HINCRBY', KEYS[1], f[2], qty)
      redis.call('HINCRBY', KEYS[2], m .. f[1], 1)
      redis.call('HINCRBY', KEYS[2], m .. f[2], qty)
      if ARGV[i + 1] == 'reserved' and ARGV[i + 4] ~= '' then
        redis.call('PFADD', KEYS[3], ARGV[i + 4])
      end
      applied = applied + 1
    end
  end
end
if last then
  redis.call('HSET', KEYS[1], 'cursor', last)
  redis.call('SADD', KEYS[4], ARGV[1])
  for k = 1, 4 do redis.call('EXPIRE', KEYS[k], ARGV[2]) end
end
return applied
""" % ", ".join(f"{t} = {{'{a}', '{b}'}}" for t, (a, b) in STOCK_FIELDS.items())

_ORDER = """
-- KEYS: seen, minute hash, show buyers, sale hash, sale buyers, sales set
-- ARGV: event key, kind (paid|refunded), at ms, qty, total, currency, user, sale, ttl
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
local m = string.format('%d:', math.floor(tonumber(ARGV[3]) / 60000))
if ARGV[2] == 'paid' then
  redis.call('HINCRBY', KEYS[2], m .. 'orders', 1)
  redis.call('HINCRBY', KEYS[2], m .. 'units', ARGV[4])
  redis.call('HINCRBY', KEYS[2], m .. 'rev:' .. ARGV[6], ARGV[5])
  redis.call('HINCRBY', KEYS[4], 'orders', 1)
  redis.call('HINCRBY', KEYS[4], 'units', ARGV[4])
  redis.call('HINCRBY', KEYS[4], 'rev:' .. ARGV[6], ARGV[5])
  if ARGV[7] ~= '' then
    redis.call('PFADD', KEYS[3], ARGV[7])
    redis.call('PFADD', KEYS[5], ARGV[7])
  end
else
  redis.call('HINCRBY', KEYS[2], m .. 'refunds', 1)
  redis.call('HINCRBY', KEYS[2], m .. 'refund:' .. ARGV[6], ARGV[5])
  redis.call('HINCRBY', KEYS[4], 'refunds', 1)
  redis.call('HINCRBY', KEYS[4], 'refund:' .. ARGV[6], ARGV[5])
end
redis.call('SADD', KEYS[6], ARGV[8])
for k = 1, 6 do redis.call('EXPIRE', KEYS[k], ARGV[9]) end
return 1
"""


@dataclass(frozen=True)
class StockFact:
    """One inventory stock event of a sale (the stream id orders them)."""

    broadcast: str
    sale_id: str
    id: str
    type: str
    at_ms: int
    qty: int = 0
    user: str = ""


@dataclass(frozen=True)
class OrderFact:
    """An order paid or refunded; `key` names the event so it counts once (e.g. "<order>:paid")."""

    broadcast: str
    key: str
    kind: str  # "paid" | "refunded"
    at_ms: int
    sale_id: str
    user: str
    qty: int
    total: int
    currency: str


class AnalyticsStore:
    def __init__(self, redis: aioredis.Redis, *, ttl_s: int = DEFAULT_TTL_S) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self._stock = redis.register_script(_STOCK)
        self._order = redis.register_script(_ORDER)

    async def flush(self, batches: dict[str, Batch], stock: list[StockFact] | None = None,
                    orders: list[OrderFact] | None = None) -> None:
        """One tick's worth in ONE pipeline (one round trip), whatever the number of events."""
        pipe = self.redis.pipeline(transaction=False)
        await self.queue(pipe, batches, stock or [], orders or [])
        if len(pipe):
            await pipe.execute()

    async def queue(self, pipe: Any, batches: dict[str, Batch], stock: list[StockFact], orders: list[OrderFact]) -> None:
        ttl = self.ttl_s
        for bc, b in batches.items():
            if b.counts:
                mk = keys.minutes(bc)
                for f, n in b.counts.items():
                    pipe.hincrby(mk, f, n)
                pipe.expire(mk, ttl)
            if b.seconds:
                sk = keys.seconds(bc)
                for s, n in b.seconds.items():
                    pipe.hincrby(sk, str(s), n)
                pipe.expire(sk, ttl)
            if b.viewers:
                everyone: set[str] = set()
                for minute, users in b.viewers.items():
                    uk = keys.uniques(bc, minute)
                    pipe.pfadd(uk, *users)
                    pipe.expire(uk, ttl)
                    everyone |= users
                pipe.pfadd(keys.uniques(bc), *everyone)
                pipe.expire(keys.uniques(bc), ttl)
        by_sale: dict[tuple[str, str], list[StockFact]] = {}
        for fact in stock:
            by_sale.setdefault((fact.broadcast, fact.sale_id), []).append(fact)
        for (bc, sale_id), facts in by_sale.items():
            args: list[Any] = [sale_id, ttl]
            for fact in facts:
                args += [fact.id, fact.type, fact.at_ms, fact.qty, fact.user]
            await self._stock(keys=[keys.sale(bc, sale_id), keys.minutes(bc), keys.reservers(bc), keys.sales(bc)],
                        args=args, client=pipe)
        for o in orders:
            await self._order(keys=[keys.seen(o.broadcast), keys.minutes(o.broadcast), keys.buyers(o.broadcast),
                              keys.sale(o.broadcast, o.sale_id), keys.sale_buyers(o.broadcast, o.sale_id),
                              keys.sales(o.broadcast)],
                        args=[o.key, o.kind, o.at_ms, o.qty, o.total, o.currency, o.user, o.sale_id, ttl],
                        client=pipe)

    async def report(self, broadcast: str, *, now_ms: int, sales: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Every figure of a broadcast. `sales` are the sales' own facts (id, title, units, sold,
        opened_at, soldout_at...) from whoever owns them; figures of sales not listed are added by id."""
        r = self.redis
        pipe = r.pipeline(transaction=False)
        pipe.hgetall(keys.minutes(broadcast))
        pipe.hgetall(keys.seconds(broadcast))
        pipe.pfcount(keys.uniques(broadcast))
        pipe.pfcount(keys.reservers(broadcast))
        pipe.pfcount(keys.buyers(broadcast))
        pipe.smembers(keys.sales(broadcast))
        mins_raw, secs_raw, uniq, reservers, buyers, sale_ids = await pipe.execute()
        minutes = _int_hash(mins_raw)
        seconds = {int(k): v for k, v in _int_hash(secs_raw).items()}
        minute_set = {int(k.split(":", 1)[0]) for k in minutes} | {s // 60 for s in seconds}
        ids = [s["id"] for s in sales or []]
        ids += sorted(x.decode() if isinstance(x, bytes) else x for x in sale_ids if (x.decode() if isinstance(x, bytes) else x) not in ids)
        pipe = r.pipeline(transaction=False)
        ordered_minutes = sorted(minute_set)
        span = list(range(ordered_minutes[0], ordered_minutes[-1] + 1)) if ordered_minutes else []
        for m in span:
            pipe.pfcount(keys.uniques(broadcast, m))
        for sid in ids:
            pipe.hgetall(keys.sale(broadcast, sid))
            pipe.pfcount(keys.sale_buyers(broadcast, sid))
        got = await pipe.execute() if len(pipe) else []
        unique_per_minute = dict(zip(span, got[:len(span)]))
        rest = got[len(span):]
        per_sale = {sid: (_int_hash(rest[2 * i]), rest[2 * i + 1]) for i, sid in enumerate(ids)}
        meta = {s["id"]: s for s in sales or []}
        return build_report(broadcast, now_ms=now_ms, minutes=minutes, seconds=seconds, span=span,
                            unique_per_minute=unique_per_minute, unique=uniq, reservers=reservers, buyers=buyers,
                            sales=[(meta.get(sid, {"id": sid}), *per_sale[sid]) for sid in ids])


def _int_hash(raw: dict[Any, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, v in (raw or {}).items():
        key = k.decode() if isinstance(k, bytes) else k
        try:
            out[key] = int(v)
        except (TypeError, ValueError):
            continue  # e.g. a sale's cursor
    return out
