"""The join path under a burst: a join's reads go as one pipeline, parts that are the same for the
whole broadcast are fetched once for concurrent joins (single flight) and reused for at most
`snapshot_cache_ms`, and the host's change is in every join after that age (at once on its node)."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from live.hub.registry import Registry
from redislayer import batched
from redislayer.client import connect
from shop.broadcasts import BroadcastStore
from tests.conftest import CLUSTER

cluster_skip = pytest.mark.skipif(CLUSTER, reason="counts one standalone server's commands")


async def _calls(redis: Any, command: str) -> int:
    stats = await redis.info("commandstats")
    return int((stats.get(f"cmdstat_{command}") or {}).get("calls", 0))


@cluster_skip
async def test_concurrent_joins_make_one_fetch_of_the_broadcast(make_server, bc, clients, token, redis):
    """25 viewers join at once: the broadcast record (HGETALL + HVALS) is read from Redis once,
    not once per join, and every viewer gets it whole."""
    server = await make_server(snapshot_cache_ms=5000)
    before = await _calls(redis, "hvals")
    viewers = await asyncio.gather(*(clients(server.url, token("viewer", bc, f"v{i}")) for i in range(25)))
    snaps = await asyncio.gather(*(v.snapshot() for v in viewers))
    assert all(s["broadcast"]["title"] == "Summer drop" and "partial" not in s for s in snaps)
    assert [p["id"] for p in snaps[0]["broadcast"]["products"]] == ["p1", "p2"]
    assert await _calls(redis, "hvals") - before == 1
    # the personal parts stay personal
    assert {s["you"]["user"] for s in snaps} == {f"v{i}" for i in range(25)}


async def test_a_change_is_in_every_join_after_the_cache_age(make_server, bc, clients, token, redis):
    """A change made elsewhere (another node's host, a REST call) may be missed by a join for at most
    `snapshot_cache_ms`; a change the host makes through this node is in the very next join."""
    server = await make_server(snapshot_cache_ms=600)
    first = await (await clients(server.url, token("viewer", bc, "a"))).snapshot()
    assert first["broadcast"]["pinned"] is None
    await BroadcastStore(redis).pin(bc, "p1")  # as another node would
    await asyncio.sleep(0.65)
    later = await (await clients(server.url, token("viewer", bc, "c"))).snapshot()
    assert later["broadcast"]["pinned"] == "p1"

    server2 = await make_server(snapshot_cache_ms=60_000)  # a cache that would hide anything for a minute
    host = await clients(server2.url, token("host", bc, "h1"))
    await host.snapshot()
    seen = await (await clients(server2.url, token("viewer", bc, "d"))).snapshot()
    assert seen["broadcast"]["pinned"] == "p1"
    assert (await host.call("product.pin", {"product_id": "p2"}))["ok"]
    after = await (await clients(server2.url, token("viewer", bc, "e"))).snapshot()
    assert after["broadcast"]["pinned"] == "p2"  # the host's command dropped this node's cached record


async def test_single_flight_one_fetch_for_concurrent_callers_and_failures_are_not_kept():
    reg = Registry(snapshot_cache_s=0)  # no reuse after a fetch: only callers that overlap share it
    calls = 0
    gate = asyncio.Event()

    async def fetch() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await gate.wait()
        return {"n": calls}

    waiters = [asyncio.ensure_future(reg.shared(("part", "b1", "x"), fetch)) for _ in range(20)]
    await asyncio.sleep(0.01)
    gate.set()
    got = await asyncio.gather(*waiters)
    assert calls == 1 and all(g is got[0] for g in got)
    assert (await reg.shared(("part", "b1", "x"), fetch)) == {"n": 2}  # cache age 0: fetched again

    async def boom() -> None:
        await asyncio.sleep(0.01)
        raise ConnectionError("redis gone")

    reg.snapshot_cache_s = 10.0
    results = await asyncio.gather(*(reg.shared(("part", "b1", "y"), boom) for _ in range(5)),
                                   return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await reg.shared(("part", "b1", "y"), fetch) == {"n": 3}  # the failure was not cached
    assert await reg.shared(("part", "b1", "y"), fetch) == {"n": 3}  # the value is (10 s)
    reg.invalidate("b1")
    assert await reg.shared(("part", "b1", "y"), fetch) == {"n": 4}


@cluster_skip
async def test_batched_reads_are_one_round_trip_and_errors_stay_per_command(redis_url, redis):
    """Inside batched(), 50 concurrent reads (plain commands and a store's own pipeline) are one
    pipeline; a command Redis refuses fails only its caller."""
    await redis.set("jp:s", "v")
    await redis.rpush("jp:l", "x")
    client = connect(redis_url)
    try:
        with batched():
            async def store_pipe() -> list[Any]:
                async with client.pipeline(transaction=False) as p:
                    p.get("jp:s")
                    p.llen("jp:l")
                    return await p.execute()

            results = await asyncio.gather(*(client.get("jp:s") for _ in range(48)), store_pipe(),
                                           client.get("jp:l"), return_exceptions=True)
        assert results[:48] == [b"v"] * 48
        assert results[48] == [b"v", 1]
        assert isinstance(results[49], Exception) and "WRONGTYPE" in str(results[49])
        assert client._batcher is not None and client._batcher.batches == 1 and client._batcher.commands == 51
        assert await client.get("jp:s") == b"v"  # outside batched(): the usual way, not the batcher
        assert client._batcher.batches == 1
    finally:
        await client.aclose()


async def test_a_join_past_the_bound_waits_for_a_slot_or_is_refused_busy(make_server, bc, clients, token):
    """HAWKER_JOIN_MAX_INFLIGHT: while that many joins wait for their snapshot, a new connect waits
    for a slot (in order); one that waited in vain is refused BUSY with retry_after (nothing of it
    is kept), and one whose slot comes in time gets in without a retry."""
    import socketio

    from tests.hub.conftest import Client

    server = await make_server(join_max_inflight=1)
    hub = server.app["node"].hub
    hub.join_queue_s = 0.3
    gate = asyncio.Event()

    @hub.snapshot_part("slow")
    async def slow(caller: Any) -> int:
        await gate.wait()
        return 1

    try:
        first = await clients(server.url, token("viewer", bc, "a"))  # its snapshot waits on the gate
        second = Client()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await second.connect(server.url, token("viewer", bc, "b"))
        refusal = second.refused["data"]  # socket.io-client's err.data
        assert refusal["code"] == "BUSY" and refusal["retry_after"] == 500, second.refused
        assert hub.joining == 1 and len(hub.callers(bc)) == 1

        hub.join_queue_s = 10.0
        third = asyncio.ensure_future(clients(server.url, token("viewer", bc, "c")))
        await asyncio.sleep(0.3)
        assert not third.done() and hub.joining == 2  # waiting for the slot, not refused
        gate.set()
        assert (await first.snapshot())["slow"] == 1
        assert (await (await third).snapshot())["slow"] == 1
        assert hub.joining == 0
    finally:
        del hub.registry.parts["slow"]
