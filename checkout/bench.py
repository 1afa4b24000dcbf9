"""Checkout benchmark: payments through Checkout.pay and webhook deliveries to a real receiver.

    python -m checkout.bench [--json] [--payments 2000] [--concurrency 64] [--events 2000] [--workers 2]

Starts its own redis-server (AOF on, `appendfsync everysec`, as the ledger is meant to run) on a
free loopback port, then:

1. payments: `--payments` buyers each hold one unit of one lot (not timed), then `--concurrency`
   tasks pay (sandbox success card) as fast as they can; reports payments/s and p50/p99 of one
   `Checkout.pay` (begin_payment, charge, confirm, ledger, webhook emit), then checks that the
   lot sold exactly that many units, the ledger has one order each and the audit passes.
2. webhooks: `--events` events emitted for one endpoint, delivered by `--workers` delivery workers
   (one consumer group) to an aiohttp receiver on loopback that verifies every signature;
   reports deliveries/s and emit-to-receipt latency p50/p99.

With --json the last line is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from checkout.egress import EgressPolicy
from checkout.ledger import Ledger
from checkout.payments import SandboxProvider
from checkout.service import Checkout, PayRequest
from checkout.signature import verify
from checkout.webhooks import Webhooks
from inventory import Inventory, LotSpec
from redislayer.server import ThrowawayRedis, free_port

CARD = {"number": "4242424242424242", "exp": "12/39", "cvc": "123"}
CONTACT = {"name": "Bench Buyer", "email": "buyer@example.test"}
SECRET = "whsec_bench_0123456789"


def _pct(vals: list[float], p: float) -> float:
    s = sorted(vals)
    return s[min(len(s) - 1, int(p * len(s)))] if s else 0.0


async def _payments(redis: aioredis.Redis, n: int, concurrency: int) -> dict[str, Any]:
    inv = Inventory(redis)
    co = Checkout(redis, inv, SandboxProvider(redis), ledger=Ledger(redis))
    now = await inv.server_time_ms()
    await inv.create_lot(LotSpec("bench-lot", "SKU-B", total=n, unit_price=12900, currency="KRW", per_user_limit=1,
                                 hold_s=600, opens_at_ms=now - 1000))
    holds: list[tuple[str, str]] = []
    for i in range(n):
        r = await inv.reserve("bench-lot", f"u{i}", 1, request_id=f"q{i}")
        assert r.ok and r.reservation is not None, r
        holds.append((f"u{i}", r.reservation.id))
    queue = list(holds)
    lat: list[float] = []

    async def payer() -> None:
        while queue:
            user, rid = queue.pop()
            t0 = time.perf_counter()
            await co.pay(PayRequest(user, "bench", "bench-lot", rid, CARD, CONTACT))
            lat.append(time.perf_counter() - t0)

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(payer() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    levels = await inv.snapshot("bench-lot")
    if levels is None:
        raise RuntimeError("the bench lot is gone: nothing to report")
    orders = await co.ledger.of_lot("bench-lot")
    audit = await inv.audit("bench-lot")
    return {"payments": n, "concurrency": concurrency, "payments_per_s": round(n / wall),
            "pay_p50_ms": round(_pct(lat, 0.5) * 1000, 2), "pay_p99_ms": round(_pct(lat, 0.99) * 1000, 2),
            "cpu_ms_per_payment": round(cpu / n * 1000, 3), "sold": levels.sold, "orders": len(orders),
            "audit_ok": audit.ok}


async def _webhooks(redis: aioredis.Redis, events: int, workers: int) -> dict[str, Any]:
    received: dict[str, float] = {}
    bad = 0
    done = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        nonlocal bad
        body = await request.read()
        if not verify(SECRET, body, request.headers.get("Hawker-Signature", "")):
            bad += 1
            return web.Response(status=400)
        ev = json.loads(body)
        received.setdefault(ev["id"], time.time() * 1000 - ev["data"]["sent"])
        if len(received) >= events:
            done.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    loopback = EgressPolicy.from_settings(allow_private=True, http_hosts="127.0.0.1")  # a development receiver
    nodes = [Webhooks(redis, consumer=f"w{i}", poll_ms=100, policy=loopback) for i in range(workers)]
    await nodes[0].register("bench", f"http://127.0.0.1:{port}/hooks", SECRET)
    for w in nodes:
        await w.start()
    try:
        t0 = time.perf_counter()
        for i in range(events):
            await nodes[0].emit("order.created", "bench", {"order": {"id": f"o{i}"}, "sent": time.time() * 1000},
                                event_id=f"bench:{i}")
        await asyncio.wait_for(done.wait(), timeout=max(60.0, events / 50))
        wall = time.perf_counter() - t0
    finally:
        for w in nodes:
            await w.stop()
        await runner.cleanup()
    lat = list(received.values())
    return {"events": events, "workers": workers, "deliveries_per_s": round(events / wall),
            "delivery_p50_ms": round(_pct(lat, 0.5), 1), "delivery_p99_ms": round(_pct(lat, 0.99), 1),
            "bad_signatures": bad, "delivered": len(received)}


async def run(payments: int, concurrency: int, events: int, workers: int) -> dict[str, Any]:
    with ThrowawayRedis(("--appendonly", "yes", "--appendfsync", "everysec"),
                        prefix="hawker-checkout-bench-") as server:
        redis = aioredis.Redis.from_url(server.url)
        try:
            out = await _payments(redis, payments, concurrency)
            out.update(await _webhooks(redis, events, workers))
        finally:
            await redis.aclose()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m checkout.bench", description=__doc__.split("\n")[0])
    p.add_argument("--payments", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    out = asyncio.run(run(a.payments, a.concurrency, a.events, a.workers))
    print(f"payments: {out['payments_per_s']}/s with {a.concurrency} in flight, pay p50 {out['pay_p50_ms']} ms "
          f"p99 {out['pay_p99_ms']} ms, {out['cpu_ms_per_payment']} ms CPU each; sold {out['sold']}, "
          f"orders {out['orders']}, audit {'ok' if out['audit_ok'] else 'FAILED'}")
    print(f"webhooks: {out['deliveries_per_s']} deliveries/s with {a.workers} workers, emit->receipt p50 "
          f"{out['delivery_p50_ms']} ms p99 {out['delivery_p99_ms']} ms; bad signatures {out['bad_signatures']}")
    if a.json:
        print(json.dumps(out))
    ok = out["audit_ok"] and out["sold"] == out["orders"] == a.payments and out["bad_signatures"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
