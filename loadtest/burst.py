"""The sale moment, measured through the real socket path: N buyers press Buy at the same instant.

    python -m loadtest.burst [--buyers 1000,2000,5000] [--units 50] [--processes 2] [--json]
    python -m loadtest.burst --url http://127.0.0.1:8080 --secret S ...   # a server you started
    python -m loadtest.burst --buyers 1000 --redis-outage-s 5   # Redis stopped 5 s as the sale opens

Without --url it starts its own redis-server and `hawker serve` (loadtest/localstack.py). For each
N it creates a broadcast, connects N light buyer clients (loadtest/lightclient.py; half msgpack,
half JSON, each with its own viewer token) spread over client processes, syncs their clocks with
`time`, schedules a sale of --units units, and every buyer sends `sale.reserve` at `opens_at` on
the server's clock. A buyer told BUSY/UNAVAILABLE retries with the same request_id after
retry_after (with jitter), as the player does, until it gets a final answer.

Reported per N: answers by code (first and final), holds granted (must equal units), ack latency
p50/p99/max measured from opens_at, joins that got a partial snapshot, server CPU and RSS during
the burst, and the server's own reserve latency (its Prometheus histograms). The last line is one
JSON object with `internal` (must be 0), `oversold` (must be 0), `holds_equal_units` and `p99_ms`
per N. Exit status 1 when any of those fail."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from loadtest.burst_clients import RETRYABLE, client_process
from loadtest.lightclient import LightClient, mint
from loadtest.localstack import LocalStack
from loadtest.measure import ProcSampler, http_json, pct
from loadtest.procs import receive, start_clients
from loadtest.promtext import histogram_quantile, parse_metrics

# ---- the parent ------------------------------------------------------------------------------------

@dataclass
class RunReport:
    buyers: int
    units: int
    connected: int = 0
    first: dict[str, int] = field(default_factory=dict)
    final: dict[str, int] = field(default_factory=dict)
    holds: int = 0
    oversold: int = 0
    audit_ok: bool = False
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    partial_snapshots: int = 0
    retries: int = 0
    server_cpu_pct: float = 0.0
    server_rss_mb: float = 0.0
    server_reserve_p50_ms: float | None = None
    server_reserve_p99_ms: float | None = None
    server_after_open_p99_ms: float | None = None
    overload_answers: int = 0
    early_sends: int = 0
    generator_cpu_pct_max: float = 0.0
    outage_s: float = 0.0
    readyz_during_outage: int | None = None
    readyz_after_outage: int | None = None

    @property
    def internal(self) -> int:
        return self.final.get("INTERNAL", 0) + self.first.get("INTERNAL", 0)


def _metrics(url: str, token: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(url + "/metrics", headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return parse_metrics(resp.read().decode())


def _readyz(url: str) -> int:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def run_one(url: str, secret: str, buyers: int, units: int, processes: int, server_pid: int | None,
            metrics_token: str | None = None, lead_ms: int = 1500, stack: LocalStack | None = None,
            outage_s: float = 0.0) -> RunReport:
    broadcast = f"burst{buyers}-{uuid.uuid4().hex[:6]}"
    host = mint(secret, sub="burst-host", role="host", broadcast=broadcast)
    http_json("POST", url + "/api/broadcasts", host, {"id": broadcast, "title": f"Burst {buyers}", "products": [
        {"id": "p1", "title": "Limited sneaker", "price": 99000, "currency": "KRW"}]})
    report = RunReport(buyers, units, outage_s=outage_s)
    pipes, procs, report.connected = start_clients(
        client_process, lambda first, count: (url, secret, broadcast, first, count, 200), buyers, processes)
    async def schedule() -> tuple[str, int]:
        async with aiohttp.ClientSession() as session:
            c = await LightClient.connect(session, url, host, "json")
            await asyncio.wait_for(c.snapshot, 30)
            await c.sync_clock(3)
            opens_at = int(c.server_now_ms()) + lead_ms
            ack = await c.call("sale.schedule", {"product_id": "p1", "units": units, "limit": 1, "hold_s": 120,
                                                 "opens_at": opens_at, "request_id": uuid.uuid4().hex})
            await c.close()
            if not ack.get("ok"):
                raise RuntimeError(f"sale.schedule refused: {ack}")
            return ack["sale"]["id"], ack["sale"]["opens_at"]

    sale_id, opens_at = asyncio.run(schedule())
    print(f"burst {buyers}: {report.connected} joined; sale {sale_id} opens at {opens_at}", file=sys.stderr, flush=True)
    before = _metrics(url, metrics_token)
    for pipe in pipes:
        pipe.send((sale_id, opens_at))
    time.sleep(max(0.0, opens_at / 1000 - time.time()))  # one machine: the server's clock is ours
    sampler = ProcSampler(server_pid)
    if outage_s > 0 and stack is not None:  # Redis goes away just after the sale opened
        time.sleep(0.05)
        stack.stop_redis()
        time.sleep(0.5)
        report.readyz_during_outage = _readyz(url)
        time.sleep(max(0.0, outage_s - 0.5))
        stack.start_redis()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _readyz(url) != 200:
            time.sleep(0.2)
        report.readyz_after_outage = _readyz(url)
    results: list[dict[str, Any]] = []
    for pipe in pipes:
        while not pipe.poll(0.5):
            sampler.rss_mb()
        results += receive(pipe)
    report.server_cpu_pct = round(sampler.cpu_pct(), 1)
    report.server_rss_mb = round(sampler.rss_mb(), 1)
    for p in procs:
        p.join(10)
    after = _metrics(url, metrics_token)
    answered = [r for r in results if r["connected"]]
    for r in answered:
        report.first[r["first"]] = report.first.get(r["first"], 0) + 1
        report.final[r["final"]] = report.final.get(r["final"], 0) + 1
    report.holds = report.final.get("OK", 0)
    report.retries = sum(r["retries"] for r in answered)
    report.early_sends = sum(r["early"] for r in answered)
    report.generator_cpu_pct_max = round(max((r["generator_cpu_pct"] for r in results), default=0.0), 1)
    report.partial_snapshots = sum(r["partial_snapshot"] for r in results)
    lat = [r["ms_from_open"] for r in answered if r["final"] != "NONE"]
    report.p50_ms, report.p99_ms = round(pct(lat, 0.50), 1), round(pct(lat, 0.99), 1)
    report.max_ms = round(max(lat, default=0.0), 1)
    audit = http_json("GET", url + f"/api/sales/{sale_id}/audit", host)
    levels = audit["levels"]
    sold_or_held = levels["held"] + levels["sold"]
    report.oversold = max(0, sold_or_held - units) + max(0, report.holds - units)
    report.audit_ok = bool(audit["inventory_audit"]["ok"]) and sold_or_held == report.holds
    for name, attr in (("hawker_sale_reserve_seconds", "server_reserve"),):
        for q, suffix in ((0.5, "_p50_ms"), (0.99, "_p99_ms")):
            v = histogram_quantile(before, after, name, q)
            setattr(report, attr + suffix, None if v is None else round(v * 1000, 1))
    v = histogram_quantile(before, after, "hawker_sale_reserve_after_open_seconds", 0.99)
    report.server_after_open_p99_ms = None if v is None else round(v * 1000, 1)
    report.overload_answers = int(sum(
        val - before["counters"].get(key, 0.0) for key, val in after["counters"].items()
        if key[0] == "hawker_overload_answers_total"))
    return report


def _table(reports: list[RunReport]) -> str:
    rows = ["| buyers | units | joined | OK | SOLD_OUT | BUSY/UNAVAIL. seen | INTERNAL | other | holds == units "
            "| ack p50 / p99 / max from opens_at | partial snapshots | server reserve p50 / p99 | server CPU / RSS "
            "| busiest client process CPU |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in reports:
        other = sum(v for k, v in r.final.items() if k not in ("OK", "SOLD_OUT", "INTERNAL"))
        seen = sum(r.first.get(k, 0) for k in RETRYABLE)
        rows.append(
            f"| {r.buyers} | {r.units} | {r.connected} | {r.final.get('OK', 0)} | {r.final.get('SOLD_OUT', 0)} | {seen} "
            f"| {r.internal} | {other} | {r.holds == r.units} | {r.p50_ms:.0f} / {r.p99_ms:.0f} / {r.max_ms:.0f} ms "
            f"| {r.partial_snapshots} | {r.server_reserve_p50_ms} / {r.server_reserve_p99_ms} ms "
            f"| {r.server_cpu_pct:.0f} % / {r.server_rss_mb:.0f} MB | {r.generator_cpu_pct_max:.0f} % |")
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest.burst", description=__doc__.split("\n\n")[0])
    p.add_argument("--buyers", default="1000,2000,5000", help="comma-separated buyer counts, one run each")
    p.add_argument("--units", type=int, default=50)
    p.add_argument("--processes", type=int, default=2, help="client processes (buyers are spread over them)")
    p.add_argument("--url", help="a running server (loopback only); default: start one")
    p.add_argument("--secret", help="its HAWKER_SECRET (with --url)")
    p.add_argument("--metrics-token", help="bearer token for /metrics, if the server requires one")
    p.add_argument("--redis-max-connections", type=int, help="HAWKER_REDIS_MAX_CONNECTIONS of the started server")
    p.add_argument("--redis-outage-s", type=float, default=0.0,
                   help="stop the started redis-server this long, from 50 ms after the sale opens (own stack only)")
    p.add_argument("--json", action="store_true", help="print only the summary JSON line at the end")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    counts = [int(x) for x in args.buyers.split(",") if x.strip()]
    if args.url and not args.secret:
        print("--url needs --secret", file=sys.stderr)
        return 2
    if args.url and not any(h in args.url for h in ("://127.", "://localhost", "://[::1]")):
        print("burst targets loopback only", file=sys.stderr)
        return 2
    env = {}
    if args.redis_max_connections:
        env["HAWKER_REDIS_MAX_CONNECTIONS"] = str(args.redis_max_connections)
    reports: list[RunReport] = []
    stack = None if args.url else LocalStack(env=env)
    try:
        if stack is not None:
            stack.start()
        url = args.url or stack.url  # type: ignore[union-attr]  # stack is set whenever --url is not
        secret = args.secret or stack.secret  # type: ignore[union-attr]  # stack is set whenever --url is not
        for n in counts:
            r = run_one(url, secret, n, args.units, max(1, args.processes), None if stack is None else stack.pid,
                        args.metrics_token, stack=stack, outage_s=args.redis_outage_s)
            reports.append(r)
            if not args.json:
                print(f"burst {n}: {r.final} p99 {r.p99_ms} ms", file=sys.stderr)
    finally:
        if stack is not None:
            stack.stop()
    summary = {
        "internal": sum(r.internal for r in reports),
        "oversold": sum(r.oversold for r in reports),
        "holds_equal_units": all(r.holds == r.units for r in reports),
        "audit_ok": all(r.audit_ok for r in reports),
        "every_buyer_answered": all(r.final.get("NONE", 0) == 0 and r.final.get("NO_ANSWER", 0) == 0
                                    and r.connected == r.buyers for r in reports),
        "p99_ms": {str(r.buyers): r.p99_ms for r in reports},
        "runs": [{**r.__dict__, "internal": r.internal} for r in reports],
    }
    if not args.json:
        print(_table(reports))
    print(json.dumps(summary))
    ok = summary["internal"] == 0 and summary["oversold"] == 0 and summary["holds_equal_units"] and summary["audit_ok"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
