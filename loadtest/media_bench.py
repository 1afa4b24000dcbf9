"""WebRTC fan-out benchmark: one synthetic publisher, N WHEP viewers in other processes.

    python -m loadtest.media_bench [--steps 50,100,200,300] [--window 10] [--json]
    python -m loadtest.media_bench --forward direct-unbatched,direct,sender   # same run, one after another
    python -m loadtest.media_bench --server-workers 2 --json                  # origin + edge (cascade)

Starts a Hawker server (and a throw-away redis-server) as subprocesses, publishes a synthetic
640x360 VP8 stream at about 750 kbps over WHIP, then adds WHEP viewers step by step. Viewers run
in worker processes and only COUNT frames: after the DTLS/SRTP handshake each viewer reads the
RTP header (marker bit + payload type) without decrypting or decoding, so the clients stay cheap
and the server's cost is what is measured. For each step it prints the server's CPU (% of one
core), the delivered video frame rate per viewer (mean / 10th percentile / min) and the
publisher's own frame rate. With --json the last line is one JSON object with
`max_viewers_at_29fps` and `cpu_pct_per_viewer`.

`--forward` takes a comma-separated list of server fan-out modes (`direct`: GSO batches,
`direct-unbatched`: one sendto per packet, `sender`: aiortc's RTCRtpSender per viewer); each gets a
fresh server and the same steps, one after the other, and `comparison` sums them up.

`--server-workers N` starts the server with N processes on one port (SO_REUSEPORT). The publisher
lands on one of them (the origin); viewers' requests are spread over all (a new TCP connection per
request) and every other process serves its viewers through the cascade. Each viewer notes which
role served it (`X-Hawker-Media-Role`); the origin is told apart from the edges by its CPU before any
viewer joined (it alone ingests and writes HLS). Per process the JSON reports viewers, CPU, CPU per
viewer and delivered fps, plus `edge_cpu_per_viewer / origin_cpu_per_viewer` and
`viewers_sent_to_hls` (offers answered `503 USE_HLS`).

Bounded: every step has a connect timeout and a measuring window; the whole run stops at
--max-seconds. Loopback HTTP, media over this machine's own interface (ICE skips 127.0.0.1)."""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from loadtest.media_bench_figures import fps_summary, ingest_bytes, ingest_lost, p99_ms, per_process
from loadtest.media_bench_worker import SECRET, mint_token, worker
from redislayer.server import find_binary, free_port

# ---- orchestration ---------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="hawker-media-bench-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workers: list[tuple[Any, Any]] = []
        self.redis_url = ""

    def log(self, msg: str) -> None:
        print(msg, file=sys.stderr if self.args.json else sys.stdout, flush=True)

    def start_redis(self) -> None:
        redis_port = free_port()
        redis_bin = find_binary()  # the first Redis >= 7 on PATH (or the embedded Valkey), never an older one
        self.procs.append(subprocess.Popen(
            [redis_bin, "--port", str(redis_port), "--save", "", "--appendonly", "no", "--dir", self.tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.redis_url = f"redis://127.0.0.1:{redis_port}/0"

    def start_server(self, forward: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "HAWKER_SECRET": SECRET, "HAWKER_PORT": str(self.port),
               "HAWKER_REDIS_URL": self.redis_url, "HAWKER_MEDIA_DIR": os.path.join(self.tmp, "media"),
               "HAWKER_WEBRTC_VIEWER_CAP": str(self.args.cap), "HAWKER_LOG_LEVEL": "warning",
               "HAWKER_MEDIA_FORWARD": forward, "HAWKER_PAYMENT_PROVIDER": "sandbox",
               "HAWKER_WORKERS": str(self.args.server_workers),
               # every synthetic viewer comes from this one machine: no per-address offer limit
               "HAWKER_WEBRTC_OFFER_IP_RATE": "0"}
        profile = ["-m", "cProfile", "-o", self.args.profile] if self.args.profile else []
        server = subprocess.Popen([sys.executable, *profile, "-m", "live", "serve"], env=env)
        self.procs.append(server)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited with code {server.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    if self.args.server_workers > 1:
                        time.sleep(5)  # every worker has bound the shared port
                    return server
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start within 60 s")

    def stop_server(self, server: subprocess.Popen[bytes]) -> None:
        _terminate(server, 20)
        self.procs.remove(server)

    def start_workers(self) -> None:
        ctx = mp.get_context("spawn")
        for _ in range(self.args.workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(child, self.base, "bench", self.args.batch), daemon=True)
            proc.start()
            self.workers.append((proc, parent))

    def stop_workers(self) -> None:
        for proc, _ in self.workers:
            if proc.is_alive():
                proc.terminate()
            proc.join(5)
        self.workers = []

    async def ask_all(self, cmd: tuple[Any, ...] | list[tuple[Any, ...]]) -> list[Any]:
        loop = asyncio.get_running_loop()
        cmds = cmd if isinstance(cmd, list) else [cmd] * len(self.workers)
        for (_, conn), c in zip(self.workers, cmds):
            conn.send(c)
        return await asyncio.gather(*(loop.run_in_executor(None, conn.recv) for _, conn in self.workers))

    async def run(self) -> dict[str, Any]:
        started = time.monotonic()
        self.start_redis()
        results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()},
                                   "server_workers": self.args.server_workers, "runs": []}
        for mode in self.args.forward:
            results["runs"].append(await self.run_mode(mode, started))
        runs = results["runs"]
        primary = next((r for r in runs if r["forward"] == "direct"), runs[0])
        results.update({k: v for k, v in primary.items() if k != "forward"})
        results["forward"] = primary["forward"]
        if len(runs) > 1:
            results["comparison"] = [{
                "forward": r["forward"], "max_viewers_at_29fps": r["max_viewers_at_29fps"],
                "cpu_pct_per_viewer": r["cpu_pct_per_viewer"],
                "steps": [{k: st.get(k) for k in ("viewers", "server_cpu_pct", "cpu_pct_per_viewer", "fps_mean",
                                                   "fps_p10", "machine_busy_pct")} for st in r["steps"]],
            } for r in runs]
        results["machine"]["loadavg_end"] = os.getloadavg()
        results["seconds"] = round(time.monotonic() - started, 1)
        return results

    async def run_mode(self, forward: str, started: float) -> dict[str, Any]:
        import aiohttp
        import aiortc.codecs.vpx as vpx
        import psutil

        from loadtest.media_clients import Publisher

        vpx.DEFAULT_BITRATE = self.args.bitrate  # the synthetic host's target (aiortc reads it per encoder)
        self.log(f"--- forward={forward} server_workers={self.args.server_workers}")
        server = self.start_server(forward)
        sproc = psutil.Process(server.pid)
        procs = [sproc]
        if self.args.server_workers > 1:  # the worker processes, not multiprocessing's resource tracker
            procs = [c for c in sproc.children() if "resource_tracker" not in " ".join(c.cmdline())]
        self.start_workers()
        results: dict[str, Any] = {"forward": forward, "steps": [], "loadavg_start": os.getloadavg()}
        try:
            async with aiohttp.ClientSession() as http:
                pub = Publisher(self.base, "bench", mint_token("host", "bench", "bench-host"), width=640, height=360,
                                fps=30, noise=self.args.noise, audio=True, video_codec="VP8")
                await pub.start(http)
                await asyncio.sleep(3)
                results["baseline"] = base = await self.measure(sproc, procs, pub, self.args.window / 2)
                origin_pid = max(base["process_cpu_pct"], key=lambda pid: base["process_cpu_pct"][pid])
                self.log(f"baseline: server cpu {base['server_cpu_pct']:.1f}% publisher {base['publisher_fps']:.1f} fps "
                         f"{base['ingest_kbps']:.0f} kbps")
                total = hls = 0
                for target in self.args.steps:
                    if time.monotonic() - started > self.args.max_seconds:
                        self.log(f"stopping: --max-seconds {self.args.max_seconds} reached")
                        break
                    add = target - total
                    per = [add // len(self.workers) + (1 if i < add % len(self.workers) else 0)
                           for i in range(len(self.workers))]
                    t0 = time.monotonic()
                    replies = await asyncio.wait_for(self.ask_all([("add", n) for n in per]), self.args.connect_timeout)
                    failed = [st for r in replies for st in r["failed"]]
                    hls += sum(r["hls"] for r in replies)
                    total = target
                    await asyncio.sleep(self.args.settle)
                    step = await self.measure(sproc, procs, pub, self.args.window)
                    step.update({"viewers": target, "connect_s": round(time.monotonic() - t0, 1), "failed": len(failed),
                                 "failed_statuses": sorted(set(failed)), "viewers_sent_to_hls": hls})
                    step["cpu_pct_per_viewer"] = round((step["server_cpu_pct"] - base["server_cpu_pct"])
                                                       / max(1, step["receiving"]), 3)
                    if self.args.server_workers > 1:
                        step.update(per_process(step, base, origin_pid))
                    results["steps"].append(step)
                    self.log(self.describe(target, step, failed))
                    if step["fps_mean"] < self.args.stop_below:
                        self.log(f"stopping: delivered fps fell below {self.args.stop_below}")
                        break
                await self.ask_all(("stop",))
                await pub.stop(http)
        finally:
            self.stop_workers()
            self.stop_server(server)
        good = [st for st in results["steps"] if st["fps_p10"] >= 29.0 and st["failed"] == 0]
        results["max_viewers_at_29fps"] = max((st["viewers"] for st in good), default=0)
        best = max(good, key=lambda st: st["viewers"]) if good else (results["steps"][-1] if results["steps"] else None)
        results["cpu_pct_per_viewer"] = best["cpu_pct_per_viewer"] if best else None
        results["cpu_per_viewer"] = results["cpu_pct_per_viewer"]
        if best is not None and self.args.server_workers > 1:
            for key in ("processes", "origin_cpu_per_viewer", "edge_cpu_per_viewer", "edge_over_origin_cpu_per_viewer"):
                results[key] = best.get(key)
        results["viewers_sent_to_hls"] = results["steps"][-1]["viewers_sent_to_hls"] if results["steps"] else 0
        results["loadavg_end"] = os.getloadavg()
        return results

    def describe(self, target: int, step: dict[str, Any], failed: list[int]) -> str:
        line = (f"N={target:4d} connected={step['connected']:4d} receiving={step['receiving']:4d} "
                f"server cpu {step['server_cpu_pct']:6.1f}%  fps mean {step['fps_mean']:5.1f} "
                f"p10 {step['fps_p10']:5.1f} min {step['fps_min']:5.1f}  publisher {step['publisher_fps']:4.1f} fps  "
                f"server ingest {step['server_ingest_fps']:4.1f} fps (lost {step['ingest_packets_lost']} pkts)  "
                f"loop lag p99 <= {step['loop_lag_p99_ms']} ms  "
                f"{step['ingest_kbps']:.0f} kbps  per viewer {step['cpu_pct_per_viewer']:.2f}%  "
                f"viewer procs {step['viewer_procs_cpu_pct']:.0f}%  machine {step['machine_busy_pct']:.0f}% busy "
                f"(connect {step['connect_s']}s, failed {len(failed)}, to HLS {step['viewers_sent_to_hls']})")
        for proc in step.get("processes", []):
            line += (f"\n      {proc['role']:6s} pid {proc['pid']}: {proc['viewers']} viewers, cpu {proc['cpu_pct']:.1f}% "
                     f"({proc['cpu_pct_per_viewer']}% per viewer), fps mean {proc['fps_mean']} p10 {proc['fps_p10']}")
        if "edge_over_origin_cpu_per_viewer" in step:
            line += f"\n      edge/origin cpu per viewer: {step['edge_over_origin_cpu_per_viewer']}"
        return line

    async def measure(self, sproc: Any, procs: list[Any], pub: Any, window: float) -> dict[str, Any]:
        import psutil

        workers = [psutil.Process(proc.pid) for proc, _ in self.workers]
        before = await self.ask_all(("stats",))
        wcpu0 = sum(sum(w.cpu_times()[:2]) for w in workers)
        psutil.cpu_percent()
        cpu0 = {p.pid: sum(p.cpu_times()[:2]) for p in {sproc, *procs}}
        pub0 = pub.video_track._count if pub.video_track else 0
        bytes0 = await ingest_bytes(pub)
        in0, lag0 = await self.server_metrics()
        lost0 = await ingest_lost(pub)
        t0 = time.monotonic()
        await asyncio.sleep(window)
        after = await self.ask_all(("stats",))
        cpu1 = {p.pid: sum(p.cpu_times()[:2]) for p in {sproc, *procs}}
        wcpu1 = sum(sum(w.cpu_times()[:2]) for w in workers)
        machine = psutil.cpu_percent()
        elapsed = time.monotonic() - t0
        pub1 = pub.video_track._count if pub.video_track else 0
        bytes1 = await ingest_bytes(pub)
        in1, lag1 = await self.server_metrics()
        lost1 = await ingest_lost(pub)
        fps: list[float] = []
        by_role: dict[str, list[float]] = {}
        connected = 0
        for b, a in zip(before, after):
            connected += a["connected"]
            span = a["time"] - b["time"]
            for f0, f1, role in zip(b["frames"], a["frames"], a["roles"]):
                rate = (f1 - f0) / span
                fps.append(rate)
                by_role.setdefault(role, []).append(rate)
        fps.sort()
        return {
            "server_cpu_pct": round(100 * sum(cpu1[p] - cpu0[p] for p in cpu1) / elapsed, 1),
            "process_cpu_pct": {p.pid: round(100 * (cpu1[p.pid] - cpu0[p.pid]) / elapsed, 1) for p in procs},
            "fps_by_role": {role: fps_summary(rates) for role, rates in by_role.items()},
            "viewer_procs_cpu_pct": round(100 * (wcpu1 - wcpu0) / elapsed, 1),
            "machine_busy_pct": machine,
            "connected": connected,
            "receiving": sum(1 for f in fps if f > 0),
            "fps_mean": round(statistics.fmean(fps), 2) if fps else 0.0,
            "fps_p10": round(fps[len(fps) // 10], 2) if fps else 0.0,
            "fps_min": round(fps[0], 2) if fps else 0.0,
            "publisher_fps": round((pub1 - pub0) / elapsed, 2),
            "server_ingest_fps": round((in1 - in0) / elapsed, 2),
            "ingest_packets_lost": lost1 - lost0,
            "loop_lag_p99_ms": p99_ms(lag0, lag1),
            "ingest_kbps": round((bytes1 - bytes0) * 8 / elapsed / 1000, 1),
        }

    async def server_metrics(self) -> tuple[float, dict[float, float]]:
        """From the server's /metrics: video frames reassembled from the host, and the event-loop
        lag histogram's cumulative buckets (le -> count)."""
        import aiohttp

        async with aiohttp.ClientSession() as http:
            async with http.get(self.base + "/metrics") as resp:
                text = await resp.text()
        frames, lag = 0.0, {}
        for line in text.splitlines():
            if line.startswith('hawker_media_frames_in_total{kind="video"}'):
                frames = float(line.split()[-1])
            elif line.startswith("hawker_event_loop_lag_seconds_bucket{"):
                le = line.split('le="', 1)[1].split('"', 1)[0]
                lag[float("inf") if le == "+Inf" else float(le)] = float(line.split()[-1])
        return frames, lag

    def cleanup(self) -> None:
        self.stop_workers()
        for p in reversed(self.procs):
            _terminate(p, 10)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _terminate(proc: subprocess.Popen[bytes], wait_s: float) -> None:
    """SIGTERM (a server finalizes its replays), SIGKILL after `wait_s`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.media_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", default="50,100,200,300", help="viewer counts to measure, ascending")
    p.add_argument("--window", type=float, default=10.0, help="seconds measured per step")
    p.add_argument("--settle", type=float, default=4.0, help="seconds to wait after adding viewers")
    p.add_argument("--workers", type=int, default=3, help="viewer processes")
    p.add_argument("--batch", type=int, default=10, help="concurrent WHEP handshakes per worker")
    p.add_argument("--bitrate", type=int, default=750_000, help="publisher VP8 target bitrate")
    p.add_argument("--noise", type=float, default=0.02, help="share of each frame filled with noise (spends bitrate)")
    p.add_argument("--cap", type=int, default=10_000, help="server webrtc_viewer_cap during the run")
    p.add_argument("--connect-timeout", type=float, default=180.0)
    p.add_argument("--stop-below", type=float, default=15.0, help="stop adding viewers below this mean fps")
    p.add_argument("--max-seconds", type=float, default=600.0)
    p.add_argument("--forward", default="direct",
                   help="server fan-out mode(s), comma-separated, measured one after the other in this run: "
                        "direct (GSO batches, default), direct-unbatched (one sendto per packet), sender "
                        "(aiortc's RTCRtpSender per viewer)")
    p.add_argument("--server-workers", type=int, default=1,
                   help="server processes on the port (>1: one origin, the others edges through the cascade)")
    p.add_argument("--profile", default="", help="write a cProfile of the server to this file")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = p.parse_args(argv)
    args.steps = [int(s) for s in args.steps.split(",") if s]
    args.forward = [m for m in args.forward.split(",") if m]
    unknown = [m for m in args.forward if m not in ("direct", "direct-unbatched", "sender")]
    if unknown:
        p.error(f"unknown --forward mode(s): {', '.join(unknown)}")
    bench = Bench(args)
    try:
        results = asyncio.run(bench.run())
    finally:
        bench.cleanup()
    results["command"] = "python -m loadtest.media_bench " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.json:
        print(json.dumps(results))
    else:
        print(f"max viewers at >=29 fps (p10): {results['max_viewers_at_29fps']}; "
              f"server CPU per viewer: {results['cpu_pct_per_viewer']}% of one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
