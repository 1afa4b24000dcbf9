"""Memory that follows the business: a finished lot is compacted to its audit summary and its SOLD
reservations.

Why: every reservation attempt leaves a reservation record, a request id and stream events behind.
A lot that is closed, holds nothing and has been quiet for `grace_s` needs none of that any more:
the audit still adds up from the SOLD reservations, the per-user counts and the counters. One Lua
script per lot (`compact` in inventory/lua/records.py, keys of the lot's hash tag, Redis TIME) decides and
compacts atomically, so it is safe to run from every node at once.

Which lots to look at: `inv:compact`, a sorted set of lot ids scored by when to look next (the
lot's closes_at when it has one, 0 after close()/cancel()). `compact_due()` takes the due ones,
compacts what it can and scores the others by what the script says (when the last hold expires,
when the grace ends)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from inventory.replies import text

COMPACT_INDEX = "inv:compact"
BACKFILLED = "inv:compact:backfilled"
RECHECK_OPEN_MS = 24 * 3600 * 1000  # a lot found open again (reopened by hand) is looked at daily


@dataclass(frozen=True, slots=True)
class CompactResult:
    """code '' = compacted now; COMPACTED (earlier), NOT_CLOSED, NOT_SETTLED, NOT_DUE, UNKNOWN_LOT.
    at_ms: when it was compacted, or when to look again (None when the script cannot say)."""

    code: str
    at_ms: int | None = None
    released: int = 0  # reservations dropped, by their final state
    expired: int = 0
    events: int = 0  # stream entries dropped
    waitlist: int = 0
    requests: int = 0  # reserve request ids dropped

    @property
    def compacted(self) -> bool:
        return self.code in ("", "COMPACTED")


def _result(r: list[Any]) -> CompactResult:
    code = text(r[0])
    at = text(r[1]) if len(r) > 1 else ""
    counts = [int(x) for x in r[2:7]] if len(r) >= 7 else [0] * 5
    return CompactResult(code, int(at) if at else None, *counts)


async def schedule(redis: aioredis.Redis, lot_id: str, at_ms: int) -> None:
    """Look at the lot at `at_ms` (0: at the next pass)."""
    await redis.zadd(COMPACT_INDEX, {lot_id: at_ms})


async def backfill(redis: aioredis.Redis) -> int:
    """Lots created before compaction existed are in no index: add every lot once (a marker key
    makes this run once per Redis). Returns how many were added."""
    if not await redis.set(BACKFILLED, 1, nx=True):
        return 0
    lots = [text(x) for x in await redis.smembers("inv:lots")]
    if not lots:
        return 0
    added = await redis.zadd(COMPACT_INDEX, {lot: 0 for lot in lots}, nx=True)
    return int(added or 0)  # ZADD NX answers a count; redis-py's type also allows INCR's None


async def compact_due(inv: Any, grace_s: int, limit: int = 100) -> list[tuple[str, CompactResult]]:
    """One pass: every lot due in the index (at most `limit`), compacted or rescheduled."""
    now = await inv.server_time_ms()
    redis = inv.redis
    ids = [text(x) for x in await redis.zrangebyscore(COMPACT_INDEX, "-inf", now, start=0, num=limit)]
    out = []
    for lot_id in ids:
        res = await inv.compact(lot_id, grace_s)
        if res.compacted or res.code == "UNKNOWN_LOT":
            await redis.zrem(COMPACT_INDEX, lot_id)
        elif res.code == "NOT_CLOSED" and res.at_ms is None:
            await redis.zadd(COMPACT_INDEX, {lot_id: now + RECHECK_OPEN_MS})
        else:
            await redis.zadd(COMPACT_INDEX, {lot_id: max(res.at_ms or 0, now + 1000)})
        out.append((lot_id, res))
    return out
