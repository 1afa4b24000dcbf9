"""Reserve benchmark: the Python API (auto-pipelined) against redis-benchmark running the same script.

    python -m inventory.bench [--json] [--redis-url URL] [--n 20000] [--callers 256] [--rounds 3]

Starts its own redis-server on a free loopback port unless --redis-url is given, then in one run on
that server:

1. API: `--callers` asyncio tasks call Inventory.reserve() back to back until `--n` reservations
   are answered; reports reservations/s and p50/p99 latency of one call.
2. raw: `redis-benchmark -n N -c 50 EVALSHA <sha of the reserve script> 9 <keys> <maxlen> u:__rand_int__
   1 q:__rand_int__`, i.e. the very same Lua with a fresh random user and request id per call
   (so every call takes the full path: limit check, new hold, expiry index, idempotency entry,
   stream event, instead of an idempotent replay). 50 clients without -P is redis-benchmark's
   default and the figure "what Redis itself can do for this script" the ratio is taken against;
   the pipelined (-P 16) figure is printed too, for information.
3. ratio = api_per_s / raw_per_s, and an audit of every lot used (oversold must be 0).

Phases 1 and 2 alternate `--rounds` times, each on a fresh lot, and the medians are reported: the
machine's load drifts, and alternating keeps both sides under the same conditions.
With --json the last line is one JSON object: api_per_s, raw_per_s, raw_pipelined_per_s, ratio,
ratios_per_round, p50_ms, p99_ms, oversold, audit_ok, batches, mean_batch, n, callers, rounds.

Scale-out mode (many lots, the server's own client from redislayer.connect):

    python -m inventory.bench --redis-mode cluster --shards 1,3 [--lots 64] [--n 20000] [--callers 256]
    python -m inventory.bench --redis-mode standalone --replicas-ack 0,1 [--ack-timeout-ms 100]

`cluster` starts a Redis Cluster of each `--shards` size (masters only, `redis-cli --cluster
create`) and spreads the reserves over `--lots` lots (so over the shards); `standalone` with
`--replicas-ack` starts a master and one replica and runs once per ack value (0: no WAIT; 1: every
batch waits for the replica). Each run reports reservations/s, p50/p99 of one call and the audit of
every lot (oversold must be 0).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

import redis.asyncio as aioredis

from inventory import Inventory, LotSpec, keys_for
from inventory.bench_scale import percentile, scale_main
from redislayer.server import ThrowawayRedis


async def _api_phase(inv: Inventory, lot_id: str, n: int, callers: int) -> tuple[float, list[float], int]:
    counter = iter(range(n))
    latencies: list[float] = []
    refused = 0

    async def caller(c: int) -> None:
        nonlocal refused
        clock = time.perf_counter
        for i in counter:
            t0 = clock()
            res = await inv.reserve(lot_id, f"u{c}-{i}", 1, f"q{i}")
            latencies.append(clock() - t0)
            if not res.ok:
                refused += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(caller(c) for c in range(callers)))
    elapsed = time.perf_counter() - t0
    return n / elapsed, latencies, refused


def _redis_benchmark(host: str, port: int, sha: str, lot_id: str, n: int, pipeline: int, maxlen: int) -> float:
    exe = shutil.which("redis-benchmark")
    if not exe:
        raise RuntimeError("redis-benchmark not found (Debian package redis-tools / redis-server)")
    keys = keys_for(lot_id)
    cmd = [exe, "-h", host, "-p", str(port), "-n", str(n), "-c", "50", "-r", "100000000",
           "-P", str(pipeline), "-q", "EVALSHA", sha, str(len(keys)), *keys, str(maxlen),
           "u:__rand_int__", "1", "q:__rand_int__"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    rates = re.findall(r"([\d.]+) requests per second", out.replace("\r", "\n"))
    if not rates:
        raise RuntimeError(f"could not parse redis-benchmark output: {out[-300:]!r}")
    return float(rates[-1])


async def _fresh_lot(inv: Inventory, name: str) -> str:
    lot_id = f"bench-{name}-{time.time_ns()}"
    await inv.create_lot(LotSpec(lot_id, "BENCH", total=1_000_000_000, unit_price=100, currency="EUR",
                                 per_user_limit=2, hold_s=3600))
    await inv.open(lot_id)
    return lot_id


async def run(redis_url: str, host: str, port: int, n: int, callers: int, rounds: int) -> dict[str, object]:
    """Alternate API and raw phases `rounds` times (the machine's load drifts), report medians."""
    # configured like the server's client (live/store.py): socket timeouts, bounded pool
    client = aioredis.Redis.from_url(redis_url, max_connections=64, socket_timeout=5.0,
                                     socket_connect_timeout=5.0, health_check_interval=30)
    inv = Inventory(client)
    await inv.load_scripts()
    sha = inv.scripts["reserve"].sha
    loop = asyncio.get_running_loop()
    lots: list[str] = []

    warm = await _fresh_lot(inv, "warm")
    lots.append(warm)
    await _api_phase(inv, warm, min(2000, n), callers)

    api_rates: list[float] = []
    raw_rates: list[float] = []
    latencies: list[float] = []
    refused = 0
    inv.pipeline.batches = inv.pipeline.calls = 0
    for _ in range(rounds):
        lot_id = await _fresh_lot(inv, "api")
        lots.append(lot_id)
        rate, lat, ref = await _api_phase(inv, lot_id, n, callers)
        api_rates.append(rate)
        latencies.extend(lat)
        refused += ref
        raw_lot = await _fresh_lot(inv, "raw")
        lots.append(raw_lot)
        raw_rates.append(await loop.run_in_executor(None, _redis_benchmark, host, port, sha, raw_lot, n, 1,
                                                    inv.events_maxlen))
    batches, calls = inv.pipeline.batches, inv.pipeline.calls
    rawp_lot = await _fresh_lot(inv, "rawp")
    lots.append(rawp_lot)
    rawp_per_s = await loop.run_in_executor(None, _redis_benchmark, host, port, sha, rawp_lot, n, 16,
                                            inv.events_maxlen)

    oversold = 0
    audits_ok = True
    for lot_id in lots:
        report = await inv.audit(lot_id)
        oversold += report.oversold
        audits_ok = audits_ok and report.ok
    await client.aclose()
    latencies.sort()
    api_per_s, raw_per_s = statistics.median(api_rates), statistics.median(raw_rates)
    return {
        "api_per_s": round(api_per_s, 1),
        "raw_per_s": round(raw_per_s, 1),
        "raw_pipelined_per_s": round(rawp_per_s, 1),
        "ratio": round(api_per_s / raw_per_s, 3) if raw_per_s else 0.0,
        "ratios_per_round": [round(a / r, 3) for a, r in zip(api_rates, raw_rates)],
        "api_rounds": [round(a, 1) for a in api_rates],
        "raw_rounds": [round(r, 1) for r in raw_rates],
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        "oversold": oversold,
        "audit_ok": audits_ok,
        "refused": refused,
        "batches": batches,
        "mean_batch": round(calls / batches, 1) if batches else 0.0,
        "n": n,
        "callers": callers,
        "rounds": rounds,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m inventory.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="last line: one JSON object with the figures")
    ap.add_argument("--redis-url", help="use this Redis instead of starting one (no password support "
                                        "for the redis-benchmark side; lots named bench-* are created)")
    ap.add_argument("--n", type=int, default=20_000, help="reservations per phase (default 20000)")
    ap.add_argument("--callers", type=int, default=256, help="concurrent API callers (default 256)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating API/raw rounds; medians reported")
    ap.add_argument("--redis-mode", choices=("standalone", "cluster"),
                    help="scale-out mode: many lots through the server's client (see the module doc)")
    ap.add_argument("--shards", default="1,3", help="cluster mode: cluster sizes to run, e.g. 1,3 (default)")
    ap.add_argument("--lots", type=int, default=64, help="scale-out mode: lots the reserves spread over")
    ap.add_argument("--replicas-ack", default="0,1", help="standalone scale-out mode: WAIT values to run (0,1)")
    ap.add_argument("--ack-timeout-ms", type=int, default=100, help="standalone scale-out mode: WAIT timeout")
    args = ap.parse_args(argv)
    if args.redis_mode:
        return scale_main(args)

    server = None
    if args.redis_url:
        url = args.redis_url
        kwargs = aioredis.Redis.from_url(url).connection_pool.connection_kwargs
        host, port = kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379)
    else:
        server = ThrowawayRedis().start()
        url, host, port = server.url, "127.0.0.1", server.port
    try:
        figures = asyncio.run(run(url, str(host), int(port), args.n, args.callers, args.rounds))
    finally:
        if server:
            server.stop()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"reserve through the Python API: {figures['api_per_s']:.0f}/s with {args.callers} callers, "
          f"p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms "
          f"(mean batch {figures['mean_batch']} calls)")
    print(f"redis-benchmark EVALSHA reserve, 50 clients: {figures['raw_per_s']:.0f}/s "
          f"(-P 16: {figures['raw_pipelined_per_s']:.0f}/s)")
    print(f"per round: api {figures['api_rounds']}  raw {figures['raw_rounds']}  "
          f"ratio {figures['ratios_per_round']}")
    print(f"ratio api/raw (medians): {figures['ratio']:.3f}   oversold: {figures['oversold']}   "
          f"audit ok: {figures['audit_ok']}   load avg: {load:.2f}")
    if args.json:
        print(json.dumps(figures))
    return 0 if figures["oversold"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
