"""Delivery: codecs, coalescing, urgent events, private messages, encode-once."""
from __future__ import annotations

from live.fanout import conn as conn_mod
from tests.fanout.conftest import fanout_of, wait_for


async def test_both_codecs_get_the_same_tick(make_server, bc, clients, token) -> None:
    srv = await make_server()
    mp = await clients(srv.url, token("viewer", bc, "u1"), "msgpack")
    js = await clients(srv.url, token("viewer", bc, "u2"), "default")
    await wait_for(lambda: mp.of("snapshot") and js.of("snapshot"), what="snapshots (acks in each codec)")
    fan = fanout_of(srv)
    fan.chat(bc, {"id": "m1", "text": "héllo", "role": "viewer"})
    fan.level(bc, "stock:s1", {"available": 3})
    await wait_for(lambda: mp.chat() and js.chat(), what="the tick on both codecs")
    a = next(t for t in mp.ticks() if t.get("chat"))
    b = next(t for t in js.ticks() if t.get("chat"))
    assert a == b
    assert a["chat"] == [{"id": "m1", "text": "héllo", "role": "viewer"}]
    assert a["levels"] == {"stock:s1": {"available": 3}}
    assert isinstance(a["ts"], int) and a["viewers"] == 2


async def test_coalescing_hearts_summed_levels_latest(make_server, bc, clients, token) -> None:
    srv = await make_server(tick_ms=200)
    c = await clients(srv.url, token("viewer", bc, "u1"))
    await wait_for(lambda: c.of("snapshot"), what="snapshot")
    fan = fanout_of(srv)
    fan.tick()  # start from a fresh tick window (the viewer count change goes out now)
    before = len(c.ticks())
    for _ in range(100):
        fan.hearts(bc)
    for v in range(10):
        fan.level(bc, "poll:p1", {"tallies": [v, 0]})
    fan.tick()
    await wait_for(lambda: len(c.ticks()) > before, what="the next tick")
    new = [t for t in c.ticks()[before:] if "hearts" in t or "levels" in t]
    assert len(new) == 1
    assert new[0]["hearts"] == 100
    assert new[0]["levels"] == {"poll:p1": {"tallies": [9, 0]}}


async def test_urgent_goes_at_once_in_order(make_server, bc, clients, token) -> None:
    srv = await make_server(tick_ms=60_000)  # no tick in this test: urgent events must not wait for one
    c = await clients(srv.url, token("viewer", bc, "u1"), "default")
    await wait_for(lambda: c.of("snapshot"), what="snapshot")
    fan = fanout_of(srv)
    for i in range(20):
        fan.urgent(bc, "sale.open", {"i": i})
    got = await wait_for(lambda: len(c.of("sale.open")) == 20 and c.of("sale.open"), what="20 urgent events")
    assert [d["i"] for d in got] == list(range(20))
    assert not c.ticks()


async def test_to_user_reaches_every_socket_of_that_user_only(make_server, bc, clients, token) -> None:
    a, b = await make_server(), await make_server()
    u1a = await clients(a.url, token("viewer", bc, "u1"))
    u1b = await clients(b.url, token("viewer", bc, "u1"), "default")
    u2 = await clients(a.url, token("viewer", bc, "u2"))
    await wait_for(lambda: all(x.of("snapshot") for x in (u1a, u1b, u2)), what="snapshots")
    fanout_of(a).to_user(bc, "u1", "hold.granted", {"qty": 1})
    await wait_for(lambda: u1a.of("hold.granted") and u1b.of("hold.granted"), what="private event on both nodes")
    fanout_of(a).urgent(bc, "marker", {})
    await wait_for(lambda: u2.of("marker"), what="a later urgent event")
    assert not u2.of("hold.granted")


async def test_encode_once_same_bytes_object_for_every_socket(make_server, bc, clients, token) -> None:
    srv = await make_server(tick_ms=60_000)
    cs = [await clients(srv.url, token("viewer", bc, f"u{i}"), "msgpack" if i % 2 else "default") for i in range(6)]
    await wait_for(lambda: all(c.of("snapshot") for c in cs), what="snapshots")
    fan = fanout_of(srv)
    writes: list[tuple[object, bytes]] = []
    conn_mod.tap = lambda conn, data: writes.append((conn, data))
    try:
        fan.chat(bc, {"id": "m", "text": "x" * 50, "role": "viewer"})
        fan.tick()
    finally:
        conn_mod.tap = None
    await wait_for(lambda: all(c.chat() for c in cs), what="the tick everywhere")
    assert len({id(c) for c, _ in writes}) == 6  # one write per socket
    by_codec: dict[bool, set[int]] = {}
    for conn, data in writes:
        by_codec.setdefault(conn.codec == "msgpack", set()).add(id(data))
    assert set(by_codec) == {True, False}
    assert all(len(ids) == 1 for ids in by_codec.values())  # the same bytes object per codec


async def test_acks_use_each_sockets_codec(make_server, bc, clients, token) -> None:
    srv = await make_server()
    mp = await clients(srv.url, token("viewer", bc, "u1"), "msgpack")
    js = await clients(srv.url, token("viewer", bc, "u2"), "default")
    conns = srv.app["sio"].conns
    assert sorted(c.codec for c in conns.values()) == ["json", "msgpack"]
    for c in (mp, js):  # each client can only decode its own codec: an ack arriving at all proves it
        ack = await c.sio.call("time", {}, timeout=30)
        assert ack["ok"] is True


async def test_broadcast_frames_are_not_compressed_per_socket(make_server, bc, token) -> None:
    import aiohttp

    from loadtest.fanout_raw import raw_connect

    srv = await make_server()
    async with aiohttp.ClientSession() as session:
        url = srv.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        ws = await session.ws_connect(url, compress=15)  # the client offers permessage-deflate
        assert "permessage-deflate" not in (ws._response.headers.get("Sec-WebSocket-Extensions") or "")
        assert ws.compress == 0
        await ws.close()
        c = await raw_connect(session, srv.url, {"token": token("viewer", bc, "u9")}, codec="json")
        fanout_of(srv).urgent(bc, "hello", {"x": 1})
        while True:
            got = c.decode(await c.ws.receive(timeout=30))
            if got and got[0] == "hello":
                break
        assert got == ("hello", {"x": 1})


async def test_a_long_polling_client_is_served_and_upgrades(make_server, bc, token) -> None:
    import socketio

    srv = await make_server()
    c = socketio.AsyncClient(reconnection=False)  # default transports: polling first, then websocket
    got: list[tuple[str, object]] = []
    c.on("*", lambda event, *a: got.append((event, a[0] if a else None)))
    await c.connect(srv.url, auth={"token": token("viewer", bc, "u1")}, wait_timeout=20)
    try:
        await wait_for(lambda: any(e == "snapshot" for e, _ in got), what="snapshot over polling")
        fanout_of(srv).urgent(bc, "one", {"n": 1})
        await wait_for(lambda: any(e == "one" for e, _ in got), what="an urgent event")
        await wait_for(lambda: c.transport() == "websocket", what="the upgrade")
        fanout_of(srv).urgent(bc, "two", {"n": 2})
        fanout_of(srv).chat(bc, {"id": "m", "text": "t", "role": "viewer"})
        await wait_for(lambda: any(e == "two" for e, _ in got) and any(e == "tick" and d.get("chat") for e, d in got),
                       what="events after the upgrade")
        assert (await c.call("time", {}, timeout=30))["ok"]
    finally:
        await c.disconnect()


async def test_the_tick_period_stretches_past_the_write_budget(make_server, bc, clients, token) -> None:
    """HAWKER_FANOUT_MAX_WRITES_PER_S: 4 sockets at 20 tick frames/s -> a tick every 200 ms, not
    every 50 ms; what comes in between is coalesced into it (hearts summed), nothing is lost."""
    import asyncio

    srv = await make_server(tick_ms=50, fanout_max_writes_per_s=20)
    cs = [await clients(srv.url, token("viewer", bc, f"u{i}")) for i in range(4)]
    await wait_for(lambda: all(c.of("snapshot") for c in cs), what="snapshots")
    fan = fanout_of(srv)
    assert fan.period() == 0.2
    before = len(cs[0].ticks())
    for _ in range(40):  # a heart every 25 ms for 1 s: news in every 50 ms window
        fan.hearts(bc)
        await asyncio.sleep(0.025)
    await asyncio.sleep(0.3)
    got = cs[0].ticks()[before:]
    assert 3 <= len(got) <= 8, len(got)  # about 5 ticks in 1.3 s, not about 26
    assert sum(t.get("hearts", 0) for t in got) == 40

    fan.max_writes_per_s = 0  # no budget: tick_ms again
    assert fan.period() == 0.05
