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
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

from loadtest import audit, compare, generator, report, serverside
from loadtest.lightclient import mint
from loadtest.localstack import LocalStack
from loadtest.samples import read_all
from loadtest.spike_watch import Monitor, ResourceSampler, server_pids
from redislayer.server import free_port

MAX_USERS = 20_000
MAX_RUN_S = 2_100  # a 30 min soak plus its ramp
MAX_SPAWN_RATE = 200.0  # default ramp: ~20 s, but no faster than this many joins per second
SCENARIOS = ("flash", "chat-storm", "reconnect-storm", "soak")
BLOCKED_WORD = "spamword"


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest.spike", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="target server (default: start one here)")
    p.add_argument("--secret", default=os.environ.get("HAWKER_SECRET"), help="token secret of --url [env HAWKER_SECRET]")
    p.add_argument("--metrics-token", default=os.environ.get("HAWKER_METRICS_TOKEN"),
                   help="bearer token for the server's /metrics [env HAWKER_METRICS_TOKEN]")
    p.add_argument("--allow-remote", action="store_true", help="allow a --url that is not loopback")
    p.add_argument("--scenario", choices=SCENARIOS, default="flash",
                   help="flash (default): the sale moment; chat-storm: every viewer chats 1/s, moderation on; "
                        "reconnect-storm: every viewer drops and rejoins within 5 s; soak: --duration-s steady")
    p.add_argument("--viewers", type=int, default=2000, help="watching users on light sockets (default 2000)")
    p.add_argument("--buyers", type=int, default=None, help="users who press Buy, full Socket.IO clients (default viewers/4)")
    p.add_argument("--units", type=int, default=100)
    p.add_argument("--limit", type=int, default=2, help="per-user limit")
    p.add_argument("--qty", type=int, default=1, help="units each buyer asks for")
    p.add_argument("--hold-s", type=int, default=10, help="hold time; abandoned holds expire after it (min 10)")
    p.add_argument("--abandon", type=float, default=0.2, help="share of buyers who hold and never pay")
    p.add_argument("--spawn-rate", type=float, default=None, help="users started per second (default: ramp in ~20 s, at most 200/s)")
    p.add_argument("--processes", type=int, default=-1, help="Locust processes on this machine (-1: one per core)")
    p.add_argument("--expect-workers", type=int, default=0,
                   help="distributed: be the Locust master and wait for this many `locust --worker` processes "
                        "(on this or other machines) instead of starting local ones")
    p.add_argument("--master-bind-host", default="127.0.0.1", help="address the master listens on (distributed)")
    p.add_argument("--workers-wait-s", type=int, default=60,
                   help="distributed: how long the master waits for its workers (the sale opens after it)")
    p.add_argument("--broadcast", default=None, help="broadcast id to create (default: a random one)")
    p.add_argument("--workers", type=int, default=1, help="server processes when starting one here")
    p.add_argument("--tick-ms", type=int, default=100)
    p.add_argument("--sale-window-s", type=int, default=60, help="how long buyers may keep trying after the open")
    p.add_argument("--duration-s", type=int, default=None, help="steady time after the ramp (soak: 1800)")
    p.add_argument("--codec", choices=["msgpack", "json", "mixed"], default="msgpack",
                   help="wire codec of the load clients (msgpack, like the player)")
    p.add_argument("--tick-sample", type=int, default=20, help="a light viewer times 1 tick in this many")
    p.add_argument("--throttle-generator", type=float, default=0.0,
                   help="0..1: make every generator process burn this share of its time (to see a saturated run)")
    p.add_argument("--baseline", help="an earlier report folder: add a table of deltas against it")
    p.add_argument("--out", default="loadtest-out", help="report folder")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON line at the end")
    return p


def warn_if_small(users: int, processes: int) -> list[str]:
    cores = os.cpu_count() or 1
    notes = []
    if processes == 1 and users > 3000:
        notes.append("one Locust process drives every user; --processes -1 uses every core")
    if users > 3000 * cores:
        notes.append(f"{users} users on {cores} cores: the generator and the server share this machine; "
                     "check generator_saturated, or run workers on other machines (--expect-workers)")
    return notes


class _Locust:
    """The Locust run as a child process that the runner can end early (SIGTERM: Locust writes its CSV)."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path, limit_s: float) -> None:
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
                                     start_new_session=True)
        self.limit_s = limit_s
        self.t0 = time.monotonic()

    def wait(self, stop_when: Any) -> int:
        """Wait for the end of the run, or stop it when `stop_when()` says so."""
        while self.proc.poll() is None:
            if stop_when() or time.monotonic() - self.t0 > self.limit_s:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    return self.proc.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    return self.proc.wait()
            time.sleep(0.5)
        return self.proc.returncode


def run(args: argparse.Namespace) -> int:
    buyers = args.buyers if args.buyers is not None else max(1, args.viewers // 4)
    users = args.viewers + buyers
    if users > MAX_USERS:
        print(f"spike: at most {MAX_USERS} users per run", file=sys.stderr)
        return 2
    if args.url and not _is_loopback(args.url) and not args.allow_remote:
        print("spike: --url is not a loopback address; pass --allow-remote if you mean it", file=sys.stderr)
        return 2
    if args.url and not args.secret:
        print("spike: --secret (or HAWKER_SECRET) is needed to mint tokens for --url", file=sys.stderr)
        return 2
    processes = (os.cpu_count() or 1) if args.processes == -1 else max(1, args.processes)
    notes = warn_if_small(users, processes if not args.expect_workers else 0)
    for n in notes:
        print(f"spike: warning: {n}", file=sys.stderr)
    out = Path(args.out)
    samples_dir = out / "samples-raw"
    shutil.rmtree(samples_dir, ignore_errors=True)
    samples_dir.mkdir(parents=True)
    duration_s = args.duration_s if args.duration_s is not None else (1800 if args.scenario == "soak" else 0)

    stack = None
    if args.url:
        url, secret = args.url.rstrip("/"), args.secret
    else:
        env = {"HAWKER_WORKERS": str(args.workers), "HAWKER_TICK_MS": str(args.tick_ms)}
        if args.scenario == "chat-storm":
            env["HAWKER_CHAT_BLOCKED_WORDS"] = BLOCKED_WORD
        if args.metrics_token:
            env["HAWKER_METRICS_TOKEN"] = args.metrics_token
        stack = LocalStack(env=env)
        stack.__enter__()
        url, secret = stack.url, stack.secret
    broadcast = args.broadcast or f"spike-{uuid.uuid4().hex[:8]}"
    host_token = mint(secret, sub="spike-host", role="host", broadcast=broadcast, ttl=7200)
    sampler = ResourceSampler(server_pids(stack)) if stack else None
    scraper = serverside.Scraper(url, args.metrics_token)
    monitor = Monitor(url, host_token)
    times: dict[str, Any] = {}
    data: dict[str, Any] = {}
    audit_error = ""
    lc_code = None
    try:
        r = requests.post(url + "/api/broadcasts", headers={"Authorization": f"Bearer {host_token}"}, timeout=10, json={
            "id": broadcast, "title": "Spike test", "products": [
                {"id": "p1", "title": "Limited sneaker", "price": 129000, "currency": "KRW", "description": "load test"}]})
        if r.status_code != 201:
            raise RuntimeError(f"creating the broadcast failed: {r.status_code} {r.text}")
        monitor.connect()
        monitor.call("broadcast.start", {})
        spawn_rate = args.spawn_rate or min(MAX_SPAWN_RATE, max(5.0, users / 20))
        ramp_s = users / spawn_rate
        wait_s = args.workers_wait_s if args.expect_workers else 0
        real_now = monitor.clock.server_now()
        now = real_now + wait_s * 1000  # the master waits for its workers before the first spawn
        storm_at = 0
        if args.scenario == "reconnect-storm":
            storm_at = int(now + (ramp_s + 10) * 1000)
            opens_at = storm_at + 20_000
        else:
            opens_at = int(now + (ramp_s + 10) * 1000)
        window_end = opens_at + args.sale_window_s * 1000
        ack = monitor.call("sale.schedule", {"product_id": "p1", "units": args.units, "limit": args.limit,
                                             "hold_s": max(10, args.hold_s), "opens_at": opens_at,
                                             "duration_s": args.sale_window_s + 120 + duration_s})
        monitor.sale_id, monitor.units = ack["sale"]["id"], args.units
        if sampler:
            sampler.start()
        scraper.take()
        scraper.start()
        run_s = min(MAX_RUN_S, int((window_end - real_now) / 1000 + 5 + duration_s))  # Locust counts from its start
        env = {**os.environ, "HAWKER_LT_SECRET": secret, "HAWKER_LT_BROADCAST": broadcast,
               "HAWKER_LT_SALE": monitor.sale_id, "HAWKER_LT_OUT": str(samples_dir.resolve()),
               "HAWKER_LT_ABANDON": str(args.abandon), "HAWKER_LT_QTY": str(args.qty),
               "HAWKER_LT_CODEC": args.codec, "HAWKER_LT_VIEWERS": str(args.viewers), "HAWKER_LT_BUYERS": str(buyers),
               "HAWKER_LT_SCENARIO": args.scenario, "HAWKER_LT_WINDOW_END": str(window_end),
               "HAWKER_LT_STORM_AT": str(storm_at), "HAWKER_LT_TICK_SAMPLE": str(args.tick_sample),
               "HAWKER_LT_THROTTLE": str(args.throttle_generator),
               "HAWKER_LT_BLOCKED_WORD": BLOCKED_WORD if args.scenario == "chat-storm" else ""}
        worker_env = {k: v for k, v in env.items() if k.startswith("HAWKER_LT_") and k != "HAWKER_LT_OUT"}
        (out / "worker.env").write_text("".join(f"{k}={v}\n" for k, v in sorted(worker_env.items())))
        if args.expect_workers:
            print(f"spike: waiting up to {wait_s} s for {args.expect_workers} workers; on each worker machine run\n"
                  f"  env $(cat {out / 'worker.env'}) locust -f loadtest/locustfile.py --worker "
                  f"--master-host <this machine>\n(copy {out / 'worker.env'} there: it holds the token secret)",
                  file=sys.stderr)
        cmd = [sys.executable, "-m", "locust", "-f", str(Path(__file__).with_name("locustfile.py")), "--headless",
               "-u", str(users), "-r", str(spawn_rate), "-t", f"{run_s}s", "--host", url, "--stop-timeout", "10",
               "--csv", str(out / "locust"), "--csv-full-history", "--only-summary", "--loglevel", "WARNING"]
        if args.expect_workers:
            cmd += ["--master", "--expect-workers", str(args.expect_workers), "--master-bind-host", args.master_bind_host,
                    "--expect-workers-max-wait", str(wait_s)]
        elif processes > 1:
            # the local master listens on loopback, on a free port (not 5557 for every run on the machine)
            port = free_port()
            cmd += ["--processes", str(processes), "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                    "--master-port", str(port)]
        cmd += ["LightViewerUser", "BuyerUser"]
        print(f"spike: {args.scenario}: {args.viewers} viewers + {buyers} buyers -> {url}, {args.units} units "
              f"(limit {args.limit}), sale opens in {(opens_at - monitor.clock.server_now()) / 1000:.0f} s, "
              f"run at most {run_s} s", file=sys.stderr)
        # the measured window starts when every user should be in: 10 s before the open (local clock)
        times["ramp_end_ms"] = int(time.time() * 1000 + (opens_at - monitor.clock.server_now()) - 10_000)
        if storm_at:
            times["ramp_end_ms"] -= 20_000
        locust = _Locust(cmd, env, out / "locust.log", run_s + wait_s + 120)
        last_mod = [0.0]

        def stop_when() -> bool:
            if args.scenario == "chat-storm" and time.monotonic() - last_mod[0] > 3:
                last_mod[0] = time.monotonic()
                threading.Thread(target=monitor.moderate, daemon=True).start()
            # a flash sale whose every unit is sold has nothing left to measure: stop 5 s later
            return (args.scenario == "flash" and monitor.sold_all_at is not None
                    and monitor.clock.server_now() > monitor.sold_all_at + 5000)

        lc_code = locust.wait(stop_when)
        times["end_ms"] = int(time.time() * 1000)
        if lc_code not in (0, 1):  # 1: some requests failed, which the report shows
            notes.append(f"locust exited with {lc_code}; see locust.log")
        scraper.stop_event.set()
        scraper.take()
        # every abandoned hold must expire (and be swept) before the audit means anything
        try:
            data = wait_for_settled(url, host_token, monitor.sale_id, deadline_s=args.hold_s + 60)
        except requests.RequestException as exc:  # the report still says what was measured, and why no audit
            audit_error = f"the server did not answer the audit: {exc.__class__.__name__}: {exc}"
            notes.append(audit_error)
    finally:
        if sampler:
            sampler.stop_event.set()
        scraper.stop_event.set()
        try:
            monitor.sio.disconnect()
        except Exception:  # noqa: BLE001 - the monitor's socket may be dead already; the server must still stop
            pass
        if stack:
            if stack.proc is not None and stack.proc.poll() is not None:
                notes.append(f"the server process exited during the run with code {stack.proc.returncode}; "
                             "see server.log")
            try:
                shutil.copyfile(stack.log_path, out / "server.log")
            except OSError:
                pass
            stack.stop()

    samples = read_all(samples_dir)
    gen = generator.read(samples_dir / "generator.csv")
    client_orders = [s.user for s in samples if s.kind == "order"]
    checks = audit.check(data, client_orders) if data else [audit.Check("the server answered the audit", False,
                                                                        audit_error or "no audit")]
    params = {"scenario": args.scenario, "target": url if args.url else "local server (started by the runner)",
              "viewers (light sockets)": args.viewers, "buyers (full Socket.IO clients)": buyers,
              "units": args.units, "per-user limit": args.limit, "qty per buyer": args.qty,
              "hold seconds": args.hold_s, "abandon share": args.abandon, "sale window (s)": args.sale_window_s,
              "locust processes": f"master + {args.expect_workers} workers" if args.expect_workers else processes,
              "server workers": args.workers if stack else "n/a", "codec": args.codec, "tick ms": args.tick_ms,
              "command": "python -m loadtest.spike " + " ".join(getattr(args, "argv", []))}
    if args.throttle_generator:
        params["generator throttle"] = args.throttle_generator
    first, last = (scraper.scrapes[0][1], scraper.scrapes[-1][1]) if len(scraper.scrapes) >= 2 else (None, None)
    run_data = report.RunData(params=params, samples=samples, stock=sorted(monitor.stock),
                              resources=sampler.samples if sampler else [], checks=checks,
                              opens_at=opens_at, soldout_at=monitor.soldout_at, notes=notes,
                              sold_all_at=monitor.sold_all_at, units=args.units, levels=data.get("levels") or {},
                              generator=gen, window=(times["ramp_end_ms"], times["end_ms"]),
                              server=serverside.figures(first, last), server_timeline=scraper.timeline(),
                              scenario=args.scenario, storm_at=storm_at or None, moderated=monitor.moderated)
    baseline = None
    if args.baseline:
        try:
            baseline = compare.load(args.baseline)
        except (OSError, ValueError) as exc:
            notes.append(f"baseline {args.baseline} could not be read: {exc}")
    paths = report.write(run_data, out, baseline=baseline)
    figs = report.figures(run_data)
    for c in checks:
        print(f"  [{'pass' if c.ok else 'FAIL'}] {c.name}: {c.detail}", file=sys.stderr)
    if figs["generator_saturated"]:
        print("spike: the load generator was SATURATED: client-side latencies describe the generator", file=sys.stderr)
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
        try:
            data = fetch_audit(url, token, sale_id)
        except (requests.ConnectionError, requests.Timeout):
            # a server still closing thousands of sockets may answer late: ask again until the deadline
            if time.monotonic() > end:
                raise
            time.sleep(2.0)
            continue
        live = [r for r in data["reservations"] if r["state"] in ("HELD", "PAYING")]
        if not live or time.monotonic() > end:
            return data
        time.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
