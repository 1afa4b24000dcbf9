"""Clock sync: `time` answers the server (Redis) clock, which the client offsets against."""
from __future__ import annotations

import time

import aiohttp


async def test_time_ack_is_the_redis_clock(server, bc, clients, token, redis):
    c = await clients(server.url, token("viewer", "b1", "u1"))
    await c.snapshot()
    best = None
    for _ in range(5):  # the documented client algorithm: keep the fastest round trip
        t0 = time.time() * 1000
        ack = await c.call("time")
        t1 = time.time() * 1000
        assert ack["ok"] and isinstance(ack["now"], int)
        if best is None or t1 - t0 < best[0]:
            best = (t1 - t0, ack["now"] - (t0 + t1) / 2)
    sec, usec = await redis.time()
    redis_offset = sec * 1000 + usec / 1000 - time.time() * 1000
    # both estimate the same offset (Redis vs this process's wall clock); generous bound for a loaded box
    assert abs(best[1] - redis_offset) < 250


async def test_metrics_count_commands_by_event_and_code(server, bc, clients, token):
    c = await clients(server.url, token("viewer", "b1", "u1"))
    await c.snapshot()
    await c.call("time")
    await c.call("broadcast.start")
    await c.call("made.up")
    async with aiohttp.ClientSession() as s:
        text = await (await s.get(server.url + "/metrics")).text()
    assert 'hawker_hub_commands_total{code="OK",event="time"}' in text
    assert 'hawker_hub_commands_total{code="FORBIDDEN",event="broadcast.start"}' in text
    assert 'hawker_hub_commands_total{code="UNKNOWN_EVENT",event="_unknown"}' in text
    assert 'hawker_fanout_sockets{broadcast="b1"}' in text  # sockets per broadcast: the engine's
