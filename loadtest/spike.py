"""The spike runner: reproduce the worst minute of a live sale and prove nothing was oversold.

    python -m loadtest.spike --viewers 2000 --units 100 --limit 2 --out spike-report
    hawker loadtest spike ...             (the same)

It starts a server (or targets --url), creates a broadcast and a lot, ramps viewers and buyers with
Locust (headless, CSV stats, --processes), opens the sale on the server clock, waits until every
abandoned hold has expired, audits, and writes a report. Exit 0 only when every audit check passes.
Safe by default: bounded duration and counts; only loopback targets unless --allow-remote.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
import socketio

from live.auth import mint
from loadtest import audit, report
from loadtest.client import Clock, error_code
from loadtest.samples import read_all

MAX_USERS = 20_000
MAX_RUN_S = 900


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalStack:
    """A redis-server and `hawker serve` started for this run, stopped at the end."""

    def __init__(self, workers: int, tick_ms: int) -> None:
        from live.embedded_redis import EmbeddedRedis

        self.dir = Path(tempfile.mkdtemp(prefix="hawker-spike-"))
        self.redis = EmbeddedRedis(self.dir / "redis")
        self.secret = secrets.token_hex(24)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.tick_ms = tick_ms
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LocalStack:
        self.redis.start()
        env = {**os.environ, "HAWKER_SECRET": self.secret, "HAWKER_REDIS_URL": self.redis.url,
               "HAWKER_PORT": str(self.port), "HAWKER_HOST": "127.0.0.1", "HAWKER_WORKERS": str(self.workers),
               "HAWKER_TICK_MS": str(self.tick_ms), "HAWKER_LOG_LEVEL": "warning", "HAWKER_DATA_DIR": str(self.dir),
               "HAWKER_PAYMENT_PROVIDER": "sandbox"}  # a load test pays with test cards
        self.log = (self.dir / "server.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "live", "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}; see {self.dir / 'server.log'}")
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("the server did not become ready in 60 s")

    def pids(self) -> list[int]:
        import psutil

        if self.proc is None:
            return []
        try:
            parent = psutil.Process(self.proc.pid)
            return [parent.pid] + [c.pid for c in parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.redis.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class ResourceSampler(threading.Thread):
    """Server CPU % and RSS once a second (psutil over the server's processes)."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        import psutil

        self.procs = [psutil.Process(p) for p in pids]
        self.samples: list[tuple[float, float, float]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        t0 = time.monotonic()
        for p in self.procs:
            p.cpu_percent(None)
        while not self.stop_event.wait(1.0):
            cpu = rss = 0.0
            for p in self.procs:
                try:
                    cpu += p.cpu_percent(None)
                    rss += p.memory_info().rss / 2**20
                except psutil.NoSuchProcess:
                    pass
            self.samples.append((round(time.monotonic() - t0, 1), round(cpu, 1), round(rss, 1)))


class Monitor:
    """The host's own socket: schedules the sale and records stock levels and sold-out time."""

    def __init__(self, url: str, token: str, sale_key: str | None = None) -> None:
        self.sio = socketio.Client(reconnection=True)
        self.url, self.token = url, token
        self.sale_id: str | None = None
        self.stock: list[tuple[int, int, int, int]] = []
        self.soldout_at: int | None = None
        self.opened_at: int | None = None
        self.clock = Clock()
        self.sio.on("tick", self._tick)
        self.sio.on("sale.soldout", self._soldout)
        self.sio.on("sale.open", self._open)

    def connect(self) -> None:
        self.sio.connect(self.url, auth={"token": self.token}, transports=["websocket"], wait_timeout=30)
        self.clock.sync(self.sio)

    def call(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        ack = self.sio.call(event, payload, timeout=30)
        if error_code(ack) != "OK":
            raise RuntimeError(f"{event} refused: {ack}")
        return ack

    def _tick(self, data: dict[str, Any]) -> None:
        lv = (data or {}).get("levels", {}).get(f"stock:{self.sale_id}") if self.sale_id else None
        if isinstance(lv, dict):
            self.stock.append((int(data.get("ts", 0)), int(lv["available"]), int(lv["held"]), int(lv["sold"])))

    def _soldout(self, data: dict[str, Any]) -> None:
        if data.get("sale_id") == self.sale_id and self.soldout_at is None:
            self.soldout_at = int(data.get("at") or self.clock.server_now())

    def _open(self, data: dict[str, Any]) -> None:
        if data.get("sale_id") == self.sale_id:
            self.opened_at = int(data.get("at") or 0)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest.spike", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="target server (default: start one here)")
    p.add_argument("--secret", default=os.environ.get("HAWKER_SECRET"), help="token secret of --url [env HAWKER_SECRET]")
    p.add_argument("--allow-remote", action="store_true", help="allow a --url that is not loopback")
    p.add_argument("--viewers", type=int, default=2000, help="watching users (default 2000)")
    p.add_argument("--buyers", type=int, default=None, help="users who press Buy (default viewers/4)")
    p.add_argument("--units", type=int, default=100)
    p.add_argument("--limit", type=int, default=2, help="per-user limit")
    p.add_argument("--qty", type=int, default=1, help="units each buyer asks for")
    p.add_argument("--hold-s", type=int, default=15, help="hold time; abandoned holds expire after it")
    p.add_argument("--abandon", type=float, default=0.2, help="share of buyers who never pay")
    p.add_argument("--spawn-rate", type=float, default=None, help="users started per second (default: ramp in ~20 s)")
    p.add_argument("--processes", type=int, default=1, help="Locust processes (-1: one per core)")
    p.add_argument("--workers", type=int, default=1, help="server processes when starting one here")
    p.add_argument("--tick-ms", type=int, default=100)
    p.add_argument("--sale-window-s", type=int, default=20, help="how long buyers may keep trying after the open")
    p.add_argument("--codec", choices=["msgpack", "json"], default="msgpack",
                   help="wire codec of the load clients (msgpack, like the player)")
    p.add_argument("--out", default="loadtest-out", help="report folder")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON line at the end")
    return p


def warn_if_small(users: int, processes: int) -> list[str]:
    cores = os.cpu_count() or 1
    notes = []
    if users > 750 * cores:
        notes.append(f"{users} users on {cores} cores: the load generator and the server share this machine; "
                     "figures will reflect the machine, not Hawker. Run Locust on other machines for a big spike.")
    if users > 1000 and processes == 1:
        notes.append("one Locust process drives every user; add --processes -1 to use every core")
    return notes


def run(args: argparse.Namespace) -> int:
    buyers = args.buyers if args.buyers is not None else max(1, args.viewers // 4)
    users = args.viewers + buyers
    if users > MAX_USERS:
        print(f"spike: at most {MAX_USERS} users per run", file=sys.stderr)
        return 2
    if args.url and not _is_loopback(args.url) and not args.allow_remote:
        print("spike: --url is not a loopback address; pass --allow-remote if you mean it", file=sys.stderr)
        return 2
    notes = warn_if_small(users, args.processes)
    for n in notes:
        print(f"spike: warning: {n}", file=sys.stderr)
    out = Path(args.out)
    samples_dir = out / "samples-raw"
    shutil.rmtree(samples_dir, ignore_errors=True)
    samples_dir.mkdir(parents=True)

    stack = None
    if args.url:
        if not args.secret:
            print("spike: --secret (or HAWKER_SECRET) is needed to mint tokens for --url", file=sys.stderr)
            return 2
        url, secret = args.url.rstrip("/"), args.secret
    else:
        stack = LocalStack(args.workers, args.tick_ms).start()
        url, secret = stack.url, stack.secret
    broadcast = f"spike-{uuid.uuid4().hex[:8]}"
    host_token = mint(secret, sub="spike-host", role="host", broadcast=broadcast, ttl=3600)
    sampler = ResourceSampler(stack.pids()) if stack else None
    monitor = Monitor(url, host_token)
    try:
        r = requests.post(url + "/api/broadcasts", headers={"Authorization": f"Bearer {host_token}"}, timeout=10, json={
            "id": broadcast, "title": "Spike test", "products": [
                {"id": "p1", "title": "Limited sneaker", "price": 129000, "currency": "KRW", "description": "load test"}]})
        if r.status_code != 201:
            raise RuntimeError(f"creating the broadcast failed: {r.status_code} {r.text}")
        monitor.connect()
        monitor.call("broadcast.start", {})
        spawn_rate = args.spawn_rate or max(5.0, users / 20)
        ramp_s = users / spawn_rate
        opens_at = int(monitor.clock.server_now() + (ramp_s + 10) * 1000)
        ack = monitor.call("sale.schedule", {"product_id": "p1", "units": args.units, "limit": args.limit,
                                             "hold_s": args.hold_s, "opens_at": opens_at,
                                             "duration_s": args.sale_window_s + 60})
        monitor.sale_id = ack["sale"]["id"]
        if sampler:
            sampler.start()
        run_s = min(MAX_RUN_S, int(ramp_s + 10 + args.sale_window_s + 10))
        env = {**os.environ, "HAWKER_LT_SECRET": secret, "HAWKER_LT_BROADCAST": broadcast,
               "HAWKER_LT_SALE": monitor.sale_id, "HAWKER_LT_OUT": str(samples_dir.resolve()),
               "HAWKER_LT_ABANDON": str(args.abandon), "HAWKER_LT_QTY": str(args.qty),
               "HAWKER_LT_CODEC": args.codec, "HAWKER_LT_VIEWERS": str(args.viewers), "HAWKER_LT_BUYERS": str(buyers)}
        cmd = [sys.executable, "-m", "locust", "-f", str(Path(__file__).with_name("locustfile.py")), "--headless",
               "-u", str(users), "-r", str(spawn_rate), "-t", f"{run_s}s", "--host", url, "--stop-timeout", "10",
               "--csv", str(out / "locust"), "--csv-full-history", "--only-summary", "--loglevel", "WARNING"]
        if args.processes != 1:
            cmd += ["--processes", str(args.processes)]
        cmd += ["ViewerUser", "BuyerUser"]
        print(f"spike: {args.viewers} viewers + {buyers} buyers -> {url}, {args.units} units (limit {args.limit}), "
              f"sale opens in {(opens_at - monitor.clock.server_now()) / 1000:.0f} s", file=sys.stderr)
        lc = subprocess.run(cmd, env=env, timeout=run_s + 120, stdout=subprocess.DEVNULL, stderr=(out / "locust.log").open("wb"))
        if lc.returncode not in (0, 1):  # 1: some requests failed, which the report shows
            notes.append(f"locust exited with {lc.returncode}; see locust.log")
        # every abandoned hold must expire (and be swept) before the audit means anything
        data = wait_for_settled(url, host_token, monitor.sale_id, deadline_s=args.hold_s + 60)
    finally:
        if sampler:
            sampler.stop_event.set()
        try:
            monitor.sio.disconnect()
        except Exception:  # noqa: BLE001
            pass
        if stack:
            stack.stop()

    samples = read_all(samples_dir)
    client_orders = [s.user for s in samples if s.kind == "order"]
    checks = audit.check(data, client_orders)
    params = {"target": url if args.url else "local server (started by the runner)", "viewers": args.viewers,
              "buyers": buyers, "units": args.units, "per-user limit": args.limit, "qty per buyer": args.qty,
              "hold seconds": args.hold_s, "abandon share": args.abandon, "locust processes": args.processes,
              "server workers": args.workers if stack else "n/a", "codec": args.codec, "tick ms": args.tick_ms}
    run_data = report.RunData(params=params, samples=samples, stock=sorted(monitor.stock),
                              resources=sampler.samples if sampler else [], checks=checks,
                              opens_at=opens_at, soldout_at=monitor.soldout_at, notes=notes)
    paths = report.write(run_data, out)
    figs = report.figures(run_data)
    for c in checks:
        print(f"  [{'pass' if c.ok else 'FAIL'}] {c.name}: {c.detail}", file=sys.stderr)
    print(f"spike: report in {paths['markdown']}", file=sys.stderr)
    if args.json:
        print(json.dumps(figs))
    return 0 if audit.passed(checks) else 1


def fetch_audit(url: str, token: str, sale_id: str) -> dict[str, Any]:
    r = requests.get(f"{url}/api/sales/{sale_id}/audit", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    r.raise_for_status()
    return r.json()


def wait_for_settled(url: str, token: str, sale_id: str, deadline_s: float) -> dict[str, Any]:
    """Poll the audit until no hold is live (HELD/PAYING), or until the deadline: what is left then
    is what the audit judges."""
    end = time.monotonic() + deadline_s
    while True:
        data = fetch_audit(url, token, sale_id)
        live = [r for r in data["reservations"] if r["state"] in ("HELD", "PAYING")]
        if not live or time.monotonic() > end:
            return data
        time.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
