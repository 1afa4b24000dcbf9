"""WebRTC fan-out benchmark: one synthetic publisher, N WHEP viewers in other processes.

    python -m loadtest.media_bench [--steps 50,100,200,300] [--window 10] [--json]

Starts a Hawker server (and a throw-away redis-server) as subprocesses, publishes a synthetic
640x360 VP8 stream at about 750 kbps over WHIP, then adds WHEP viewers step by step. Viewers run
in worker processes and only COUNT frames: after the DTLS/SRTP handshake each viewer reads the
RTP header (marker bit + payload type) without decrypting or decoding, so the clients stay cheap
and the server's cost is what is measured. For each step it prints the server's CPU (% of one
core), the delivered video frame rate per viewer (mean / 10th percentile / min) and the
publisher's own frame rate. With --json the last line is one JSON object with
`max_viewers_at_29fps` and `cpu_pct_per_viewer`.

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

SECRET = "media-bench-secret-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _token(role: str, broadcast: str, sub: str) -> str:
    from live.auth import mint

    return mint(SECRET, sub=sub, role=role, broadcast=broadcast)


# ---- viewer worker process -------------------------------------------------------------------


def _light_receive(connection: Any, counter: list[int]) -> None:
    """Count this viewer's video frames straight from the ICE connection (a bench worker only):
    SRTP packets are looked at in their clear RTP header (marker bit on the video payload type)
    and dropped, so the viewer costs no decryption, queueing or decoding. DTLS, RTCP and STUN
    still go through aiortc/aioice as usual."""
    passthrough = connection.data_received

    def data_received(data: bytes, component: int) -> None:
        if len(data) > 12 and 127 < data[0] < 192 and not 192 <= data[1] <= 223:
            counter[2] += 1
            if (data[1] & 0x7F) == counter[0] and data[1] & 0x80:
                counter[1] += 1
            return
        passthrough(data, component)

    connection.data_received = data_received


async def _worker_main(conn: Any, base_url: str, broadcast: str, batch: int) -> None:
    import aiohttp
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    viewers: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    session = aiohttp.ClientSession()

    async def one(idx: int) -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        token = _token("viewer", broadcast, f"bench-{os.getpid()}-{idx}")
        try:
            async with session.post(f"{base_url}/whep/{broadcast}", data=pc.localDescription.sdp.encode(),
                                    headers={"Content-Type": "application/sdp",
                                             "Authorization": f"Bearer {token}"}) as resp:
                body = await resp.text()
                if resp.status != 201:
                    await pc.close()
                    viewers.append({"ok": False, "status": resp.status, "body": body[:200]})
                    return
        except aiohttp.ClientError as exc:
            await pc.close()
            viewers.append({"ok": False, "status": 0, "body": repr(exc)})
            return
        video_pt = next(int(line.split()[3]) for line in body.splitlines() if line.startswith("m=video"))
        counter = [video_pt, 0, 0]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        # after setRemoteDescription the bundled transport is final: count on its ICE connection
        _light_receive(pc.getTransceivers()[0].receiver.transport.transport._connection, counter)
        viewers.append({"ok": True, "pc": pc, "counter": counter})

    while True:
        cmd = await loop.run_in_executor(None, conn.recv)
        if cmd[0] == "add":
            n = cmd[1]
            start = len(viewers)
            for i in range(0, n, batch):
                await asyncio.gather(*(one(start + j) for j in range(i, min(n, i + batch))))
            conn.send({"added": n, "failed": [v["status"] for v in viewers[start:] if not v["ok"]]})
        elif cmd[0] == "stats":
            conn.send({
                "frames": [v["counter"][1] for v in viewers if v["ok"]],
                "connected": sum(1 for v in viewers if v["ok"] and v["pc"].connectionState == "connected"),
                "time": time.monotonic(),
            })
        elif cmd[0] == "stop":
            await asyncio.gather(*(v["pc"].close() for v in viewers if v["ok"]), return_exceptions=True)
            await session.close()
            conn.send("stopped")
            return


def _worker(conn: Any, base_url: str, broadcast: str, batch: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_worker_main(conn, base_url, broadcast, batch))


# ---- orchestration ---------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="hawker-media-bench-")
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workers: list[tuple[Any, Any]] = []

    def log(self, msg: str) -> None:
        print(msg, file=sys.stderr if self.args.json else sys.stdout, flush=True)

    def start_server(self) -> subprocess.Popen[bytes]:
        redis_port = _free_port()
        redis_bin = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.procs.append(subprocess.Popen(
            [redis_bin, "--port", str(redis_port), "--save", "", "--appendonly", "no", "--dir", self.tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        env = {**os.environ, "HAWKER_SECRET": SECRET, "HAWKER_PORT": str(self.port),
               "HAWKER_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "HAWKER_MEDIA_DIR": os.path.join(self.tmp, "media"),
               "HAWKER_WEBRTC_VIEWER_CAP": str(self.args.cap), "HAWKER_LOG_LEVEL": "warning",
               "HAWKER_MEDIA_FORWARD": self.args.forward, "HAWKER_PAYMENT_PROVIDER": "sandbox",
               # every synthetic viewer comes from this one machine: no per-address offer limit
               "HAWKER_WEBRTC_OFFER_IP_RATE": "0"}
        profile = ["-m", "cProfile", "-o", self.args.profile] if self.args.profile else []
        server = subprocess.Popen([sys.executable, *profile, "-m", "live", "serve"], env=env)
        self.procs.append(server)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited with code {server.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return server
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start within 30 s")

    def start_workers(self) -> None:
        ctx = mp.get_context("spawn")
        for _ in range(self.args.workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, self.base, "bench", self.args.batch), daemon=True)
            proc.start()
            self.workers.append((proc, parent))

    async def ask_all(self, cmd: tuple[Any, ...] | list[tuple[Any, ...]]) -> list[Any]:
        loop = asyncio.get_running_loop()
        cmds = cmd if isinstance(cmd, list) else [cmd] * len(self.workers)
        for (_, conn), c in zip(self.workers, cmds):
            conn.send(c)
        return await asyncio.gather(*(loop.run_in_executor(None, conn.recv) for _, conn in self.workers))

    async def run(self) -> dict[str, Any]:
        import aiohttp
        import psutil

        import aiortc.codecs.vpx as vpx
        from loadtest.media_clients import Publisher

        vpx.DEFAULT_BITRATE = self.args.bitrate  # the synthetic host's target (aiortc reads it per encoder)
        started = time.monotonic()
        server = self.start_server()
        sproc = psutil.Process(server.pid)
        self.start_workers()
        results: dict[str, Any] = {"steps": [], "forward": self.args.forward,
                                   "machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}}
        async with aiohttp.ClientSession() as http:
            pub = Publisher(self.base, "bench", _token("host", "bench", "bench-host"),
                            width=640, height=360, fps=30, noise=self.args.noise, audio=True, video_codec="VP8")
            await pub.start(http)
            await asyncio.sleep(3)
            results["baseline"] = await self.measure(sproc, pub, self.args.window / 2)
            self.log(f"baseline: server cpu {results['baseline']['server_cpu_pct']:.1f}% "
                     f"publisher {results['baseline']['publisher_fps']:.1f} fps "
                     f"{results['baseline']['ingest_kbps']:.0f} kbps")
            total = 0
            for target in self.args.steps:
                if time.monotonic() - started > self.args.max_seconds:
                    self.log(f"stopping: --max-seconds {self.args.max_seconds} reached")
                    break
                add = target - total
                per = [add // len(self.workers) + (1 if i < add % len(self.workers) else 0) for i in range(len(self.workers))]
                t0 = time.monotonic()
                replies = await asyncio.wait_for(self.ask_all([("add", n) for n in per]), self.args.connect_timeout)
                failed = [s for r in replies for s in r["failed"]]
                total = target
                await asyncio.sleep(self.args.settle)
                step = await self.measure(sproc, pub, self.args.window)
                step.update({"viewers": target, "connect_s": round(time.monotonic() - t0, 1), "failed": len(failed),
                             "failed_statuses": sorted(set(failed))})
                base_cpu = results["baseline"]["server_cpu_pct"]
                step["cpu_pct_per_viewer"] = round((step["server_cpu_pct"] - base_cpu) / max(1, step["receiving"]), 3)
                results["steps"].append(step)
                self.log(f"N={target:4d} connected={step['connected']:4d} receiving={step['receiving']:4d} "
                         f"server cpu {step['server_cpu_pct']:6.1f}%  fps mean {step['fps_mean']:5.1f} "
                         f"p10 {step['fps_p10']:5.1f} min {step['fps_min']:5.1f}  publisher {step['publisher_fps']:4.1f} fps  "
                         f"server ingest {step['server_ingest_fps']:4.1f} fps (lost {step['ingest_packets_lost']} pkts)  "
                         f"loop lag p99 <= {step['loop_lag_p99_ms']} ms  "
                         f"{step['ingest_kbps']:.0f} kbps  per viewer {step['cpu_pct_per_viewer']:.2f}%  "
                         f"viewer procs {step['viewer_procs_cpu_pct']:.0f}%  machine {step['machine_busy_pct']:.0f}% busy "
                         f"(connect {step['connect_s']}s, failed {len(failed)})")
                if step["fps_mean"] < self.args.stop_below:
                    self.log(f"stopping: delivered fps fell below {self.args.stop_below}")
                    break
            await self.ask_all(("stop",))
            await pub.stop(http)
        good = [s for s in results["steps"] if s["fps_p10"] >= 29.0 and s["failed"] == 0]
        results["max_viewers_at_29fps"] = max((s["viewers"] for s in good), default=0)
        best = max(good, key=lambda s: s["viewers"]) if good else (results["steps"][-1] if results["steps"] else None)
        results["cpu_pct_per_viewer"] = best["cpu_pct_per_viewer"] if best else None
        results["cpu_per_viewer"] = results["cpu_pct_per_viewer"]
        results["machine"]["loadavg_end"] = os.getloadavg()
        results["seconds"] = round(time.monotonic() - started, 1)
        return results

    async def measure(self, sproc: Any, pub: Any, window: float) -> dict[str, Any]:
        import psutil

        workers = [psutil.Process(proc.pid) for proc, _ in self.workers]
        before = await self.ask_all(("stats",))
        wcpu0 = sum(sum(w.cpu_times()[:2]) for w in workers)
        psutil.cpu_percent()
        cpu0 = sum(sproc.cpu_times()[:2])
        pub0 = pub.video_track._count if pub.video_track else 0
        bytes0 = await _ingest_bytes(pub)
        in0, lag0 = await self.server_metrics()
        lost0 = await _ingest_lost(pub)
        t0 = time.monotonic()
        await asyncio.sleep(window)
        after = await self.ask_all(("stats",))
        cpu1 = sum(sproc.cpu_times()[:2])
        wcpu1 = sum(sum(w.cpu_times()[:2]) for w in workers)
        machine = psutil.cpu_percent()
        elapsed = time.monotonic() - t0
        pub1 = pub.video_track._count if pub.video_track else 0
        bytes1 = await _ingest_bytes(pub)
        in1, lag1 = await self.server_metrics()
        lost1 = await _ingest_lost(pub)
        fps: list[float] = []
        connected = 0
        for b, a in zip(before, after):
            connected += a["connected"]
            span = a["time"] - b["time"]
            for f0, f1 in zip(b["frames"], a["frames"]):
                fps.append((f1 - f0) / span)
        fps.sort()
        return {
            "server_cpu_pct": round(100 * (cpu1 - cpu0) / elapsed, 1),
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
            "loop_lag_p99_ms": _p99_ms(lag0, lag1),
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
        for proc, conn in self.workers:
            if proc.is_alive():
                proc.terminate()
            proc.join(5)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _p99_ms(before: dict[float, float], after: dict[float, float]) -> float | None:
    """99th percentile of the loop lag in the window, as the upper bound of its histogram bucket."""
    delta = {le: after.get(le, 0.0) - before.get(le, 0.0) for le in after}
    total = delta.get(float("inf"), 0.0)
    if total <= 0:
        return None
    for le in sorted(delta):
        if delta[le] >= 0.99 * total:
            return None if le == float("inf") else round(le * 1000, 1)
    return None


async def _ingest_lost(pub: Any) -> int:
    """Video packets the server reported lost in its receiver reports (RTCP RR) to the host."""
    for sender in pub.pc.getSenders():
        if sender.track is not None and sender.track.kind == "video":
            stats = await sender.getStats()
            return sum(getattr(s, "packetsLost", 0) or 0 for s in stats.values() if s.type == "remote-inbound-rtp")
    return 0


async def _ingest_bytes(pub: Any) -> int:
    """Bytes the synthetic host has sent (its video sender's stats)."""
    total = 0
    for sender in pub.pc.getSenders():
        if sender.track is not None and sender.track.kind == "video":
            stats = await sender.getStats()
            total += sum(getattr(s, "bytesSent", 0) or 0 for s in stats.values() if s.type == "outbound-rtp")
    return total


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
    p.add_argument("--forward", choices=["direct", "sender"], default="direct",
                   help="server fan-out: the direct loop (default) or aiortc's RTCRtpSender per viewer")
    p.add_argument("--profile", default="", help="write a cProfile of the server to this file")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = p.parse_args(argv)
    args.steps = [int(s) for s in args.steps.split(",") if s]
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
