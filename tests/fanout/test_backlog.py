"""Replies and broadcast data are bounded by what the peer really takes: a socket that sends but
never reads is closed once its replies pass the bound (code 4001), and a non-reading socket is
closed within the documented stall although the kernel's buffers would absorb megabytes first."""
from __future__ import annotations

import asyncio
import time

import aiohttp

from live.fanout.conn import SLOW_CLOSE_CODE
from tests.fanout.conftest import fanout_of, wait_for
from tests.rawsock import Raw


def _held(conn) -> int:
    """Bytes this process holds for the socket: its transport's buffer, queued data and control packets."""
    tr = conn.transport
    ctrl = getattr(conn.sock.queue, "bytes", 0)
    return (tr.get_write_buffer_size() if tr is not None else 0) + conn.queued + ctrl


async def test_replies_to_a_socket_that_never_reads_are_bounded_and_it_is_closed(make_server, bc, token) -> None:
    srv = await make_server(fanout_queue_kb=64, fanout_stall_s=60.0, fanout_close_grace_s=120.0)
    bound = 64 * 1024 + srv.app["sio"].bounds.high_water
    async with aiohttp.ClientSession() as session:
        raw = await Raw.connect(session, srv.url, token("viewer", bc, "mute"), codec="json")  # reads nothing
        conn = srv.app["sio"].conns[raw.sock.eio_sid]
        peak = 0
        done = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _held(conn))
                await asyncio.sleep(0.002)

        sampler = asyncio.ensure_future(sample())
        sent = 0
        try:
            while conn.close_reason is None and sent < 200_000:
                try:
                    await raw.text(f'42{sent}["time",{{}}]')  # mostly refused FLOOD: each still has a reply
                except (ConnectionError, RuntimeError):
                    break
                sent += 1
                if sent % 200 == 0:
                    await asyncio.sleep(0)
            await wait_for(lambda: conn.close_reason is not None, timeout=30, what="the socket closed")
        finally:
            done.set()
            await sampler
        assert conn.close_reason == "slow consumer: reply backlog"
        assert peak <= bound + 16 * 1024, f"held {peak} bytes for a socket that never read (bound {bound})"
        raw.start()  # reading at last: the backlog, then the close frame with the reason
        code, reason = await raw.wait_closed(timeout=60)
        assert code == SLOW_CLOSE_CODE and "reply backlog" in reason


async def _chat_flood(fan, bc: str, stop: asyncio.Event) -> None:
    """A heavy chat: 20 lines of 1.5 KB every 50 ms (about 600 KB/s to every viewer)."""
    n = 0
    while not stop.is_set():
        for _ in range(20):
            fan.chat(bc, {"id": f"m{n}", "text": "x" * 1500, "role": "viewer"})
            n += 1
        await asyncio.sleep(0.05)


async def test_non_reading_sockets_are_closed_within_the_stall_although_the_kernel_would_buffer(
        make_server, bc, clients, token) -> None:
    stall = 2.0
    srv = await make_server(fanout_queue_kb=16 * 1024, fanout_stall_s=stall, fanout_close_grace_s=120.0,
                            chat_overload_rate=1e9)  # byte bounds far away: only the stall rule can close them
    fan = fanout_of(srv)
    reader = await clients(srv.url, token("viewer", bc, "reader"))
    async with aiohttp.ClientSession() as session:
        mutes = [await Raw.connect(session, srv.url, token("viewer", bc, f"mute{i}"), codec=codec)
                 for i, codec in enumerate(("json", "msgpack"))]
        conns = [srv.app["sio"].conns[m.sock.eio_sid] for m in mutes]
        await wait_for(lambda: fan.members(bc) == 3, what="all joined")
        stop = asyncio.Event()
        start = time.monotonic()
        flood = asyncio.ensure_future(_chat_flood(fan, bc, stop))
        closed_after: dict[int, float] = {}
        try:
            while len(closed_after) < len(conns) and time.monotonic() - start < 60:
                for i, conn in enumerate(conns):
                    if i not in closed_after and conn.close_reason is not None:
                        closed_after[i] = time.monotonic() - start
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            await flood
        assert len(closed_after) == len(conns), f"only {sorted(closed_after)} closed within 60 s"
        assert all(c.close_reason == f"slow consumer: no progress for {stall:g} s" for c in conns)
        # the peer stopped reading from the start: the stall clock must start within about one small
        # kernel buffer, not after the 2-4 MiB an auto-tuned one absorbs (which took 36-44 s at 10 s stall)
        assert max(closed_after.values()) < stall + 3.0, closed_after
        assert reader.sio.connected  # a reading socket is not touched
        for m in mutes:
            m.start()
            code, reason = await m.wait_closed(timeout=60)
            assert code == SLOW_CLOSE_CODE and "no progress" in reason
