"""`hawker serve --workers 2`: two processes on one port meet in Redis; a sale opens once for all."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import aiohttp
import pytest

from tests.conftest import CLUSTER, TEST_SECRET
from tests.hub.conftest import wait_for
from tests.redis_proc import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
async def two_workers(redis_url, bc):
    port = free_port()
    env = {**os.environ, "HAWKER_SECRET": TEST_SECRET, "HAWKER_REDIS_URL": redis_url, "HAWKER_PORT": str(port),
           "HAWKER_WORKERS": "2", "HAWKER_TICK_MS": "100", "HAWKER_LOG_LEVEL": "warning",
           "HAWKER_PAYMENT_PROVIDER": "sandbox", "HAWKER_REDIS_MODE": "cluster" if CLUSTER else "standalone"}
    proc = subprocess.Popen([sys.executable, "-m", "live", "serve"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as s:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await s.get(url + "/readyz")).status == 200:
                        break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, "server did not start"
                assert proc.poll() is None, "server exited"
                await asyncio.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_two_workers_share_broadcast_state(two_workers, clients, token, redis):
    viewers = []
    nodes: set[str] = set()
    for i in range(24):  # the kernel spreads connections over the workers; stop once both have some
        c = await clients(two_workers, token("viewer", "b1", f"u{i}"))
        nodes.add((await c.snapshot())["node"])
        viewers.append(c)
        if len(nodes) == 2 and len(viewers) >= 4:
            break
    assert len(nodes) == 2, "all connections landed on one worker"
    host = await clients(two_workers, token("host", "b1", "h1"))
    await host.snapshot()
    sec, usec = await redis.time()
    opens_at = sec * 1000 + usec // 1000 + 2000
    sale = await host.call("sale.schedule", {"product_id": "p1", "units": 2, "opens_at": opens_at})
    assert sale["ok"], sale
    for c in viewers:
        await wait_for(lambda c=c: c.of("sale.open"), timeout=30, what="sale.open on every worker")
    await asyncio.sleep(1.0)
    assert all(len(c.of("sale.open")) == 1 for c in viewers)
    # a vote on one worker is seen (as tallies) by sockets on the other
    poll = (await host.call("poll.create", {"question": "Q", "options": ["a", "b"]}))["poll"]
    acks = await asyncio.gather(*(c.call("poll.vote", {"poll_id": poll["id"], "option": 1}) for c in viewers))
    assert all(a["ok"] and a["counted"] for a in acks)
    n = len(viewers)
    for c in viewers:
        await wait_for(lambda c=c: (c.levels(f"poll:{poll['id']}") or {}).get("tallies") == [0, n], what="tallies")
