"""Running the app: one process, or N processes sharing one port (SO_REUSEPORT), with graceful shutdown."""
from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable

from aiohttp import web

from live.accesslog import RedactingAccessLogger
from live.config import Config
from live.redis_gate import EXIT_REDIS_TOO_OLD

log = logging.getLogger("hawker.server")

GC_THRESHOLD_0 = 10_000  # allocations between young collections (CPython's default: 700)


def _bind(config: Config, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((config.host, config.port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve_async(config: Config, *, reuse_port: bool = False, ready: mp.synchronize.Event | None = None,
                      on_ready: Callable[[], None] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; then stop accepting, say goodbye to sockets, flush, return 0.
    A Redis older than 7.0, found when the node first reaches it, stops the node the same way and
    returns EXIT_REDIS_TOO_OLD (live/redis_gate.py)."""
    from live.app import create_app  # after PROMETHEUS_MULTIPROC_DIR is set

    app = create_app(config)
    code = 0
    gate = app["redis_gate"]
    try:  # one quick look before anything starts: an old Redis that is up stops us here, cleanly
        await asyncio.wait_for(gate.check(), timeout=min(3.0, config.redis_timeout_s))
    except Exception:  # noqa: BLE001 - Redis not reachable yet: start anyway, the gate keeps trying
        pass
    if gate.state == "refused":
        await app["redis"].aclose()
        return EXIT_REDIS_TOO_OLD
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=config.shutdown_grace_s,
                           access_log_class=RedactingAccessLogger)  # no token in the access log
    await runner.setup()
    site = web.SockSite(runner, _bind(config, reuse_port))
    await site.start()
    _tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def refuse(_exc: Exception) -> None:
        nonlocal code
        code = EXIT_REDIS_TOO_OLD
        stop.set()

    gate.on_refused = refuse
    if gate.state == "refused" and gate.error is not None:  # refused before we listened
        refuse(gate.error)
    log.info("hawker serving on %s (pid %d)", config.base_url, os.getpid())
    if ready is not None:
        ready.set()
    if on_ready is not None:
        on_ready()
    await stop.wait()
    log.info("shutting down (pid %d)", os.getpid())
    await site.stop()  # stop accepting: new connections go to the other workers / nodes
    await run_shutdown_hooks(app, config.shutdown_grace_s)
    await runner.cleanup()  # finish in-flight requests (up to shutdown_grace_s), on_shutdown, on_cleanup
    return code


def _tune_gc() -> None:
    """Move what startup built out of the collector's sight and collect young objects less often.

    A node holds thousands of sockets, each a web of objects (transport, protocol, websocket,
    queues, futures) that lives as long as the viewer watches; with CPython's default thresholds
    (700, 10, 10) every full collection walks all of them, so a join burst got slower the more
    viewers were already in. Young collections every 10,000 allocations keep each pause short
    (gen 1 holds at most 100,000 objects: 30-40 ms measured with 10,000 sockets, against 200 ms
    at 50,000), and full collections wait for 1,000 of those (plus CPython's own rule: a quarter
    more long-lived objects than at the last one), not 10."""
    import gc

    gc.collect()
    gc.freeze()  # modules, the app, its routes and scripts: never garbage
    gc.set_threshold(GC_THRESHOLD_0, 10, 1000)


async def run_shutdown_hooks(app: web.Application, timeout_s: float) -> None:
    """Await app["shutdown_hooks"] (no-argument coroutines) in order: tell sockets to reconnect,
    flush what parts buffer. Each is bounded by `timeout_s`; one failing does not stop the rest."""
    for hook in list(app.get("shutdown_hooks", [])):
        try:
            await asyncio.wait_for(hook(), timeout=max(0.1, timeout_s))
        except Exception:  # noqa: BLE001 - includes TimeoutError: shut down anyway
            log.exception("shutdown hook %r failed", hook)


def _worker(config: Config, ready: mp.synchronize.Event) -> None:
    configure_logging(config.log_level)
    sys.exit(asyncio.run(serve_async(config, reuse_port=True, ready=ready)))


def serve(config: Config, on_ready: Callable[[], None] | None = None) -> int:
    """Blocking entry point for `hawker serve`. Returns the process exit code. `on_ready` runs once
    the port accepts connections (single process) or every worker said it is ready."""
    configure_logging(config.log_level)
    if config.workers <= 1:
        return asyncio.run(serve_async(config, on_ready=on_ready))
    metrics_dir = tempfile.mkdtemp(prefix="hawker-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    ctx = mp.get_context("spawn")
    procs = []
    readies = []  # keep each Event alive: a collected one unlinks its semaphore before the child opens it
    for _ in range(config.workers):
        ready = ctx.Event()
        readies.append(ready)
        p = ctx.Process(target=_worker, args=(config, ready), daemon=False)
        p.start()
        procs.append(p)
    signal.signal(signal.SIGINT, lambda *_: None)  # the workers get it from the terminal too

    def forward(signum: int, _frame: object) -> None:
        for p in procs:
            if p.pid and p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    if on_ready is not None:
        for ready in readies:
            while not ready.wait(0.5) and all(p.is_alive() for p in procs):
                pass
        if all(p.is_alive() for p in procs):
            on_ready()
    code = 0
    for p in procs:
        p.join()
        code = code or (p.exitcode or 0)
    shutil.rmtree(metrics_dir, ignore_errors=True)
    return code


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
