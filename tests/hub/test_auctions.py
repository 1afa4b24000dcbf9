"""Auctions over real sockets: host commands, viewers' bids with the coalesced level, the private
outbid notice, the late bid that moves the end, the close with `auction.won`, the winner's hold paid
through `checkout.pay`, the audit endpoint, the snapshot part, and who may do what."""
from __future__ import annotations

import asyncio

import aiohttp

from tests.conftest import CLUSTER
from tests.hub.conftest import host_and_viewers, wait_for

CARD = {"number": "4242 4242 4242 4242", "exp": "12/39", "cvc": "123"}
CONTACT = {"name": "Kim Minji", "email": "minji@example.test"}


async def test_two_viewers_bid_and_the_outbid_one_hears_it(bc, server, clients, token):
    host, (ann, ben) = await host_and_viewers(server, clients, token, 2)
    created = await host.call("auction.create", {"product_id": "p1", "start_price": 1000, "duration_s": 60,
                                                 "request_id": "c1"})
    assert created["ok"], created
    aid = created["auction"]["auction_id"]
    again = await host.call("auction.create", {"product_id": "p1", "start_price": 1000, "duration_s": 60,
                                               "request_id": "c1"})
    assert again["auction"]["auction_id"] == aid  # a retried create: the same auction
    assert (await host.call("auction.start", {"auction_id": aid}))["ok"]
    a1 = await ann.call("auction.bid", {"auction_id": aid, "next": True, "request_id": "r1"})
    assert a1["ok"] and a1["high"] == 1000 and a1["leading"]
    low = await ben.call("auction.bid", {"auction_id": aid, "amount": 1050, "request_id": "r1"})
    assert low["error"]["code"] == "BID_TOO_LOW" and low["error"]["min"] == 1100
    b1 = await ben.call("auction.bid", {"auction_id": aid, "amount": 1500, "request_id": "r2"})
    assert b1["ok"] and b1["leading"]
    outbid = await wait_for(lambda: ann.of("auction.outbid"), what="auction.outbid")
    assert outbid[0]["auction_id"] == aid and outbid[0]["high"] == 1500
    assert not ben.of("auction.outbid")  # private: only the one who lost the lead
    own = await ben.call("auction.bid", {"auction_id": aid, "next": True, "request_id": "r3"})
    assert own["error"]["code"] == "OWN_HIGH_BID"
    level = await wait_for(lambda: (lv := host.levels(f"auction:{aid}")) and lv["high"] == 1500 and lv,
                           what="auction level")
    assert level["leader"] == "V***1" and level["bids"] == 2 and "v1" not in str(level)
    cancel = await host.call("auction.cancel", {"auction_id": aid})
    assert cancel["error"]["code"] == "AUCTION_STARTED"


async def test_who_may_do_what(bc, server, clients, token):
    host, (ann,) = await host_and_viewers(server, clients, token, n=1)
    other_host = await clients(server.url, token("host", "b2", "h2"))
    await other_host.snapshot()
    mod = await clients(server.url, token("moderator", "b1", "m1"))
    await mod.snapshot()
    assert (await ann.call("auction.create", {"product_id": "p1"}))["error"]["code"] == "FORBIDDEN"
    aid = (await host.call("auction.create", {"product_id": "p1"}))["auction"]["auction_id"]
    for caller in (host, mod):  # the show's staff never bid
        r = await caller.call("auction.bid", {"auction_id": aid, "next": True, "request_id": "x"})
        assert r["error"]["code"] == "FORBIDDEN"
    stranger = await other_host.call("auction.start", {"auction_id": aid})
    assert stranger["error"]["code"] == "AUCTION_NOT_FOUND"
    for bad in ({"auction_id": aid, "request_id": "x"}, {"auction_id": aid, "amount": "5", "request_id": "x"},
                {"auction_id": aid, "amount": 5, "next": True, "request_id": "x"},
                {"auction_id": aid, "next": True}, {"auction_id": "../../x", "next": True, "request_id": "x"},
                {"auction_id": aid, "next": True, "request_id": "x", "extra": 1}):
        r = await ann.call("auction.bid", bad)
        assert r["error"]["code"] == "VALIDATION", (bad, r)
    bad_inc = await host.call("auction.create", {"product_id": "p1", "increments": [[5, 100]]})
    assert bad_inc["error"]["code"] == "VALIDATION" and bad_inc["error"]["field"] == "increments"
    pre = await ann.call("auction.bid", {"auction_id": aid, "next": True, "request_id": "y"})
    assert pre["error"]["code"] == "NOT_STARTED"
    assert (await ann.call("auction.max_bid", {"auction_id": aid, "max": 5000, "request_id": "p"}))["ok"]
    snap_viewer = await clients(server.url, token("viewer", "b1", "v0"))
    part = (await snap_viewer.snapshot())["auctions"]
    assert part[0]["auction_id"] == aid and part[0]["my_prebid"] == 5000 and part[0]["state"] == "scheduled"
    assert (await host.call("auction.cancel", {"auction_id": aid}))["ok"]
    await wait_for(lambda: ann.of("auction.cancelled"), what="auction.cancelled")


async def test_a_late_bid_moves_the_end_and_the_winner_pays(bc, server, clients, token):
    host, (ann, ben) = await host_and_viewers(server, clients, token, 2)
    aid = (await host.call("auction.create", {"product_id": "p1", "start_price": 1000, "duration_s": 5,
                                              "counter_s": 4}))["auction"]["auction_id"]
    started = await host.call("auction.start", {"auction_id": aid})
    ends_at = started["auction"]["ends_at"]
    assert (await ann.call("auction.max_bid", {"auction_id": aid, "max": 3000, "request_id": "m"}))["ok"]
    await asyncio.sleep(1.5)  # into the last 4 s
    late = await ben.call("auction.bid", {"auction_id": aid, "amount": 2000, "request_id": "b"})
    assert late["ok"] and not late["leading"] and late["high"] == 2100 and late["extended"]
    assert late["ends_at"] > ends_at
    ext = await wait_for(lambda: ann.of("auction.extended"), what="auction.extended")
    assert ext[0]["ends_at"] == late["ends_at"]
    won = (await wait_for(lambda: ben.of("auction.won"), timeout=30, what="auction.won"))[0]
    assert won["result"] == "sold" and won["price"] == 2100 and won["winner"] == "V***0"
    assert won["closed_at"] >= late["ends_at"]
    hold = (await wait_for(lambda: ann.of("auction.hold"), what="auction.hold"))[0]
    assert hold["price"] == 2100 and not ben.of("auction.hold")
    paid = await ann.call("checkout.pay", {"sale_id": hold["sale_id"], "reservation_id": hold["reservation_id"],
                                           "card": CARD, "contact": CONTACT})
    assert paid["ok"], paid
    assert paid["order"]["total"] == 2100
    stolen = await ben.call("checkout.pay", {"sale_id": hold["sale_id"], "reservation_id": hold["reservation_id"],
                                             "card": CARD, "contact": CONTACT})
    assert stolen["error"]["code"] == "NOT_YOUR_RESERVATION"
    sneak = await ben.call("sale.reserve", {"sale_id": hold["sale_id"], "request_id": "s"})
    assert not sneak["ok"]
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/api/auctions/{aid}/audit"
        async with http.get(url, headers={"Authorization": f"Bearer {token('viewer', 'b1', 'v1')}"}) as resp:
            body = await resp.json()
            assert resp.status == 200
        assert body["audit"]["ok"] and body["audit"]["late_bids"] == 0 and body["audit"]["winner_matches"]
        assert body["price"] == 2100 and "v0" not in str(body)
        async with http.get(url, headers={"Authorization": f"Bearer {token('viewer', 'b2', 'v1')}"}) as resp:
            assert resp.status == 404 and (await resp.json())["error"]["code"] == "AUCTION_NOT_FOUND"
    after = await ben.call("auction.bid", {"auction_id": aid, "amount": 9000, "request_id": "late"})
    assert after["error"]["code"] == "AUCTION_CLOSED"


async def test_an_unpaid_win_goes_to_the_runner_up(bc, make_server, clients, token):
    server = await make_server(auction_hold_s=10)
    host, (ann, ben) = await host_and_viewers(server, clients, token, 2)
    aid = (await host.call("auction.create", {"product_id": "p1", "start_price": 1000, "duration_s": 5,
                                              "counter_s": 0}))["auction"]["auction_id"]
    await host.call("auction.start", {"auction_id": aid})
    assert (await ann.call("auction.bid", {"auction_id": aid, "amount": 1500, "request_id": "a"}))["ok"]
    assert (await ben.call("auction.max_bid", {"auction_id": aid, "max": 4000, "request_id": "b"}))["ok"]
    first = (await wait_for(lambda: ben.of("auction.hold"), timeout=30, what="the winner's hold"))[0]
    assert first["n"] == 1 and first["price"] == 1600 and not first["second_chance"]
    # ben never pays: when his hold runs out, ann gets it at her own highest bid
    second = (await wait_for(lambda: ann.of("auction.hold"), timeout=60, what="the second chance"))[0]
    assert second["n"] == 2 and second["second_chance"] and second["price"] == 1500
    assert second["sale_id"] != first["sale_id"]
    late = await ben.call("checkout.pay", {"sale_id": first["sale_id"], "reservation_id": first["reservation_id"],
                                           "card": CARD, "contact": CONTACT})
    assert not late["ok"]  # his hold is gone
    paid = await ann.call("checkout.pay", {"sale_id": second["sale_id"], "reservation_id": second["reservation_id"],
                                           "card": CARD, "contact": CONTACT})
    assert paid["ok"] and paid["order"]["total"] == 1500
    snap = await (await clients(server.url, token("viewer", "b1", "v0"))).snapshot()
    assert snap["auctions"][0]["my_hold"]["n"] == 2


async def test_a_slow_redis_answers_busy_and_the_retry_counts_once(bc, make_server, clients, token, redis):
    server = await make_server(command_deadline_ms=300)
    host, (ann,) = await host_and_viewers(server, clients, token, n=1)
    aid = (await host.call("auction.create", {"product_id": "p1", "duration_s": 60}))["auction"]["auction_id"]
    await host.call("auction.start", {"auction_id": aid})
    await ann.call("auction.bid", {"auction_id": aid, "next": True, "request_id": "warm"})  # owner cached
    if CLUSTER:  # the auction's master may be any of them
        await redis.execute_command("CLIENT PAUSE", 1500, "WRITE", target_nodes=redis.PRIMARIES)
    else:
        await redis.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
    busy = await ann.call("auction.max_bid", {"auction_id": aid, "max": 5000, "request_id": "slow"})
    assert busy["error"]["code"] == "BUSY" and busy["error"]["retry_after"] > 0
    await asyncio.sleep(1.6)
    again = await ann.call("auction.max_bid", {"auction_id": aid, "max": 5000, "request_id": "slow"})
    assert again["ok"], again
    snap = await (await clients(server.url, token("viewer", "b1", "v0"))).snapshot()
    assert snap["auctions"][0]["my_max"] == 5000 and snap["auctions"][0]["bids"] == 1  # the raise counted once


async def test_two_nodes_close_once_and_levels_reach_both(bc, make_server, clients, token):
    one, two = await make_server(), await make_server()
    host = await clients(one.url, token("host", "b1", "h1"))
    ann = await clients(one.url, token("viewer", "b1", "v0", name="Ann"))
    ben = await clients(two.url, token("viewer", "b1", "v1", name="Ben"))
    for c in (host, ann, ben):
        await c.snapshot()
    aid = (await host.call("auction.create", {"product_id": "p1", "start_price": 1000, "duration_s": 5,
                                              "counter_s": 0}))["auction"]["auction_id"]
    await host.call("auction.start", {"auction_id": aid})
    assert (await ben.call("auction.bid", {"auction_id": aid, "next": True, "request_id": "b"}))["ok"]  # node two
    assert (await ann.call("auction.bid", {"auction_id": aid, "next": True, "request_id": "a"}))["ok"]  # node one
    await wait_for(lambda: ben.of("auction.outbid"), what="the outbid notice across nodes")
    await wait_for(lambda: (lv := ben.levels(f"auction:{aid}")) and lv["high"] == 1100, what="the level on node two")
    await wait_for(lambda: ann.of("auction.hold"), timeout=30, what="the hold")
    await asyncio.sleep(1.0)  # anything sent twice would have arrived by now
    for c in (host, ann, ben):
        assert len(c.of("auction.won")) == 1
    assert len(ann.of("auction.hold")) == 1 and not ben.of("auction.hold")


async def test_the_audit_shows_problems_naming_bidders_to_staff_only(bc, server, clients, token, redis):
    from auctions import keys_for

    host, (ann, _ben) = await host_and_viewers(server, clients, token, 2)
    aid = (await host.call("auction.create", {"product_id": "p1", "duration_s": 60}))["auction"]["auction_id"]
    await host.call("auction.start", {"auction_id": aid})
    await ann.call("auction.bid", {"auction_id": aid, "next": True, "request_id": "a"})
    await redis.lset(keys_for(aid)[3], 1, b'{"s":2,"t":1,"k":"bid","u":"v1","a":5,"h":5,"l":"v1","e":1}')  # forged
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/api/auctions/{aid}/audit"
        async with http.get(url, headers={"Authorization": f"Bearer {token('viewer', 'b1', 'v2')}"}) as resp:
            viewer = (await resp.json())["audit"]
        async with http.get(url, headers={"Authorization": f"Bearer {token('host', 'b1', 'h1')}"}) as resp:
            staff = (await resp.json())["audit"]
    assert not viewer["ok"] and viewer["problems"] >= 1 and "v1" not in str(viewer)
    assert not staff["ok"] and any("v1" in p for p in staff["problems"])
