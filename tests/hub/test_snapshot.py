"""The join snapshot: everything a page needs, personal to the viewer, and the same after a reconnect."""
from __future__ import annotations


async def test_snapshot_contents_and_reconnect(server, bc, clients, token, redis):
    host = await clients(server.url, token("host", "b1", "h1"))
    await host.snapshot()
    assert (await host.call("broadcast.start"))["ok"]
    assert (await host.call("product.pin", {"product_id": "p1"}))["ok"]
    sale = await host.call("sale.schedule", {"product_id": "p1", "units": 10, "limit": 3, "hold_s": 60})
    assert sale["ok"], sale
    sale_id = sale["sale"]["id"]
    poll = await host.call("poll.create", {"question": "Which colour?", "options": ["sand", "navy", "olive"],
                                           "duration_s": 300})
    poll_id = poll["poll"]["id"]

    u1 = await clients(server.url, token("viewer", "b1", "u1"))
    await u1.snapshot()
    res = await u1.call("sale.reserve", {"sale_id": sale_id, "qty": 2, "request_id": "r-1"})
    assert res["ok"], res  # opens_at defaults to now: buying works at once
    assert (await u1.call("poll.vote", {"poll_id": poll_id, "option": 1}))["ok"]
    await u1.sio.disconnect()

    # a reconnect is a join: the same snapshot, with this viewer's own holds and vote
    again = await clients(server.url, token("viewer", "b1", "u1"))
    snap = await again.snapshot()
    sec, usec = await redis.time()
    assert abs(snap["server_time"] - (sec * 1000 + usec // 1000)) < 5000
    assert snap["broadcast"]["state"] == "live"
    assert snap["broadcast"]["pinned"] == "p1"
    assert snap["broadcast"]["pinned_product"]["title"] == "Linen shirt"
    assert [p["id"] for p in snap["broadcast"]["products"]] == ["p1", "p2"]
    [s] = snap["sales"]
    assert s["id"] == sale_id and s["state"] in ("scheduled", "open") and s["opens_at"] <= snap["server_time"]
    assert s["levels"] == {"total": 10, "available": 8, "held": 2, "sold": 0, "waitlist": 0}
    assert [h["id"] for h in s["my_holds"]] == [res["reservation"]["id"]]
    assert s["my_holds"][0]["qty"] == 2 and s["my_holds"][0]["state"] == "HELD"
    assert snap["poll"]["id"] == poll_id and snap["poll"]["tallies"] == [0, 1, 0]
    assert snap["poll"]["my_vote"] == 1 and snap["poll"]["closes_at"] > snap["server_time"]
    assert snap["chat"] == []
    assert snap["viewers"] >= 1
    assert snap["you"]["role"] == "viewer"

    # another viewer sees the same show but none of u1's holds or votes
    u2 = await clients(server.url, token("viewer", "b1", "u2"))
    other = await u2.snapshot()
    assert other["sales"][0]["my_holds"] == [] and other["poll"]["my_vote"] is None
    assert other["sales"][0]["levels"] == s["levels"]

    # the snapshot command answers the same thing on demand
    ack = await u2.call("snapshot")
    assert ack["ok"] and ack["snapshot"]["poll"]["id"] == poll_id


async def test_snapshot_part_failure_does_not_block_join(server, bc, clients, token):
    hub = server.app["node"].hub

    @hub.snapshot_part("broken")
    async def broken(caller):
        raise RuntimeError("boom")

    try:
        c = await clients(server.url, token("viewer", "b1", "u1"))
        snap = await c.snapshot()
        assert snap["broken"] is None and snap["broadcast"]["id"] == "b1"
    finally:
        del hub.registry.parts["broken"]
