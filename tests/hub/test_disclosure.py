"""Auth before lookup on every REST endpoint with an id in its path: a stranger (no token) gets 401
whether or not the thing exists, and a token of another broadcast (or another shopper) gets the
same answer for a real id as for a made-up one. Real node, real Redis."""
from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from checkout import Webhooks
from checkout.egress import EgressPolicy
from shop.broadcasts import BroadcastStore
from tests.checkout.conftest import CONTACT, OK_CARD
from tests.hub.conftest import PRODUCTS, clients  # noqa: F401 - fixture


@pytest.fixture
async def world(redis, server, token, clients):  # noqa: F811 - the fixture imported above
    """Broadcast b1 with a sale, a paid order, a webhook; broadcast b2 exists too (another host)."""
    store = BroadcastStore(redis)
    await store.ensure("b1", title="Drop", host="h1", products=PRODUCTS)
    await store.ensure("b2", title="Other", host="h2", products=PRODUCTS)
    host = await clients(server.url, token("host", "b1", "h1"))
    ack = await host.call("sale.schedule", {"product_id": "p1", "units": 5, "limit": 1, "hold_s": 60})
    assert ack["ok"], ack
    sale = ack["sale"]["id"]
    viewer = await clients(server.url, token("viewer", "b1", "alice"))
    hold = await viewer.call("sale.reserve", {"sale_id": sale, "qty": 1, "request_id": "r1"})
    assert hold["ok"], hold
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/checkout", headers={
                "Authorization": f"Bearer {token('viewer', 'b1', 'alice')}", "Idempotency-Key": "k1"},
                json={"sale_id": sale, "reservation_id": hold["reservation"]["id"], "card": OK_CARD,
                      "contact": CONTACT}) as r:
            assert r.status == 201, await r.text()
            order = (await r.json())["order"]["id"]
    # a webhook of b1, stored directly (the node's strict policy would refuse a test address)
    dev = Webhooks(redis, consumer="setup", policy=EgressPolicy.from_settings(True, "127.0.0.1"))
    webhook = (await dev.register("b1", "http://127.0.0.1:9/hooks", "whsec_0123456789abcdef", ["sale.soldout"])).id
    return {"url": server.url, "sale": sale, "order": order, "webhook": webhook}


async def call(url: str, method: str, path: str, tok: str | None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    kw: dict[str, Any] = {"json": {}} if method in ("POST", "PATCH") else {}
    async with aiohttp.ClientSession() as http:
        async with http.request(method, url + path, headers=headers, **kw) as r:
            body = await r.json()
            return r.status, body["error"]["code"] if "error" in body else "OK"


def routes(w: dict) -> list[tuple[str, str, str]]:
    """(method, path with the real id, the same path with a made-up id)."""
    return [
        ("GET", f"/api/sales/{w['sale']}/audit", "/api/sales/no-such-sale/audit"),
        ("GET", f"/api/orders/{w['order']}", "/api/orders/no-such-order"),
        ("POST", f"/api/orders/{w['order']}/refund", "/api/orders/no-such-order/refund"),
        ("GET", "/api/broadcasts/b1", "/api/broadcasts/no-such-bc"),
        ("PATCH", "/api/broadcasts/b1", "/api/broadcasts/no-such-bc"),
        ("POST", "/api/broadcasts/b1/products", "/api/broadcasts/no-such-bc/products"),
        ("PATCH", "/api/broadcasts/b1/products/p1", "/api/broadcasts/no-such-bc/products/p1"),
        ("DELETE", f"/api/webhooks/{w['webhook']}", "/api/webhooks/we_no_such_webhook"),
    ]


async def test_a_stranger_gets_401_whether_or_not_the_thing_exists(world) -> None:
    for method, real, made_up in routes(world):
        got_real = await call(world["url"], method, real, None)
        got_fake = await call(world["url"], method, made_up, None)
        assert got_real[0] == 401 and got_real == got_fake, (method, real, got_real, got_fake)


async def test_another_broadcasts_token_cannot_tell_a_real_id_from_a_made_up_one(world, token) -> None:
    others = [(tok, routes(world)) for tok in (token("host", "b2", "h2"), token("moderator", "b2", "m2"),
                                                token("viewer", "b2", "bob"))]
    others.append((token("viewer", "b1", "bob"), routes(world)[1:3]))  # bob of b1: alice's order is not his
    for tok, table in others:
        for method, real, made_up in table:
            got_real = await call(world["url"], method, real, tok)
            got_fake = await call(world["url"], method, made_up, tok)
            assert got_real == got_fake, (tok[-8:], method, real, got_real, got_fake)
            assert got_real[0] in (403, 404), (method, real, got_real)


async def test_the_owner_still_sees_it(world, token) -> None:
    """The same calls with the right token work: the equal answers above are not everything-404."""
    host = token("host", "b1", "h1")
    assert (await call(world["url"], "GET", f"/api/sales/{world['sale']}/audit", host))[0] == 200
    assert (await call(world["url"], "GET", f"/api/orders/{world['order']}", host))[0] == 200
    assert (await call(world["url"], "GET", f"/api/orders/{world['order']}", token("viewer", "b1", "alice")))[0] == 200
    assert (await call(world["url"], "GET", "/api/broadcasts/b1", host))[0] == 200
    assert (await call(world["url"], "DELETE", f"/api/webhooks/{world['webhook']}", host))[0] == 200  # still there
