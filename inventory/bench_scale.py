"""The reserve benchmark's scale-out mode (`python -m inventory.bench --redis-mode ...`): many lots
through the server's own client (redislayer.connect) on a Redis Cluster of each size, or on a master
with one replica with and without WAIT. See inventory/bench.py's module doc for what it reports."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import time

from inventory import Inventory, LotSpec
from redislayer.server import ThrowawayRedis, free_port


def percentile(sorted_vals: list[float], p: float) -> float:
    """The p-th value of an already sorted list (0.0 when empty)."""
    if not sorted_vals:
        return 0.0
    return sorted_vals[min(len(sorted_vals) - 1, int(p * len(sorted_vals)))]


class _Cluster:
    """A throwaway Redis Cluster of `masters` redis-server processes (no replicas, no persistence)."""

    def __init__(self, masters: int) -> None:
        self.nodes: list[ThrowawayRedis] = []
        try:
            for _ in range(masters):
                self.nodes.append(ThrowawayRedis(["--appendonly", "no", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                                "--cluster-port", str(free_port())]).start())
            cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
            if masters == 1:  # redis-cli --cluster create wants 3: one master takes every slot itself
                cmd = [cli, "-p", str(self.nodes[0].port), "CLUSTER", "ADDSLOTSRANGE", "0", "16383"]
            else:
                cmd = [cli, "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in self.nodes],
                       "--cluster-replicas", "0", "--cluster-yes"]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            if out.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {out.stdout[-300:]}")
            deadline = time.monotonic() + 30
            while not all(self._ok(n.port) for n in self.nodes):
                if time.monotonic() > deadline:
                    raise RuntimeError("the cluster did not reach cluster_state:ok")
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _ok(port: int) -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
            c.sendall(b"CLUSTER INFO\r\n")
            return b"cluster_state:ok" in c.recv(4096)

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


async def _scale_phase(url: str, mode: str, lots: int, n: int, callers: int, replicas_ack: int,
                       ack_timeout_ms: int) -> dict[str, object]:
    """`callers` tasks reserve on `lots` lots (round robin) through redislayer.connect's client."""
    from redislayer import connect, overload_code

    client = connect(url, mode=mode, max_connections=64, replicas_ack=replicas_ack, ack_timeout_ms=ack_timeout_ms)
    inv = Inventory(client)
    try:
        ids = []
        for i in range(lots):
            lot_id = f"scale-{i}-{time.time_ns()}"
            await inv.create_lot(LotSpec(lot_id, "BENCH", total=1_000_000_000, unit_price=100, currency="EUR",
                                         per_user_limit=2, hold_s=3600))
            await inv.open(lot_id)
            ids.append(lot_id)
        counter = iter(range(n))
        latencies: list[float] = []

        retried = 0

        async def caller(c: int) -> None:
            nonlocal retried
            clock = time.perf_counter
            for i in counter:
                t0 = clock()
                while True:  # a client: BUSY/UNAVAILABLE retried with the same request id
                    try:
                        await inv.reserve(ids[i % lots], f"u{c}-{i}", 1, f"q{i}")
                        break
                    except Exception as exc:
                        if overload_code(exc) is None:
                            raise
                        retried += 1
                        await asyncio.sleep(0.05)
                latencies.append(clock() - t0)

        await asyncio.gather(*(caller(c) for c in range(min(callers, 64))))  # warm-up: connections, scripts
        counter = iter(range(n, 2 * n))
        latencies.clear()
        t0 = time.perf_counter()
        await asyncio.gather(*(caller(c) for c in range(callers)))
        elapsed = time.perf_counter() - t0
        oversold, ok = 0, True
        for lot_id in ids:
            report = await inv.audit(lot_id)
            oversold += report.oversold
            ok = ok and report.ok
        latencies.sort()
        return {"per_s": round(n / elapsed, 1), "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
                "p99_ms": round(percentile(latencies, 0.99) * 1000, 2), "oversold": oversold, "audit_ok": ok,
                "batches": inv.pipeline.batches, "ack_failures": inv.pipeline.ack_failures, "retried": retried}
    finally:
        await client.aclose()


def _replica_online(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
        c.sendall(b"INFO replication\r\n")
        time.sleep(0.05)
        return b"state=online" in c.recv(65536)


def _scale(args: argparse.Namespace) -> list[dict[str, object]]:
    runs: list[dict[str, object]] = []
    if args.redis_mode == "cluster":
        for shards in [int(x) for x in args.shards.split(",")]:
            cluster = _Cluster(shards)
            try:
                fig = asyncio.run(_scale_phase(cluster.url, "cluster", args.lots, args.n, args.callers, 0, 100))
            finally:
                cluster.stop()
            runs.append({"mode": "cluster", "shards": shards, **fig})
    else:
        master = ThrowawayRedis().start()
        replica = ThrowawayRedis(["--appendonly", "no", "--replicaof", "127.0.0.1", str(master.port)]).start()
        try:
            deadline = time.monotonic() + 30
            while not _replica_online(master.port):  # its first sync done: it confirms writes
                if time.monotonic() > deadline:
                    raise RuntimeError("the replica did not sync")
                time.sleep(0.1)
            for ack in [int(x) for x in args.replicas_ack.split(",")]:
                fig = asyncio.run(_scale_phase(master.url, "standalone", args.lots, args.n, args.callers, ack,
                                               args.ack_timeout_ms))
                runs.append({"mode": "standalone+replica", "replicas_ack": ack, **fig})
        finally:
            replica.stop()
            master.stop()
    return runs


def scale_main(args: argparse.Namespace) -> int:
    """Run the scale-out mode and print its figures; 0 when nothing was oversold."""
    runs = _scale(args)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    for r in runs:
        what = f"{r['shards']} shard(s)" if r["mode"] == "cluster" else f"replicas_ack={r['replicas_ack']}"
        print(f"{r['mode']} {what}: {r['per_s']:.0f} reservations/s over {args.lots} lots, "
              f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, oversold {r['oversold']}, audit ok {r['audit_ok']}"
              + f", retried {r['retried']}" + (f", ack failures {r['ack_failures']}" if r["mode"] != "cluster" else ""))
    print(f"{args.callers} callers, n={args.n}, {os.cpu_count()} cores, load avg {load:.2f}")
    if args.json:
        print(json.dumps(runs))
    return 0 if all(r["oversold"] == 0 and r["audit_ok"] for r in runs) else 1
