"""Role x command x broadcast: who may send what, and that a socket of one broadcast cannot touch another."""
from __future__ import annotations

import asyncio

from shop.broadcasts import BroadcastStore
from tests.hub.conftest import wait_for

HOST, STAFF, ALL = {"host"}, {"host", "moderator"}, {"host", "moderator", "viewer"}

# Every built-in command and who may send it (docs/protocol.md has the same matrix).
MATRIX = {
    "time": ALL, "snapshot": ALL, "hearts": ALL,
    "poll.vote": ALL, "sale.reserve": ALL, "sale.release": ALL, "sale.extend": ALL, "sale.waitlist": ALL,
    "product.pin": STAFF, "product.unpin": STAFF, "poll.create": STAFF, "poll.close": STAFF,
    "sale.schedule": HOST, "sale.cancel": HOST, "broadcast.start": HOST,
    "broadcast.end": HOST,  # last: it ends the broadcast
}


async def test_role_matrix(server, bc, clients, token, redis):
    store = BroadcastStore(redis)
    for role in ("viewer", "moderator", "host"):
        c = await clients(server.url, token(role, "b1", f"{role}-1"))
        await c.snapshot()
        for event, allowed in MATRIX.items():
            before = await store.get("b1")
            ack = await c.call(event, {})
            code = None if ack["ok"] else ack["error"]["code"]
            if role in allowed:
                assert code != "FORBIDDEN", (role, event, ack)
            else:
                assert code == "FORBIDDEN", (role, event, ack)
                assert await store.get("b1") == before, f"refused {event} changed the broadcast"
        await c.sio.disconnect()
    assert (await store.get("b1")).state == "ended"  # the host's broadcast.end went through


async def test_a_socket_of_a_cannot_touch_b(server, bc, clients, token):
    host_b = await clients(server.url, token("host", "b2", "h2"))
    await host_b.snapshot()
    sale = await host_b.call("sale.schedule", {"product_id": "p1", "units": 5})
    assert sale["ok"], sale
    poll = await host_b.call("poll.create", {"question": "Red or blue?", "options": ["red", "blue"]})
    assert poll["ok"], poll
    sale_id, poll_id = sale["sale"]["id"], poll["poll"]["id"]

    host_a = await clients(server.url, token("host", "b1", "h1"))
    viewer_a = await clients(server.url, token("viewer", "b1", "u1"))
    viewer_b = await clients(server.url, token("viewer", "b2", "u2"))
    for c in (host_a, viewer_a, viewer_b):
        await c.snapshot()

    r = await viewer_a.call("sale.reserve", {"sale_id": sale_id, "request_id": "x1"})
    assert r["error"]["code"] == "SALE_NOT_FOUND"
    r = await viewer_a.call("poll.vote", {"poll_id": poll_id, "option": 0})
    assert r["error"]["code"] == "POLL_NOT_FOUND"
    r = await host_a.call("sale.cancel", {"sale_id": sale_id})
    assert r["error"]["code"] == "SALE_NOT_FOUND"
    r = await host_a.call("poll.close", {"poll_id": poll_id})
    assert r["error"]["code"] == "POLL_NOT_FOUND"
    # B's sale and poll are untouched: B's viewer can still use them
    ok = await viewer_b.call("sale.reserve", {"sale_id": sale_id, "request_id": "y1"})
    assert ok["ok"], ok
    ok = await viewer_b.call("poll.vote", {"poll_id": poll_id, "option": 1})
    assert ok["ok"] and ok["tallies"] == [0, 1]

    # what A's host does stays in A
    assert (await host_a.call("product.pin", {"product_id": "p2"}))["ok"]
    await wait_for(lambda: viewer_a.of("product.pinned"), what="pin reaches A's viewer")
    await asyncio.sleep(0.5)
    assert viewer_b.of("product.pinned") == []
