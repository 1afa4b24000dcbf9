"""Does a node's idle CPU grow with the number of sales ever run? (It must not.)

    python -m loadtest.sales_idle [--sales 0,100,400] [--seconds 10] [--json]

Starts its own redis-server and `hawker serve` (loadtest/localstack.py), then for each count: a
host schedules that many more sales without an end (`duration_s` unset: they never close), a
buyer sells every one of them out, then nothing happens for `--seconds` while the server's CPU is
sampled from /proc. The first version's stock watcher read every such sale every 100 ms forever,
so idle CPU rose with each sale; now a sale with no activity costs nothing between the watcher's
slow safety sweeps. Reports CPU % of one core per count; last line JSON."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
import uuid

import aiohttp

from loadtest.lightclient import LightClient, mint
from loadtest.localstack import LocalStack
from loadtest.measure import ProcSampler


def _create_broadcast(url: str, token: str, broadcast: str) -> None:
    body = json.dumps({"id": broadcast, "title": "Idle sales", "products": [
        {"id": "p1", "title": "Thing", "price": 1000, "currency": "KRW"}]}).encode()
    req = urllib.request.Request(url + "/api/broadcasts", data=body, method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=30).read()


async def _add_sold_out_sales(url: str, secret: str, broadcast: str, n: int) -> None:
    async with aiohttp.ClientSession() as session:
        host = await LightClient.connect(session, url, mint(secret, sub="host", role="host", broadcast=broadcast), "json")
        buyer = await LightClient.connect(session, url, mint(secret, sub=f"b{uuid.uuid4().hex[:6]}", role="viewer",
                                                             broadcast=broadcast), "json")
        await asyncio.gather(host.snapshot, buyer.snapshot)
        async def call(c: LightClient, event: str, payload: dict) -> dict:
            for _ in range(50):  # a socket may send 20 events/s: wait out FLOOD like a client should
                ack = await c.call(event, payload)
                if ack.get("ok") or ack["error"]["code"] not in ("FLOOD", "BUSY", "UNAVAILABLE"):
                    return ack
                await asyncio.sleep(ack["error"].get("retry_after", 100) / 1000)
            raise RuntimeError(f"{event} kept being refused: {ack}")

        for _ in range(n):
            ack = await call(host, "sale.schedule", {"product_id": "p1", "units": 1, "limit": 1, "hold_s": 600,
                                                     "request_id": uuid.uuid4().hex})
            sale = ack["sale"]["id"]
            held = await call(buyer, "sale.reserve", {"sale_id": sale, "qty": 1, "request_id": sale})
            if not held.get("ok"):
                raise RuntimeError(f"reserve refused: {held}")
        await asyncio.gather(host.close(), buyer.close())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.sales_idle", description=__doc__.split("\n\n")[0])
    p.add_argument("--sales", default="0,100,400", help="cumulative sale counts to measure at")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    counts = sorted(int(x) for x in args.sales.split(",") if x.strip())
    rows = []
    with LocalStack() as stack:
        broadcast = "idle1"
        _create_broadcast(stack.url, mint(stack.secret, sub="host", role="host", broadcast=broadcast), broadcast)
        made = 0
        for count in counts:
            if count > made:
                asyncio.run(_add_sold_out_sales(stack.url, stack.secret, broadcast, count - made))
                made = count
            time.sleep(2.0)  # let the sold-out announcements and the first sweep pass
            sampler = ProcSampler(stack.pid)
            time.sleep(args.seconds)
            rows.append({"sales": count, "idle_cpu_pct": round(sampler.cpu_pct(), 2),
                         "rss_mb": round(sampler.rss_mb(), 1)})
            if not args.json:
                print(f"{count} sales ever run: idle CPU {rows[-1]['idle_cpu_pct']} % of one core", file=sys.stderr)
    if not args.json:
        print("| sales ever run | idle server CPU (% of one core) | RSS MB |\n| --- | --- | --- |")
        for r in rows:
            print(f"| {r['sales']} | {r['idle_cpu_pct']} | {r['rss_mb']} |")
    print(json.dumps({"runs": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
