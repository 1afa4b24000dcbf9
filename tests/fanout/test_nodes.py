"""Several nodes meeting in Redis; viewer counts; chat overload sampling."""
from __future__ import annotations

import asyncio

import pytest

from tests.conftest import CLUSTER
from tests.fanout.conftest import fanout_of, wait_for


async def test_a_message_from_node_a_reaches_clients_on_node_b(make_server, bc, clients, token) -> None:
    a, b = await make_server(), await make_server()
    on_b = [await clients(b.url, token("viewer", bc, "u1")), await clients(b.url, token("viewer", bc, "u2"), "default")]
    await wait_for(lambda: fanout_of(b).members(bc) == 2, what="members on b")
    assert fanout_of(a).members(bc) == 0  # a has no member: it is not subscribed, yet its input travels
    fa = fanout_of(a)
    fa.chat(bc, {"id": "from-a", "text": "hi", "role": "viewer"})
    fa.hearts(bc, 7)
    fa.level(bc, "stock:s1", {"available": 1})
    fa.urgent(bc, "sale.open", {"sale_id": "s1"})
    for c in on_b:
        await wait_for(lambda c=c: c.chat() and c.of("sale.open"), what="chat and urgent on b")
        assert c.chat() == [{"id": "from-a", "text": "hi", "role": "viewer"}]
        assert c.hearts() == 7
        assert c.of("sale.open") == [{"sale_id": "s1"}]
        assert any((t.get("levels") or {}).get("stock:s1") == {"available": 1} for t in c.ticks())



def _bus_publishes(ports: list[int]) -> int:
    """Classic PUBLISH messages the cluster's nodes sent each other over the cluster bus."""
    import redis as sync_redis

    total = 0
    for port in ports:
        with sync_redis.Redis(port=port, decode_responses=True) as r:
            info = r.execute_command("CLUSTER INFO")
        if isinstance(info, str):
            info = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        total += int(info.get("cluster_stats_messages_publish_sent", 0))
    return total


@pytest.mark.skipif(not CLUSTER, reason="the cluster bus exists on a Redis Cluster (HAWKER_TEST_REDIS=cluster)")
async def test_on_a_cluster_the_fanout_stays_on_the_broadcasts_shard(make_server, bc, clients, token, redis_proc) -> None:
    """A classic PUBLISH is copied to every master over the cluster bus; the fan-out's sharded
    messages are not: the bus carries no publish at all while two nodes exchange chat, hearts and
    urgent events (the old classic channel sent one bus message per master per publish)."""
    ports = [n.port for n in redis_proc.nodes]
    a, b = await make_server(), await make_server()
    on_a = await clients(a.url, token("viewer", bc, "u1"))
    on_b = await clients(b.url, token("viewer", bc, "u2"))
    await wait_for(lambda: fanout_of(a).members(bc) == 1 and fanout_of(b).members(bc) == 1, what="members")
    before = _bus_publishes(ports)
    for i in range(5):
        fanout_of(a).chat(bc, {"id": f"a{i}", "text": "x", "role": "viewer"})
        fanout_of(b).hearts(bc, 1)
    fanout_of(b).urgent(bc, "sale.open", {"sale_id": "s1"})
    await wait_for(lambda: len(on_b.chat()) == 5 and on_a.of("sale.open"), what="a's chat on b, b's urgent on a")
    await wait_for(lambda: on_a.hearts() == 5, what="b's hearts on a")
    assert _bus_publishes(ports) == before


async def test_each_node_publishes_one_batch_per_tick_and_subscribes_only_with_members(make_server, bc, clients, token, redis) -> None:
    a = await make_server(tick_ms=60_000)
    b = await make_server(tick_ms=60_000)
    fa, fb = fanout_of(a), fanout_of(b)
    c = await clients(b.url, token("viewer", bc, "u1"))
    await wait_for(lambda: fb.members(bc) == 1, what="member on b")
    ch = f"hub:fan:bc:{{{bc}}}"  # a sharded channel in the broadcast's slot
    opts = {"target_nodes": redis.get_node_from_key(ch)} if CLUSTER else {}
    numsub = dict(await redis.execute_command("PUBSUB SHARDNUMSUB", ch, **opts))
    assert numsub[ch.encode()] == 1  # b only
    for i in range(50):
        fa.chat(bc, {"id": f"m{i}", "text": "x", "role": "viewer"})
        fa.hearts(bc)
    before = fa.published_ticks
    fa.tick()
    assert fa.published_ticks == before + 1  # 50 messages, one batch
    fb.tick()  # b had nothing of its own: publishes nothing
    await wait_for(lambda: fb.inbound_pending(bc), what="a's batch at b")
    fb.tick()
    await wait_for(lambda: len(c.chat()) == 50, what="the batch at the client")
    assert len([t for t in c.ticks() if t.get("chat")]) == 1
    assert c.hearts() == 50


async def test_viewer_count_is_summed_across_nodes_and_a_stopped_node_drops_out(make_server, bc, clients, token) -> None:
    a, b = await make_server(), await make_server()
    await clients(a.url, token("viewer", bc, "u1"))
    await clients(a.url, token("viewer", bc, "u2"))
    cb = await clients(b.url, token("viewer", bc, "u3"))
    fa, fb = fanout_of(a), fanout_of(b)
    await wait_for(lambda: fa.viewer_count(bc) == 3 and fb.viewer_count(bc) == 3, what="3 viewers on both nodes")
    await wait_for(lambda: (cb.ticks() or [{}])[-1].get("viewers") == 3, what="viewers in the tick")
    await a.stop()
    await wait_for(lambda: fb.viewer_count(bc) == 1, what="a's viewers gone")


async def test_a_dead_nodes_count_expires(make_server, bc, clients, token, redis) -> None:
    b = await make_server()
    await clients(b.url, token("viewer", bc, "u3"))
    fb = fanout_of(b)
    await wait_for(lambda: fb.viewer_count(bc) == 1, what="1 viewer")
    now = int((await redis.time())[0]) * 1000
    await redis.hset(f"hub:fan:viewers:{bc}", "dead-node", f"40:{now - 60_000}")  # last heartbeat a minute ago
    await redis.hset(f"hub:fan:viewers:{bc}", "live-node", f"5:{now + 60_000}")
    await wait_for(lambda: fb.viewer_count(bc) == 6, what="the live node counted, the dead one not")
    for _ in range(200):  # and the dead node's field is removed
        if not await redis.hexists(f"hub:fan:viewers:{bc}", "dead-node"):
            break
        await asyncio.sleep(0.05)
    assert not await redis.hexists(f"hub:fan:viewers:{bc}", "dead-node")


async def test_chat_sampling_keeps_staff_complete(make_server, bc, clients, token) -> None:
    srv = await make_server(tick_ms=100, chat_overload_rate=20.0, chat_overload_k=3)
    host = await clients(srv.url, token("host", bc, "h1"))
    mod = await clients(srv.url, token("moderator", bc, "m1"), "default")
    viewer = await clients(srv.url, token("viewer", bc, "v1"))
    viewer_js = await clients(srv.url, token("viewer", bc, "v2"), "default")
    fan = fanout_of(srv)
    await wait_for(lambda: fan.members(bc) == 4, what="joined")
    sent = 0
    for _ in range(30):  # 30 ticks of 20 lines: 200 lines/s, far above 20/s
        for _ in range(20):
            fan.chat(bc, {"id": f"m{sent}", "text": "x", "role": "viewer"})
            sent += 1
        fan.chat(bc, {"id": f"host{sent}", "text": "announcement", "role": "host"})
        await asyncio.sleep(0.1)
    staff_ids = [f"m{i}" for i in range(sent)]
    for s in (host, mod):
        await wait_for(lambda s=s: len([m for m in s.chat() if m["id"].startswith("m")]) == sent, what="every line at staff")
        assert [m["id"] for m in s.chat() if m["id"].startswith("m")] == staff_ids
    for v in (viewer, viewer_js):
        await wait_for(lambda v=v: len([m for m in v.chat() if m["role"] == "host"]) == 30, what="host lines at viewers")
        chat_ticks = [t for t in v.ticks() if t.get("chat")]
        # the inbound-rate meter needs a moment to climb past the threshold; after that, K per tick
        assert all(len(t["chat"]) <= 3 for t in chat_ticks[-10:])
        assert len(v.chat()) < sent


async def test_a_versioned_level_never_goes_back_whichever_node_sends_it_last(make_server, bc, clients, token) -> None:
    """Reaction totals are read by two nodes at once; the older total may reach a node after the
    newer one. A level with `v` keeps the highest, as the protocol tells clients to."""
    a, b = await make_server(tick_ms=100), await make_server(tick_ms=100)
    viewer = await clients(b.url, token("viewer", bc, "u1"))
    await wait_for(lambda: fanout_of(b).members(bc) == 1, what="member on b")
    fb, fa = fanout_of(b), fanout_of(a)

    def seen() -> list[dict]:
        return [t["levels"]["reactions"] for t in viewer.ticks() if "reactions" in (t.get("levels") or {})]

    fb.level(bc, "reactions", {"heart": 3, "v": 2})  # b's newer total goes out first
    await wait_for(lambda: seen(), what="the newer total on b")
    fa.level(bc, "reactions", {"heart": 2, "v": 1})  # a's older total arrives afterwards
    fb.level(bc, "reactions", {"heart": 2, "v": 1})  # ...and the same one again on b itself
    fa.chat(bc, {"id": "after", "text": "after", "role": "viewer"})  # a marker in a's later tick
    await wait_for(lambda: viewer.chat(), what="a's later tick on b")
    await asyncio.sleep(0.3)  # a few more ticks
    assert seen() == [{"heart": 3, "v": 2}]
    fa.level(bc, "reactions", {"heart": 4, "v": 3})
    await wait_for(lambda: len(seen()) == 2, what="a newer total from a")
    assert seen()[-1] == {"heart": 4, "v": 3}
