"""How fast the server admits viewers: a burst of joins, joins/s and join latency.

    python -m loadtest.join_bench                        # starts redis-server + hawker serve here
    python -m loadtest.join_bench --joins 5000 --concurrency 400 --json
    python -m loadtest.join_bench --url http://127.0.0.1:8080 --secret "$HAWKER_SECRET"

A join is what a player does when it opens the page: TCP connect, the websocket upgrade, the
Socket.IO CONNECT with its token, the `snapshot` event, then three `time` samples for its clock
offset. The bench keeps `--concurrency` joins in flight (closed loop: a finished join starts the
next one) on light sockets (loadtest/lightpool.py: one native thread, no decoding past what a
join needs) and keeps every joined socket open, as viewers stay. The broadcast has a product and a
scheduled sale, so the snapshot carries every part a viewer sees before a sale.

Printed: joins, failures by code, partial snapshots, joins/s over the burst (first start -> last
snapshot), join latency p50/p99 (connect -> snapshot, retries included), the server's CPU and
this client's own CPU (near 100 % means the client, not the server, set the pace). It reaches
the server over the network only."""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any

import requests

from loadtest.lightclient import mint
from loadtest.lightpool import LightPool, Report, Viewer
from loadtest.localstack import LocalStack

MAX_JOINS = 20_000


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(q * len(s)))], 1)


def _setup(url: str, secret: str, broadcast: str) -> None:
    """A live broadcast with a product and a sale scheduled 10 minutes ahead (its part is in every snapshot)."""
    import socketio

    host = mint(secret, sub="bench-host", role="host", broadcast=broadcast, ttl=7200)
    r = requests.post(url + "/api/broadcasts", headers={"Authorization": f"Bearer {host}"}, timeout=10, json={
        "id": broadcast, "title": "Join bench", "products": [
            {"id": "p1", "title": "Limited sneaker", "price": 129000, "currency": "KRW", "description": "bench"}]})
    if r.status_code != 201:
        raise RuntimeError(f"creating the broadcast failed: {r.status_code} {r.text}")
    sio = socketio.Client()
    sio.connect(url, auth={"token": host}, transports=["websocket"], wait_timeout=30)
    try:
        for event, payload in (("broadcast.start", {}),
                               ("sale.schedule", {"product_id": "p1", "units": 100, "limit": 2, "hold_s": 60,
                                                  "opens_at": int(time.time() * 1000) + 600_000})):
            ack = sio.call(event, payload, timeout=30)
            if not (isinstance(ack, dict) and ack.get("ok")):
                raise RuntimeError(f"{event} refused: {ack}")
    finally:
        sio.disconnect()


def burst(url: str, secret: str, broadcast: str, *, joins: int, concurrency: int,
          codec: str = "msgpack") -> dict[str, Any]:
    """Run the burst against a ready broadcast and return the figures."""
    pool = LightPool(url, tick_sample_every=1 << 30)  # ticks are never decoded here
    wake = threading.Event()
    pool.start(wake.set)
    tokens = [mint(secret, sub=f"jb-{i}", role="viewer", broadcast=broadcast) for i in range(joins)]
    viewers: list[Viewer] = []
    lat: list[float] = []
    codes: Counter[str] = Counter()
    retries = 0
    started = 0

    def start_next() -> None:
        nonlocal started
        v = Viewer(pool, f"jb-{started}", tokens[started], codec=codec)
        viewers.append(v)
        started += 1
        pool.submit(v.start)

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    t_last = t0
    for _ in range(min(concurrency, joins)):
        start_next()
    done = 0
    deadline = time.monotonic() + 120 + joins / 20
    while done < joins and time.monotonic() < deadline:
        wake.wait(0.2)
        wake.clear()
        while pool.outbox:
            item = pool.outbox.popleft()
            if not isinstance(item, Report):
                continue
            if item.name == "join retry":
                retries += 1
                continue
            if item.name != "join":
                continue
            done += 1
            codes[item.code] += 1
            if item.code in ("OK", "PARTIAL"):
                lat.append(item.ms)
                t_last = time.perf_counter()
            if started < joins:
                start_next()
    span = max(1e-6, t_last - t0)
    client_cpu = round((time.process_time() - cpu0) / max(1e-6, time.perf_counter() - t0) * 100, 1)
    ok = codes.get("OK", 0) + codes.get("PARTIAL", 0)
    pool.stop()
    return {"joins": joins, "joined": ok, "partial": codes.get("PARTIAL", 0),
            "failures": {k: n for k, n in codes.items() if k not in ("OK", "PARTIAL")},
            "unfinished": joins - done, "retries": retries, "concurrency": concurrency,
            "span_s": round(span, 2), "joins_per_s": round(ok / span, 1),
            "join_p50_ms": _pct(lat, 0.50), "join_p99_ms": _pct(lat, 0.99), "join_max_ms": _pct(lat, 1.0),
            "client_cpu_pct": client_cpu}


class _Cpu(threading.Thread):
    """CPU seconds of the server (and redis-server) during the burst."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        import psutil

        self.procs = [psutil.Process(p) for p in pids]
        self.t0 = time.monotonic()
        self.cpu0 = [sum(p.cpu_times()[:2]) for p in self.procs]

    def used(self) -> list[float]:
        """Average % of one core per process since construction."""
        dt = max(1e-6, time.monotonic() - self.t0)
        return [round((sum(p.cpu_times()[:2]) - c0) / dt * 100, 1) for p, c0 in zip(self.procs, self.cpu0)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.join_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="target server (default: start one here)")
    p.add_argument("--secret", default=os.environ.get("HAWKER_SECRET"), help="token secret of --url [env HAWKER_SECRET]")
    p.add_argument("--joins", type=int, default=3000)
    p.add_argument("--concurrency", type=int, default=256, help="joins in flight at once")
    p.add_argument("--codec", choices=["msgpack", "json"], default="msgpack")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = p.parse_args(argv)
    if not 1 <= args.joins <= MAX_JOINS or args.concurrency < 1:
        print(f"join_bench: --joins 1..{MAX_JOINS}, --concurrency >= 1", file=sys.stderr)
        return 2
    stack = None
    if args.url:
        if not args.secret:
            print("join_bench: --secret is needed with --url", file=sys.stderr)
            return 2
        url, secret = args.url.rstrip("/"), args.secret
    else:
        stack = LocalStack()
        stack.__enter__()
        url, secret = stack.url, stack.secret
    try:
        broadcast = f"jb-{uuid.uuid4().hex[:8]}"
        _setup(url, secret, broadcast)
        cpu = _Cpu([stack.pid] + ([stack.redis.pid] if stack.redis else [])) if stack else None
        figs = burst(url, secret, broadcast, joins=args.joins, concurrency=args.concurrency, codec=args.codec)
        if cpu is not None:
            used = cpu.used()
            figs["server_cpu_pct"] = used[0]
            if len(used) > 1:
                figs["redis_cpu_pct"] = used[1]
    finally:
        if stack is not None:
            stack.stop()
    print(f"join_bench: {figs['joined']}/{figs['joins']} joined ({figs['partial']} partial, "
          f"failures {figs['failures'] or 0}, {figs['retries']} retried attempts) in {figs['span_s']} s: "
          f"{figs['joins_per_s']} joins/s, join p50 {figs['join_p50_ms']} ms, p99 {figs['join_p99_ms']} ms"
          + (f"; server CPU {figs['server_cpu_pct']} %, redis {figs.get('redis_cpu_pct')} %" if stack else "")
          + f"; this client {figs['client_cpu_pct']} % of a core",
          file=sys.stderr)
    if args.json:
        print(json.dumps(figs))
    return 0 if figs["joined"] == figs["joins"] else 1


if __name__ == "__main__":
    sys.exit(main())
