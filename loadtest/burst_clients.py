"""One client process of `hawker loadtest burst` (loadtest/burst.py): its share of the buyers, each a
light client that waits for the sale to open, presses Buy at the instant and retries BUSY/UNAVAILABLE
with the same request id; the results go back to the parent over a pipe."""
from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from loadtest.lightclient import LightClient, mint

RETRYABLE = ("BUSY", "UNAVAILABLE")


@dataclass
class BuyerResult:
    first: str = "NONE"  # the first answer's code
    final: str = "NONE"  # the answer after retries
    ms_from_open: float = 0.0  # final answer, server clock, minus opens_at
    retries: int = 0
    partial_snapshot: bool = False
    connected: bool = False
    early: int = 0  # NOT_OPEN answers (sent before opens_at by the synced clock's error), retried
    generator_cpu_pct: float = 0.0  # this client process's CPU during the burst


async def _buyers(url: str, secret: str, broadcast: str, first_index: int, count: int, conn_limit: int,
                  ctl: Any) -> list[BuyerResult]:
    results = [BuyerResult() for _ in range(count)]
    clients: list[LightClient | None] = [None] * count
    sem = asyncio.Semaphore(conn_limit)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    # limit=0: aiohttp's default connector caps a session at 100 connections (websockets too)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:

        async def join(i: int) -> None:
            n = first_index + i
            codec = "msgpack" if n % 2 == 0 else "json"
            async with sem:
                for attempt in range(5):
                    try:
                        tok = mint(secret, sub=f"buyer{n}", role="viewer", broadcast=broadcast)
                        c = await LightClient.connect(session, url, tok, codec)
                        snap = await asyncio.wait_for(c.snapshot, 30)
                        results[i].partial_snapshot = bool(snap.get("partial"))
                        clients[i] = c
                        results[i].connected = True
                        return
                    except Exception:  # noqa: BLE001 - refused while the server is busy: try again
                        await asyncio.sleep(0.2 * (attempt + 1) + random.random() * 0.3)

        await asyncio.gather(*(join(i) for i in range(count)))
        # clocks are synced once everyone has joined: samples taken in the join storm carry its
        # queueing delay (the best of 5 round trips, as the player does)
        sync_sem = asyncio.Semaphore(50)

        async def sync(c: LightClient) -> None:
            async with sync_sem:
                await c.sync_clock(5)

        await asyncio.gather(*(sync(c) for c in clients if c is not None))
        ctl.send(("ready", sum(r.connected for r in results)))
        sale_id, opens_at = ctl.recv()
        ref = next((c for c in clients if c is not None), None)
        if ref is not None:  # CPU is measured from the opening instant on
            await asyncio.sleep(max(0.0, (opens_at - ref.server_now_ms()) / 1000))
        cpu0 = time.process_time()
        wall0 = time.monotonic()

        async def buy(i: int) -> None:
            c = clients[i]
            if c is None:
                return
            r = results[i]
            delay = (opens_at - c.server_now_ms()) / 1000
            if delay > 0:
                await asyncio.sleep(delay)
            request_id = uuid.uuid4().hex
            for attempt in range(20):
                try:
                    ack = await c.call("sale.reserve", {"sale_id": sale_id, "qty": 1, "request_id": request_id}, 60)
                    code = "OK" if ack.get("ok") else ack["error"]["code"]
                except Exception:  # noqa: BLE001 - a buyer that got no answer is counted, not fatal
                    code, ack = "NO_ANSWER", {}
                if attempt == 0:
                    r.first = code
                r.final = code
                r.ms_from_open = c.server_now_ms() - opens_at
                if code == "NOT_OPEN" and attempt < 5:  # our clock ran a little ahead of the server's
                    r.early += 1
                    await asyncio.sleep(0.02)
                    continue
                if code not in RETRYABLE:
                    return
                r.retries += 1
                wait = (ack.get("error", {}).get("retry_after") or 250) * (2 ** min(attempt, 4))
                await asyncio.sleep((wait + random.random() * wait) / 1000)

        await asyncio.gather(*(buy(i) for i in range(count)))
        cpu_pct = 100.0 * (time.process_time() - cpu0) / max(1e-6, time.monotonic() - wall0)
        await asyncio.gather(*(c.close() for c in clients if c is not None))
    for r in results:
        r.generator_cpu_pct = cpu_pct
    return results


def client_process(url: str, secret: str, broadcast: str, first: int, count: int, conn_limit: int, ctl: Any) -> None:
    try:
        results = asyncio.run(_buyers(url, secret, broadcast, first, count, conn_limit, ctl))
        ctl.send(("done", [r.__dict__ for r in results]))
    except BaseException as exc:  # noqa: BLE001 - tell the parent instead of hanging it
        ctl.send(("error", repr(exc)))
