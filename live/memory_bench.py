"""Memory benchmark: bytes a finished sale and an order keep in Redis, before and after compaction.

    python -m live.memory_bench [--json] [--sales 10] [--units 100] [--viewers 1000] [--redis-url URL]

Starts its own server (Debian's redis-server when >= 7, else the embedded Valkey; see
live/embedded_redis.py) unless --redis-url is given (then it FLUSHALLs that database: never point it
at a real one). Each sale goes the way a flash sale does, through the real libraries:
  - the hub's sale record (shop/sales.py) and an inventory lot of `--units` units, limit 1;
  - `--viewers` distinct viewers each try to reserve one unit with their own request id; of the
    holds, 4 in 5 are paid through Checkout (sandbox provider: an order, a charge) and 1 in 5 is
    released (the others are turned away: SOLD_OUT);
  - the lot is closed.
Then every key is measured with MEMORY USAGE (all elements: SAMPLES 0) and grouped: the sale's
keys (lot keys, the hub's sale record, its entries in the global indexes), the orders' kept keys
(order, by-reservation, per broadcast/user/lot indexes), keys with a TTL (payment attempts, charges,
idempotency: they expire by themselves) and the bounded order event stream. Every lot is then
compacted (grace 0) and measured again. Capacity per GiB = 2**30 / bytes (no headroom: see
docs/scaling.md for the margin to keep). With --json the last line is one JSON object."""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any

import redis.asyncio as aioredis

from checkout import Checkout, Ledger, PayRequest, SandboxProvider
from inventory import Inventory, LotSpec
from live.embedded_redis import EmbeddedRedis
from shop.sales import Sale, SaleStore

CARD = {"number": "4242 4242 4242 4242", "exp": "12/39", "cvc": "123"}
CONTACT = {"name": "Kim Minji", "email": "minji.kim@example.test", "phone": "+82 10 1234 5678"}
GIB = 2**30

_SALE_KEY = re.compile(r"^(inv:\{lot:.*\}:\w+|hub:sale:\{[^}]*\}|hub:\{[^}]*\}:sales)$")
_SALE_INDEX = {"inv:lots", "inv:compact", "hub:sales:watch", "inv:compact:backfilled"}
_ORDER_KEY = re.compile(r"^(order:.*|orders:(bc|user|lot):.*)$")


def _s(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


async def measure(redis: aioredis.Redis) -> dict[str, int]:
    """Bytes per class of key (MEMORY USAGE ... SAMPLES 0, which counts every element)."""
    out = {"sale": 0, "sale_index": 0, "order": 0, "order_events": 0, "ttl": 0, "other": 0}
    async for raw in redis.scan_iter(count=1000):
        key = _s(raw)
        size = int(await redis.memory_usage(key, samples=0) or 0)
        if _ORDER_KEY.match(key):  # kept for the retention (a TTL of days), so counted as kept
            out["order"] += size
        elif await redis.pttl(key) > 0:
            out["ttl"] += size
        elif _SALE_KEY.match(key):
            out["sale"] += size
        elif key in _SALE_INDEX:
            out["sale_index"] += size
        elif key == "orders:events":
            out["order_events"] += size
        else:
            out["other"] += size
    return out


async def one_sale(redis: aioredis.Redis, inv: Inventory, store: SaleStore, co: Checkout, broadcast: str,
                   units: int, viewers: int) -> dict[str, int]:
    sale_id = "s" + uuid.uuid4().hex[:16]
    now = await inv.server_time_ms()
    await store.create(Sale(id=sale_id, broadcast=broadcast, product_id="p1", title="Linen shirt",
                            image_url="/static/demo/shirt.svg", price=12900, currency="KRW", units=units,
                            limit=1, hold_s=60, opens_at=now, closes_at=None, state="scheduled", created_at=now))
    await inv.create_lot(LotSpec(sale_id, "SKU-LINEN-01", total=units, unit_price=12900, currency="KRW",
                                 per_user_limit=1, hold_s=60, opens_at_ms=now - 1))
    users = [f"u-{uuid.uuid4().hex[:20]}" for _ in range(viewers)]
    results = await asyncio.gather(*(inv.reserve(sale_id, u, 1, uuid.uuid4().hex) for u in users))
    paid = released = 0
    holders = [(u, r.reservation.id) for u, r in zip(users, results) if r.ok and r.reservation is not None]
    for i, (user, rid) in enumerate(holders):
        if i % 5 == 4:
            await inv.release(sale_id, rid, user)
            released += 1
        else:
            await co.pay(PayRequest(user, broadcast, sale_id, rid, CARD, CONTACT))
            paid += 1
    await inv.close(sale_id)
    return {"paid": paid, "released": released, "refused": viewers - len(holders)}


async def run(url: str, sales: int, units: int, viewers: int) -> dict[str, Any]:
    redis = aioredis.Redis.from_url(url)
    try:
        await redis.flushall()
        info = await redis.info("server")
        mem = await redis.info("memory")
        inv = Inventory(redis)
        store = SaleStore(redis)
        co = Checkout(redis, inv, SandboxProvider(redis), ledger=Ledger(redis, retention_s=90 * 86400))
        totals = {"paid": 0, "released": 0, "refused": 0}
        for i in range(sales):
            got = await one_sale(redis, inv, store, co, f"bc{i % 3}", units, viewers)
            totals = {k: totals[k] + got[k] for k in totals}
        before = await measure(redis)
        times = []
        lots = await inv.list_lots()
        for lot in lots:
            t0 = time.perf_counter()
            res = await inv.compact(lot, grace_s=0)
            times.append((time.perf_counter() - t0) * 1000)
            assert res.code == "", res
            assert (await inv.audit(lot)).ok
        after = await measure(redis)
    finally:
        await redis.aclose()
    orders = totals["paid"]
    per_sale_before = (before["sale"] + before["sale_index"]) / sales
    per_sale_after = (after["sale"] + after["sale_index"]) / sales
    per_order = before["order"] / max(1, orders)
    return {
        "server": f"{info.get('server_name', 'redis')} {info.get('valkey_version', info['redis_version'])}",
        "allocator": _s(mem.get("mem_allocator", "?")),
        "sales": sales, "units": units, "viewers": viewers, **totals, "orders": orders,
        "bytes_per_sale_before": round(per_sale_before), "bytes_per_sale_after": round(per_sale_after),
        "bytes_per_sold_unit_after": round(per_sale_after / max(1, orders / sales)),
        "bytes_per_order": round(per_order),
        "ttl_bytes_per_order": round(before["ttl"] / max(1, orders)),
        "order_events_bytes": before["order_events"],
        "sales_per_gib_before": int(GIB / per_sale_before), "sales_per_gib_after": int(GIB / per_sale_after),
        "orders_per_gib": int(GIB / per_order),
        "compact_ms_p50": round(statistics.median(times), 2), "compact_ms_max": round(max(times), 2),
        "by_class_before": before, "by_class_after": after,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--sales", type=int, default=10)
    p.add_argument("--units", type=int, default=100, help="units per sale")
    p.add_argument("--viewers", type=int, default=1000, help="viewers trying to reserve, per sale")
    p.add_argument("--redis-url", default="", help="use this server (it is FLUSHALLed) instead of starting one")
    a = p.parse_args(argv)
    if min(a.sales, a.units, a.viewers) < 1:
        p.error("--sales, --units and --viewers must be >= 1")
    server = None
    url = a.redis_url
    if not url:
        server = EmbeddedRedis(tempfile.mkdtemp(prefix="hawker-membench-")).start()
        url = server.url
    try:
        out = asyncio.run(run(url, a.sales, a.units, a.viewers))
    finally:
        if server is not None:
            server.stop()
    if a.json:
        print(json.dumps(out))
    else:
        print(f"{out['server']} ({out['allocator']}): {out['sales']} sales of {out['units']} units, "
              f"{out['viewers']} viewers each; {out['orders']} orders")
        print(f"per finished sale: {out['bytes_per_sale_before']} B before compaction, "
              f"{out['bytes_per_sale_after']} B after ({out['bytes_per_sold_unit_after']} B per sold unit); "
              f"{out['sales_per_gib_after']} compacted sales per GiB")
        print(f"per order: {out['bytes_per_order']} B kept (+{out['ttl_bytes_per_order']} B that expire by "
              f"themselves); {out['orders_per_gib']} orders per GiB")
        print(f"compaction: {out['compact_ms_p50']} ms per lot (max {out['compact_ms_max']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
