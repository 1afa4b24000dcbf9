"""A live auction under load, through the real socket path.

    python -m loadtest.auction_bench [--bidders 500] [--seconds 30] [--processes 2] [--json]
    python -m loadtest.auction_bench --url http://127.0.0.1:8080 --secret S ...   # a server you started

Without --url it starts its own redis-server and `hawker serve` (loadtest/localstack.py) with the
bid rate limit of --rate bids/s per user. It creates a broadcast and a sudden-death auction of
--seconds, connects --bidders light clients (loadtest/lightclient.py; each its own viewer token)
spread over client processes, starts the auction, and every bidder bids as fast as the rate limit
allows until it is told AUCTION_CLOSED: most send `next: true`, every --proxy-every'th sends max
bids (`auction.max_bid`) a few increments above the price it last heard.

Checked: exactly one bidder hears `auction.hold`, and it is the winner implied by the accepted bids
(replayed here, in the order of their `v`, with the documented rules) at the implied price (the
second-highest max plus one increment, or the highest bid); no accepted bid at or after `ends_at`
(server clock); the server's audit endpoint agrees. Reported: accepted bids/s, ack p50/p99, answers
by code. The last line is one JSON object with `bids_per_s`, `p99_ms`, `winner_ok`,
`late_bids_accepted` (must be 0). Exit status 1 when a check fails."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from typing import Any

import aiohttp

from loadtest.lightclient import LightClient, mint
from loadtest.localstack import LocalStack
from loadtest.measure import cpu_seconds, http_json, pct
from loadtest.procs import receive, start_clients

START_PRICE = 100
RETRYABLE = ("BUSY", "UNAVAILABLE", "RATE_LIMITED", "FLOOD")


# ---- one client process -------------------------------------------------------------------------

async def _bidders(url: str, secret: str, broadcast: str, auction_id: str, first: int, count: int, rate: float,
                   proxy_every: int, ctl: Any) -> dict[str, Any]:
    clients: list[LightClient | None] = [None] * count
    sem = asyncio.Semaphore(100)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:

        async def join(i: int) -> None:
            async with sem:
                for attempt in range(5):
                    try:
                        tok = mint(secret, sub=f"bidder{first + i}", role="viewer", broadcast=broadcast)
                        c = await LightClient.connect(session, url, tok, "msgpack" if i % 2 == 0 else "json")
                        await asyncio.wait_for(c.snapshot, 30)
                        clients[i] = c
                        return
                    except Exception:  # noqa: BLE001 - refused while the server is busy: try again
                        await asyncio.sleep(0.2 * (attempt + 1) + random.random() * 0.3)

        await asyncio.gather(*(join(i) for i in range(count)))
        ctl.send(("ready", sum(c is not None for c in clients)))
        ctl.recv()  # the auction has started
        accepted: list[tuple[int, str, str, int, int, int]] = []  # v, kind, user, amount, at, high
        latencies: list[float] = []
        codes: dict[str, int] = {}

        async def bid(i: int) -> None:
            c = clients[i]
            if c is None:
                return
            user = f"bidder{first + i}"
            proxy = proxy_every > 0 and (first + i) % proxy_every == 0
            interval = 1.0 / rate
            heard = START_PRICE
            await asyncio.sleep(random.random() * interval)  # spread the first bids over one interval
            n = 0
            while True:
                n += 1
                t0 = time.perf_counter()
                if proxy:
                    top = heard + random.randint(1, 8) * 100
                    payload: dict[str, Any] = {"auction_id": auction_id, "max": top, "request_id": f"{user}-{n}"}
                    event = "auction.max_bid"
                else:
                    payload = {"auction_id": auction_id, "next": True, "request_id": f"{user}-{n}"}
                    event = "auction.bid"
                try:
                    ack = await c.call(event, payload, 30)
                except Exception:  # noqa: BLE001 - a bid that got no answer is counted, not fatal
                    ack = {"ok": False, "error": {"code": "NO_ANSWER"}}
                dt = time.perf_counter() - t0
                latencies.append(dt * 1000)
                code = "OK" if ack.get("ok") else ack["error"]["code"]
                codes[code] = codes.get(code, 0) + 1
                if code == "OK":
                    accepted.append((ack["v"], ack["kind"], user, top if proxy else ack["amount"], ack["at"],
                                     ack["high"]))
                    heard = max(heard, ack["high"])
                elif code == "BID_TOO_LOW":
                    heard = max(heard, ack["error"]["min"])
                elif code == "AUCTION_CLOSED" or code == "NO_ANSWER":
                    return
                wait = interval - dt
                if code in RETRYABLE:
                    wait = max(wait, (ack["error"].get("retry_after") or 100) / 1000)
                if wait > 0:
                    await asyncio.sleep(wait)

        await asyncio.gather(*(bid(i) for i in range(count)))
        deadline = time.monotonic() + 20  # the close goes out within a tick of ends_at: wait for it
        while time.monotonic() < deadline and not all(
                any(e == "auction.won" for e, _ in c.events) for c in clients if c is not None):
            await asyncio.sleep(0.1)
        # the winner's private `auction.hold` follows `auction.won` (the hold is made after the close)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not any(e == "auction.hold" for c in clients if c is not None
                                                       for e, _ in c.events):
            await asyncio.sleep(0.1)
        holds = [(f"bidder{first + i}", d) for i, c in enumerate(clients) if c is not None
                 for e, d in c.events if e == "auction.hold"]
        won = [d for c in clients if c is not None for e, d in c.events if e == "auction.won"]
        await asyncio.gather(*(c.close() for c in clients if c is not None))
    return {"accepted": accepted, "latencies": latencies, "codes": codes, "holds": holds, "won": won[:1],
            "won_count": len(won)}


def _client_process(url: str, secret: str, broadcast: str, auction_id: str, first: int, count: int, rate: float,
                    proxy_every: int, ctl: Any) -> None:
    try:
        ctl.send(("done", asyncio.run(_bidders(url, secret, broadcast, auction_id, first, count, rate, proxy_every,
                                               ctl))))
    except BaseException as exc:  # noqa: BLE001 - tell the parent instead of hanging it
        ctl.send(("error", repr(exc)))


# ---- the rules, replayed from the accepted acks ---------------------------------------------------

def step(table: list[list[int]], price: int) -> int:
    return [s for f, s in table if price >= f][-1]


def replay(accepted: list[tuple[int, str, str, int, int, int]], table: list[list[int]],
           start: int) -> tuple[str, int, int]:
    """(winner, price, acks whose `high` disagrees with the rules), applying docs/protocol.md
    "Auctions: the rules" to the accepted bids in the order the server made them (`v`)."""
    high, leader, lmax, wrong = 0, "", 0, 0
    for _v, kind, user, amount, _at, said in sorted(accepted):
        if kind == "max" and user == leader:
            lmax = max(lmax, amount)
        elif not leader:
            leader, lmax, high = user, amount, amount if kind == "bid" else start
        elif amount > lmax:
            high = amount if kind == "bid" else min(amount, lmax + step(table, lmax))
            leader, lmax = user, amount
        elif amount == lmax:
            high = lmax
        else:
            high = min(lmax, amount + step(table, amount))
        wrong += high != said
    return leader, high, wrong


# ---- the parent ------------------------------------------------------------------------------------

async def _host(url: str, token: str, event: str, payload: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        c = await LightClient.connect(session, url, token, "json")
        await asyncio.wait_for(c.snapshot, 30)
        ack = await c.call(event, payload)
        await c.close()
    if not ack.get("ok"):
        raise RuntimeError(f"{event} refused: {ack}")
    answer: dict[str, Any] = ack
    return answer


def run(url: str, secret: str, bidders: int, seconds: int, processes: int, rate: float,
        proxy_every: int, server_pid: int | None = None, redis_pid: int | None = None) -> dict[str, Any]:
    broadcast = f"auction{bidders}-{uuid.uuid4().hex[:6]}"
    host = mint(secret, sub="auction-host", role="host", broadcast=broadcast)
    http_json("POST", url + "/api/broadcasts", host, {"id": broadcast, "title": "Auction bench", "products": [
        {"id": "p1", "title": "Vintage camera", "price": 99000, "currency": "KRW"}]})
    created = asyncio.run(_host(url, host, "auction.create", {
        "product_id": "p1", "start_price": START_PRICE, "duration_s": seconds, "sudden_death": True,
        "request_id": uuid.uuid4().hex}))["auction"]
    auction_id, table = created["auction_id"], created["increments"]
    pipes, procs, connected = start_clients(
        _client_process, lambda first, count: (url, secret, broadcast, auction_id, first, count, rate, proxy_every),
        bidders, processes)
    started = asyncio.run(_host(url, host, "auction.start", {"auction_id": auction_id}))["auction"]
    t0, server0, redis0 = time.monotonic(), cpu_seconds(server_pid), cpu_seconds(redis_pid)
    clients0 = sum(cpu_seconds(p.pid) for p in procs)
    for pipe in pipes:
        pipe.send("go")
    accepted: list[tuple[int, str, str, int, int, int]] = []
    latencies: list[float] = []
    codes: dict[str, int] = {}
    holds: list[tuple[str, dict[str, Any]]] = []
    won: list[dict[str, Any]] = []
    won_count = 0
    time.sleep(max(0.0, started["ends_at"] - started["started_at"]) / 1000)  # the bidding (sudden death)
    wall = max(0.001, time.monotonic() - t0)
    server_cpu, redis_cpu = cpu_seconds(server_pid) - server0, cpu_seconds(redis_pid) - redis0
    cpu = {"server_cpu_pct": round(100 * server_cpu / wall, 1) if server_pid else -1.0,
           "redis_cpu_pct": round(100 * redis_cpu / wall, 1) if redis_pid else -1.0,
           "clients_cpu_pct": round(100 * (sum(cpu_seconds(p.pid) for p in procs) - clients0) / wall, 1)}
    for pipe in pipes:
        value = receive(pipe)
        accepted += [tuple(x) for x in value["accepted"]]  # JSON arrays from the pipe, in the tuple's order
        latencies += value["latencies"]
        for k, n in value["codes"].items():
            codes[k] = codes.get(k, 0) + n
        holds += [tuple(h) for h in value["holds"]]  # JSON arrays from the pipe, in the tuple's order
        won += value["won"]
        won_count += value["won_count"]
    for p in procs:
        p.join(10)
    ends_at = started["ends_at"]
    winner, price, wrong = replay(accepted, table, START_PRICE)
    audit = http_json("GET", f"{url}/api/auctions/{auction_id}/audit",
                  mint(secret, sub="auditor", role="viewer", broadcast=broadcast))
    late = sum(1 for a in accepted if a[4] >= ends_at)
    ats = sorted(a[4] for a in accepted)
    window_s = max(0.001, (ats[-1] - ats[0]) / 1000) if len(ats) > 1 else float(seconds)
    hold_ok = len(holds) == 1 and holds[0][0] == winner and holds[0][1]["price"] == price
    won_ok = bool(won) and won[0]["result"] == "sold" and won[0]["price"] == price
    audit_ok = audit["audit"]["ok"] and audit["price"] == price and audit["bids"] == len(accepted)
    return {
        "bidders": bidders, "connected": connected, "seconds": seconds, "rate_per_bidder": rate,
        "accepted": len(accepted), "bids_per_s": round(len(accepted) / window_s, 1),
        "p50_ms": round(pct(latencies, 0.50), 1), "p99_ms": round(pct(latencies, 0.99), 1),
        "max_ms": round(max(latencies, default=0.0), 1), "codes": codes, "price": price,
        "winner_ok": bool(hold_ok and won_ok and audit_ok and wrong == 0), "acks_disagreeing": wrong,
        "holds": len(holds), "won_heard_by": won_count, "audit_ok": audit["audit"]["ok"],
        "late_bids_accepted": late + audit["audit"]["late_bids"], "internal": codes.get("INTERNAL", 0),
        "cores": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2), **cpu,
        # what one accepted bid costs the server (and Redis) in CPU: capacity = 1000 / this per core
        "server_cpu_ms_per_bid": round(1000 * server_cpu / max(1, len(accepted)), 3) if server_pid else -1.0,
        "redis_cpu_ms_per_bid": round(1000 * redis_cpu / max(1, len(accepted)), 3) if redis_pid else -1.0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m loadtest.auction_bench", description=__doc__.split("\n")[0])
    ap.add_argument("--bidders", type=int, default=500)
    ap.add_argument("--seconds", type=int, default=30, help="the auction's duration (sudden death)")
    ap.add_argument("--rate", type=float, default=5.0, help="bids/s per bidder (the server's limit when it is ours)")
    ap.add_argument("--proxy-every", type=int, default=10, help="every n-th bidder sends max bids (0: none)")
    ap.add_argument("--processes", type=int, default=2, help="client processes")
    ap.add_argument("--url", help="a running server (default: start redis-server and hawker serve)")
    ap.add_argument("--secret", help="its token secret (with --url)")
    ap.add_argument("--json", action="store_true", help="only the JSON line")
    args = ap.parse_args(argv)
    if args.bidders < 2 or args.seconds < 5 or args.processes < 1 or args.rate <= 0:
        ap.error("--bidders >= 2, --seconds >= 5, --processes >= 1, --rate > 0")
    if args.url:
        if not args.secret:
            ap.error("--url needs --secret")
        report = run(args.url, args.secret, args.bidders, args.seconds, args.processes, args.rate, args.proxy_every)
    else:
        env = {"HAWKER_AUCTION_BID_RATE": str(args.rate), "HAWKER_AUCTION_BID_BURST": "2"}
        with LocalStack(env=env) as stack:
            report = run(stack.url, stack.secret, args.bidders, args.seconds, args.processes, args.rate,
                         args.proxy_every, server_pid=stack.pid,
                         redis_pid=stack.redis.pid if stack.redis is not None else None)
    if not args.json:
        print(f"{report['connected']}/{report['bidders']} bidders, {report['accepted']} accepted bids in "
              f"{report['seconds']} s: {report['bids_per_s']} bids/s; ack p50 {report['p50_ms']} ms, "
              f"p99 {report['p99_ms']} ms, max {report['max_ms']} ms")
        print(f"answers: {report['codes']}")
        print(f"CPU while bidding: server {report['server_cpu_pct']}%, Redis {report['redis_cpu_pct']}%, clients "
              f"{report['clients_cpu_pct']}% ({report['cores']} cores, load average {report['load_avg_1m']}); per "
              f"accepted bid: server {report['server_cpu_ms_per_bid']} ms, Redis {report['redis_cpu_ms_per_bid']} ms")
        print(f"winner ok: {report['winner_ok']} (price {report['price']}, holds {report['holds']}, "
              f"audit ok {report['audit_ok']}), late bids accepted: {report['late_bids_accepted']}")
    print(json.dumps(report, sort_keys=True))
    ok = report["winner_ok"] and report["late_bids_accepted"] == 0 and report["internal"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
