"""Fan-out benchmark: server CPU per delivery for the hub's engine vs stock python-socketio vs a raw
aiohttp `send_bytes` loop, N clients in one broadcast on loopback.

    python -m loadtest.fanout_bench [--clients 1000] [--seconds 4] [--rate 20] [--procs 3] [--json]

One run starts a server process (a redis-server for the engine's pub/sub, and one aiohttp app with
three doors: the engine at /socket.io/, a plain `socketio.AsyncServer` at /stock/, raw websockets at
/raw) and, for each mode in turn, client processes that connect N light clients (bare aiohttp
websockets speaking the Engine.IO/Socket.IO handshake, loadtest/fanout_raw.py). The server sends
`--rate` messages per second to all of them for `--seconds`, waits for the backlog to drain, and
reports the CPU time its process used; the clients count what they received and the latency from
the server's timestamp in the payload to their receive time (same machine, same clock).

    µs per delivery = (server process CPU time - its idle CPU rate x the phase's time)
                      / messages received by all clients
Modes: hub = `Fanout.chat()` + one tick per message (encoded once per codec, msgpack clients);
stock = `await sio.emit("tick", payload, to=room)` (JSON, stock python-socketio);
raw = `for ws in sockets: await ws.send_bytes(frame)` with one pre-encoded msgpack frame.
The machine may be shared: the figures are for comparing the modes within one run."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

from redislayer.server import find_binary, free_port

MODES = ("hub", "stock", "raw")
ROOM = "bench"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _payload(seq: int, text: str) -> dict[str, Any]:
    return {"id": f"m{seq}", "t": time.time() * 1000.0, "text": text, "role": "viewer"}


# ---- the server process -------------------------------------------------------------------------

async def _serve(port: int, redis_url: str) -> None:
    import msgpack
    import redis.asyncio as aioredis
    import socketio
    from aiohttp import web

    from live.fanout import Fanout, FanoutServer

    app = web.Application()
    hub = FanoutServer(async_mode="aiohttp", ping_interval=20, ping_timeout=20)
    hub.attach(app, socketio_path="socket.io")
    stock = socketio.AsyncServer(async_mode="aiohttp", ping_interval=20, ping_timeout=20)
    stock.attach(app, socketio_path="stock")
    redis = aioredis.Redis.from_url(redis_url)
    fan = Fanout(hub, redis, node_id="bench", tick_ms=3_600_000, chat_overload_rate=1e12)
    raws: list[web.WebSocketResponse] = []

    @hub.on("connect")
    async def _hub_connect(sid: str, environ: dict, auth: Any = None) -> None:
        await fan.join(sid, ROOM)

    @hub.on("disconnect")
    async def _hub_gone(sid: str, *_a: Any) -> None:
        await fan.leave(sid)

    @stock.on("connect")
    async def _stock_connect(sid: str, environ: dict, auth: Any = None) -> None:
        await stock.enter_room(sid, ROOM)

    async def raw(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        raws.append(ws)
        try:
            async for _ in ws:
                pass
        finally:
            raws.remove(ws)
        return ws

    async def phase(request: web.Request) -> web.Response:
        mode = request.query["mode"]
        seconds = float(request.query["seconds"])
        rate = float(request.query["rate"])
        settle = float(request.query.get("settle", "1.5"))
        text = "x" * int(request.query.get("size", "120"))
        period = 1.0 / rate
        loop = asyncio.get_running_loop()
        idle0 = _cpu()  # background CPU (pings, timers, Redis polling) over one second, to subtract
        await asyncio.sleep(1.0)
        idle_per_s = _cpu() - idle0
        cpu0, t0 = _cpu(), loop.time()
        sent = 0
        recipients = {"hub": fan.members(ROOM), "stock": len(list(stock.manager.get_participants("/", ROOM))),
                      "raw": len(raws)}[mode]
        due = t0
        while loop.time() - t0 < seconds:
            if mode == "hub":
                fan.chat(ROOM, _payload(sent, text))
                fan.tick()
            elif mode == "stock":
                await stock.emit("tick", {"ts": int(time.time() * 1000), "chat": [_payload(sent, text)],
                                          "viewers": recipients}, to=ROOM)
            else:
                frame = msgpack.packb({"ts": int(time.time() * 1000), "chat": [_payload(sent, text)],
                                       "viewers": recipients})
                for ws in list(raws):
                    await ws.send_bytes(frame)
            sent += 1
            due += period
            await asyncio.sleep(max(0.0, due - loop.time()))
        send_cpu = _cpu() - cpu0
        await asyncio.sleep(settle)  # let backlogs drain: their CPU counts too
        total = _cpu() - cpu0
        wall = loop.time() - t0
        return web.json_response({"mode": mode, "messages": sent, "recipients": recipients, "cpu_s": total,
                                  "net_cpu_s": max(0.0, total - idle_per_s * wall), "idle_cpu_per_s": idle_per_s,
                                  "send_cpu_s": send_cpu, "wall_s": wall - settle})

    app.router.add_get("/raw", raw)
    app.router.add_post("/phase", phase)
    app.on_startup.append(lambda _a: fan.start())
    app.on_cleanup.append(lambda _a: fan.stop())
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print("SERVING", flush=True)
    await asyncio.Event().wait()


# ---- a client process ---------------------------------------------------------------------------

async def _clients(url: str, mode: str, count: int) -> None:
    import aiohttp
    import msgpack

    from loadtest.fanout_raw import raw_connect

    received = 0
    connected = 0
    lat: list[float] = []

    def on_payload(p: Any) -> None:
        nonlocal received
        if not isinstance(p, dict) or not p.get("chat"):
            return
        now = time.time() * 1000.0
        received += 1
        if len(lat) < 100_000:
            lat.append(now - p["chat"][0]["t"])

    async def one_raw(session: aiohttp.ClientSession, sem: asyncio.Semaphore) -> None:
        nonlocal connected
        async with sem:
            ws = await session.ws_connect(url.replace("http", "ws") + "/raw", compress=0, max_msg_size=0)
        connected += 1
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                on_payload(msgpack.unpackb(msg.data))

    async def one_sio(session: aiohttp.ClientSession, sem: asyncio.Semaphore) -> None:
        nonlocal connected
        async with sem:
            c = await raw_connect(session, url, None, codec="msgpack" if mode == "hub" else "json",
                                  path="/socket.io/" if mode == "hub" else "/stock/")
        connected += 1
        async for msg in c.ws:
            ev = c.decode(msg)
            if ev is None:
                continue
            if ev[0] == "__ping__":
                await c.pong()
            elif ev[0] == "tick":
                on_payload(ev[1])

    sem = asyncio.Semaphore(40)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        one = one_raw if mode == "raw" else one_sio
        tasks = [asyncio.ensure_future(one(session, sem)) for _ in range(count)]
        while connected < count:
            await asyncio.sleep(0.1)
            failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
            if failed:
                raise SystemExit(f"client failed: {failed[0].exception()!r}")
        await asyncio.sleep(0.5)  # the last joins reach the broadcast
        print("READY", flush=True)
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        await reader.readline()
        print(json.dumps({"received": received, "lat": [round(x, 2) for x in lat]}), flush=True)
        os._exit(0)


# ---- the runner ---------------------------------------------------------------------------------

def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def _spawn(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "loadtest.fanout_bench", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, bufsize=1)


def _wait_line(p: subprocess.Popen, want: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    assert p.stdout is not None  # started with stdout=PIPE
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            raise RuntimeError(f"process exited before {want!r}")
        if line.startswith(want) or (want == "{" and line.startswith("{")):
            return line
    raise TimeoutError(want)


def run(clients: int, seconds: float, rate: float, procs: int, size: int) -> dict[str, Any]:
    import urllib.request

    try:
        redis_bin = find_binary()  # the first Redis >= 7 on PATH (or the embedded Valkey)
    except RuntimeError as exc:
        raise SystemExit(f"{exc} (the engine publishes its ticks to Redis)") from None
    rport, port = free_port(), free_port()
    redis = subprocess.Popen([redis_bin, "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL)
    server = _spawn(["--serve", str(port), "--redis", f"redis://127.0.0.1:{rport}/0"])
    results: dict[str, Any] = {}
    try:
        _wait_line(server, "SERVING", 60)
        url = f"http://127.0.0.1:{port}"
        for mode in MODES:
            share = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
            cps = [_spawn(["--client", url, "--mode", mode, "--count", str(n)]) for n in share if n]
            for cp in cps:
                _wait_line(cp, "READY", 180)
            req = urllib.request.Request(f"{url}/phase?mode={mode}&seconds={seconds}&rate={rate}&size={size}",
                                         method="POST")
            with urllib.request.urlopen(req, timeout=seconds + 120) as resp:
                ph = json.loads(resp.read())
            received, lat = 0, []
            for cp in cps:
                assert cp.stdin is not None  # started with stdin=PIPE
                cp.stdin.write("STOP\n")
                cp.stdin.flush()
                r = json.loads(_wait_line(cp, "{", 60))
                received += r["received"]
                lat += r["lat"]
                cp.wait(timeout=30)
            us = ph["net_cpu_s"] / received * 1e6 if received else float("nan")
            results[mode] = {"recipients": ph["recipients"], "messages": ph["messages"], "deliveries": received,
                             "expected": ph["messages"] * ph["recipients"], "cpu_s": round(ph["cpu_s"], 3),
                             "net_cpu_s": round(ph["net_cpu_s"], 3),
                             "idle_cpu_per_s": round(ph["idle_cpu_per_s"], 4),
                             "deliveries_per_s": round(received / ph["wall_s"]), "us_per_delivery": round(us, 2),
                             "p50_ms": round(_pct(lat, 0.5), 2), "p99_ms": round(_pct(lat, 0.99), 2)}
    finally:
        server.kill()
        redis.kill()
    hub, stock, raw = results["hub"], results["stock"], results["raw"]
    return {"clients": clients, "seconds": seconds, "rate": rate, "modes": results,
            "hub_us": hub["us_per_delivery"], "stock_us": stock["us_per_delivery"], "raw_us": raw["us_per_delivery"],
            "speedup_vs_stock": round(stock["us_per_delivery"] / hub["us_per_delivery"], 2),
            "overhead_vs_raw": round(hub["us_per_delivery"] / raw["us_per_delivery"], 2),
            "p99_ms": hub["p99_ms"], "p50_ms": hub["p50_ms"]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m loadtest.fanout_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=4.0, help="sending time per mode")
    p.add_argument("--rate", type=float, default=20.0, help="messages per second to every client")
    p.add_argument("--procs", type=int, default=3, help="client processes")
    p.add_argument("--size", type=int, default=120, help="chat text bytes per message")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    p.add_argument("--redis", help=argparse.SUPPRESS)
    p.add_argument("--client", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.serve:
        asyncio.run(_serve(a.serve, a.redis))
        return
    if a.client:
        asyncio.run(_clients(a.client, a.mode, a.count))
        return
    out = run(a.clients, a.seconds, a.rate, max(1, a.procs), a.size)
    print(f"fan-out benchmark: {a.clients} clients, {a.rate:g} msg/s for {a.seconds:g} s per mode, {a.procs} client processes")
    print(f"{'mode':6} {'deliveries':>11} {'expected':>9} {'deliv/s':>9} {'net cpu s':>9} {'µs/deliv':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for mode, r in out["modes"].items():
        print(f"{mode:6} {r['deliveries']:>11} {r['expected']:>9} {r['deliveries_per_s']:>9} {r['net_cpu_s']:>9} "
              f"{r['us_per_delivery']:>9} {r['p50_ms']:>8} {r['p99_ms']:>8}")
    print(f"hub vs stock: {out['speedup_vs_stock']}x less CPU per delivery; hub / raw: {out['overhead_vs_raw']}x")
    if a.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
