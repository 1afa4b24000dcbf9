"""Flash sales through the hub: scheduled, opened once on every node on time, bought over socket acks,
sold out once, closed; units freed for the waitlist are announced privately."""
from __future__ import annotations

import asyncio

from live.hub import metrics
from tests.hub.conftest import wait_for


def sale_events(name: str) -> float:
    return metrics.HUB_SALE_EVENTS.labels(name)._value.get()


async def test_sale_opens_once_within_a_tick_on_both_nodes(make_server, bc, clients, token, redis):
    tick_ms = 100
    a, b = await make_server(tick_ms=tick_ms), await make_server(tick_ms=tick_ms)
    host = await clients(a.url, token("host", "b1", "h1"))
    viewers = [await clients(a.url, token("viewer", "b1", "va")), await clients(b.url, token("viewer", "b1", "vb"))]
    for c in (host, *viewers):
        await c.snapshot()
    opened_before = sale_events("sale.open")
    sec, usec = await redis.time()
    opens_at = sec * 1000 + usec // 1000 + 2500
    ack = await host.call("sale.schedule", {"product_id": "p1", "units": 3, "price": 9900, "limit": 1,
                                            "hold_s": 60, "opens_at": opens_at})
    assert ack["ok"], ack
    sale_id = ack["sale"]["id"]
    assert ack["sale"]["opens_at"] == opens_at and ack["sale"]["price"] == 9900

    for c in viewers:
        scheduled = await wait_for(lambda c=c: c.of("sale.scheduled"), what="sale.scheduled")
        assert scheduled[0]["sale"]["opens_at"] == opens_at
    early = await viewers[1].call("sale.reserve", {"sale_id": sale_id, "request_id": "too-early"})
    assert early["error"]["code"] == "NOT_OPEN"  # Buy unlocks on the server clock, not before

    for c in viewers:
        [msg] = await wait_for(lambda c=c: c.of("sale.open"), timeout=30, what="sale.open")
        assert msg["sale_id"] == sale_id and msg["opens_at"] == opens_at
        assert opens_at <= msg["at"] <= opens_at + tick_ms, msg  # claimed within one tick, server clock
    await asyncio.sleep(1.0)  # time for any duplicate to arrive
    assert [len(c.of("sale.open")) for c in viewers] == [1, 1]
    assert sale_events("sale.open") - opened_before == 1  # both nodes (one process) sent it once in all
    ok = await viewers[1].call("sale.reserve", {"sale_id": sale_id, "request_id": "now"})
    assert ok["ok"], ok


async def test_reserve_over_socket_ack(server, bc, clients, token):
    host = await clients(server.url, token("host", "b1", "h1"))
    buyer = await clients(server.url, token("viewer", "b1", "u1"))
    for c in (host, buyer):
        await c.snapshot()
    sale = (await host.call("sale.schedule", {"product_id": "p2", "units": 5, "limit": 2, "hold_s": 60}))["sale"]
    first = await buyer.call("sale.reserve", {"sale_id": sale["id"], "qty": 2, "request_id": "click-1"})
    assert first["ok"], first
    r = first["reservation"]
    assert r["qty"] == 2 and r["state"] == "HELD" and r["user"] == "u1" and r["expires_at"] > 0
    assert first["levels"] == {"total": 5, "available": 3, "held": 2, "sold": 0, "waitlist": 0}
    retry = await buyer.call("sale.reserve", {"sale_id": sale["id"], "qty": 2, "request_id": "click-1"})
    assert retry["ok"] and retry["reservation"]["id"] == r["id"]  # a double click is one reservation
    over = await buyer.call("sale.reserve", {"sale_id": sale["id"], "qty": 1, "request_id": "click-2"})
    assert over["error"]["code"] == "LIMIT_REACHED" and over["error"]["levels"]["available"] == 3
    bad = await buyer.call("sale.reserve", {"sale_id": sale["id"], "qty": "two", "request_id": "click-3"})
    assert bad["error"]["code"] == "VALIDATION" and bad["error"]["field"] == "qty"
    missing = await buyer.call("sale.reserve", {"sale_id": sale["id"]})
    assert missing["error"]["code"] == "VALIDATION" and missing["error"]["field"] == "request_id"
    extended = await buyer.call("sale.extend", {"sale_id": sale["id"], "reservation_id": r["id"]})
    assert extended["ok"] and extended["reservation"]["expires_at"] > r["expires_at"]
    released = await buyer.call("sale.release", {"sale_id": sale["id"], "reservation_id": r["id"]})
    assert released["ok"] and released["levels"]["available"] == 5
    # the coalesced stock level reaches the room
    await wait_for(lambda: (host.levels(f"stock:{sale['id']}") or {}).get("available") == 5, what="stock level")


async def test_soldout_once_waitlist_grant_private_and_cancel(make_server, bc, clients, token):
    a, b = await make_server(), await make_server()
    host = await clients(a.url, token("host", "b1", "h1"))
    u1 = await clients(a.url, token("viewer", "b1", "u1"))
    u2 = await clients(b.url, token("viewer", "b1", "u2"))
    u3 = await clients(b.url, token("viewer", "b1", "u3"))
    for c in (host, u1, u2, u3):
        await c.snapshot()
    sale_id = (await host.call("sale.schedule", {"product_id": "p1", "units": 2, "limit": 2, "hold_s": 60}))["sale"]["id"]
    got = await u1.call("sale.reserve", {"sale_id": sale_id, "qty": 2, "request_id": "all"})
    assert got["ok"] and got["levels"]["available"] == 0
    for c in (u1, u2, u3):
        [msg] = await wait_for(lambda c=c: c.of("sale.soldout"), what="sale.soldout")
        assert msg["sale_id"] == sale_id and msg["levels"]["available"] == 0
    no = await u2.call("sale.reserve", {"sale_id": sale_id, "request_id": "late"})
    assert no["error"]["code"] == "SOLD_OUT"
    wait = await u2.call("sale.waitlist", {"sale_id": sale_id, "qty": 1})
    assert wait["ok"] and wait["position"] == 1

    rel = await u1.call("sale.release", {"sale_id": sale_id, "reservation_id": got["reservation"]["id"]})
    assert rel["ok"]
    [grant] = await wait_for(lambda: u2.of("hold.granted"), what="hold.granted to u2 on the other node")
    assert grant["sale_id"] == sale_id and grant["reservation"]["user"] == "u2"
    assert grant["reservation"]["from_waitlist"] is True and grant["reservation"]["qty"] == 1
    await asyncio.sleep(0.5)
    assert u1.of("hold.granted") == [] and u3.of("hold.granted") == []  # private
    assert [len(c.of("sale.soldout")) for c in (u1, u2, u3)] == [1, 1, 1]

    cancelled = await host.call("sale.cancel", {"sale_id": sale_id})
    assert cancelled["ok"]
    for c in (u1, u2, u3):
        [msg] = await wait_for(lambda c=c: c.of("sale.closed"), what="sale.closed")
        assert msg["reason"] == "cancelled"
    after = await u3.call("sale.reserve", {"sale_id": sale_id, "request_id": "after"})
    assert after["error"]["code"] == "CLOSED"
    again = await host.call("sale.cancel", {"sale_id": sale_id})
    assert again["error"]["code"] == "SALE_CLOSED"


async def test_schedule_is_idempotent_and_validated(server, bc, clients, token):
    host = await clients(server.url, token("host", "b1", "h1"))
    await host.snapshot()
    payload = {"product_id": "p1", "units": 4, "request_id": "drop-1"}
    first, second = await asyncio.gather(host.call("sale.schedule", payload), host.call("sale.schedule", payload))
    assert first["ok"] and second["ok"] and first["sale"]["id"] == second["sale"]["id"]
    snap = (await host.call("snapshot"))["snapshot"]
    assert [s["id"] for s in snap["sales"]] == [first["sale"]["id"]]
    for bad, field in [({"product_id": "nope", "units": 1}, "product_id"), ({"product_id": "p1", "units": 0}, "units"),
                       ({"product_id": "p1", "units": 1, "hold_s": 1}, "hold_s"),
                       ({"product_id": "p1", "units": 1, "currency": "euro"}, "currency")]:
        ack = await host.call("sale.schedule", bad)
        assert ack["error"].get("field") == field, (bad, ack)


async def test_broadcast_end_closes_sales_and_poll(server, bc, clients, token):
    host = await clients(server.url, token("host", "b1", "h1"))
    viewer = await clients(server.url, token("viewer", "b1", "u1"))
    for c in (host, viewer):
        await c.snapshot()
    assert (await host.call("broadcast.start"))["ok"]
    sale_id = (await host.call("sale.schedule", {"product_id": "p1", "units": 4}))["sale"]["id"]
    assert (await host.call("poll.create", {"question": "Q", "options": ["a", "b"]}))["ok"]
    ended = await host.call("broadcast.end")
    assert ended["ok"] and ended["state"] == "ended"
    states = await wait_for(lambda: [d["state"] for d in viewer.of("broadcast.state")] == ["live", "ended"] or None,
                            what="state events")
    assert states
    [closed] = await wait_for(lambda: viewer.of("sale.closed"), what="sale.closed")
    assert closed["sale_id"] == sale_id and closed["reason"] == "broadcast_ended"
    await wait_for(lambda: viewer.of("poll.closed"), what="poll.closed")
    again = await host.call("broadcast.start")
    assert again["error"]["code"] == "BAD_STATE" and again["error"]["state"] == "ended"
