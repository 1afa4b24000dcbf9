"""Slow sockets: bounded buffers, ticks dropped first, closed with a reason; others unaffected;
control traffic (pings) never waits behind data."""
from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from live.fanout.conn import SLOW_CLOSE_CODE
from loadtest.fanout_raw import raw_connect
from tests.fanout.conftest import fanout_of, wait_for


async def _flood(fan, bc: str, stop: asyncio.Event, *, lines: int, size: int) -> int:
    """Chat lines for every tick until stopped; returns how many were sent."""
    sent = 0
    while not stop.is_set():
        for _ in range(lines):
            fan.chat(bc, {"id": f"m{sent}", "text": "x" * size, "role": "viewer"})
            sent += 1
        await asyncio.sleep(0.05)
    return sent


async def test_a_slow_consumer_is_closed_with_a_reason_and_does_not_stall_others(make_server, bc, clients, token) -> None:
    srv = await make_server(fanout_queue_kb=128, fanout_stall_s=2.0, fanout_close_grace_s=120.0,
                            chat_overload_rate=1e9)  # no chat sampling here: the fast client must get all
    fan = fanout_of(srv)
    fast = await clients(srv.url, token("viewer", bc, "fast"))
    async with aiohttp.ClientSession() as session:
        slow = await raw_connect(session, srv.url, {"token": token("viewer", bc, "slow")}, codec="json")
        conn = srv.app["sio"].conns[slow.eio_sid]
        await wait_for(lambda: fan.members(bc) == 2, what="both joined")
        stop = asyncio.Event()
        flood = asyncio.ensure_future(_flood(fan, bc, stop, lines=20, size=1500))
        try:  # the slow client reads nothing; the server must give up on it
            await wait_for(lambda: conn.close_reason is not None, timeout=120, what="the slow socket closed")
            assert conn.close_reason.startswith("slow consumer")
            await wait_for(lambda: fan.members(bc) == 1, what="the slow socket left the broadcast")
            seen = len(fast.chat())
            await wait_for(lambda: len(fast.chat()) > seen + 100, what="the fast client still receiving")
        finally:
            stop.set()
            sent = await flood
        # the fast client got everything, in order, nothing dropped
        await wait_for(lambda: len(fast.chat()) == sent, timeout=60, what="every chat line at the fast client")
        assert [m["id"] for m in fast.chat()] == [f"m{i}" for i in range(sent)]
        assert fast.sio.connected
        # the slow client, reading at last, finds the close frame with the reason after its backlog
        while True:
            msg = await slow.ws.receive(timeout=60)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
        assert slow.ws.close_code == SLOW_CLOSE_CODE
        assert msg.extra and "slow consumer" in msg.extra
    assert conn.dropped > 0  # ticks were dropped before it was closed


@pytest.mark.slow
async def test_clients_stay_connected_through_60s_of_saturated_broadcast(make_server, bc, clients, token) -> None:
    """Stock python-socketio dropped every client after ~30 s of this (pings queued behind data).
    Ping interval 20 s / timeout 20 s: 60 s spans several ping rounds under load."""
    srv = await make_server()
    fan = fanout_of(srv)
    cs = [await clients(srv.url, token("viewer", bc, f"u{i}"), "msgpack" if i % 2 else "default") for i in range(6)]
    await wait_for(lambda: fan.members(bc) == 6, what="all joined")
    stop = asyncio.Event()
    flood = asyncio.ensure_future(_flood(fan, bc, stop, lines=40, size=400))
    urgent_sent = 0
    end = time.monotonic() + 60
    try:
        while time.monotonic() < end:
            fan.urgent(bc, "flood", {"i": urgent_sent, "pad": "y" * 2000})
            urgent_sent += 1
            await asyncio.sleep(0.005)
            assert all(c.sio.connected for c in cs), "a client was dropped during the flood"
    finally:
        stop.set()
        await flood
    assert all(c.sio.connected for c in cs)
    assert not any(c.disconnected.is_set() for c in cs)
    # and they still answer: an ack round trip on each
    for c in cs:
        assert (await c.sio.call("time", {}, timeout=30))["ok"]
