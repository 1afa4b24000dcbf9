"""Checkout over REST and Socket.IO on a running node: Idempotency-Key, codes, the audit endpoint."""
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import pytest

from shop.broadcasts import BroadcastStore
from tests.checkout.conftest import CONTACT, DECLINE_CARD, OK_CARD
from tests.checkout.hooks import SECRET
from tests.hub.conftest import PRODUCTS, Client, clients  # noqa: F401 - fixture
from tests.waiting import wait_for as wait_until


@pytest.fixture
def config(config):
    """These tests' merchant receivers listen on loopback over plain http: a development server's
    settings (HAWKER_WEBHOOK_ALLOW_PRIVATE=1, HAWKER_WEBHOOK_HTTP_HOSTS=127.0.0.1)."""
    return config.with_(webhook_allow_private=True, webhook_http_hosts="127.0.0.1")


@pytest.fixture
async def shop(redis, server, token, clients):  # noqa: F811 - the fixture imported above
    """A running node, broadcast b1 with an open sale of 2 units (limit 1), a host socket."""
    await BroadcastStore(redis).ensure("b1", title="Drop", host="h1", products=PRODUCTS)
    host = await clients(server.url, token("host", "b1", "h1"))
    ack = await host.call("sale.schedule", {"product_id": "p1", "units": 2, "limit": 1, "hold_s": 60})
    assert ack["ok"], ack
    return {"server": server, "sale": ack["sale"]["id"], "host": host}


async def hold_for(shop, clients, token, user: str) -> str:  # noqa: F811 - the fixture imported above
    viewer = await clients(shop["server"].url, token("viewer", "b1", user))
    ack = await viewer.call("sale.reserve", {"sale_id": shop["sale"], "qty": 1, "request_id": f"req-{user}"})
    assert ack["ok"], ack
    return ack["reservation"]["id"]


async def post(url: str, tok: str, body: Any, key: str | None = "k1") -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {tok}"}
    if key:
        headers["Idempotency-Key"] = key
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/api/checkout", json=body, headers=headers) as r:
            return r.status, await r.json()


async def get(url: str, path: str, tok: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url + path, headers={"Authorization": f"Bearer {tok}"}) as r:
            return r.status, await r.json()


def body(sale: str, rid: str, card=OK_CARD) -> dict:
    return {"sale_id": sale, "reservation_id": rid, "card": card, "contact": CONTACT}


async def test_rest_checkout_and_orders(shop, clients, token):  # noqa: F811 - the fixture imported above
    url, sale = shop["server"].url, shop["sale"]
    rid = await hold_for(shop, clients, token, "alice")
    status, data = await post(url, token("viewer", "b1", "alice"), body(sale, rid))
    assert status == 201 and data["order"]["state"] == "PAID" and data["order"]["reservation_id"] == rid
    oid = data["order"]["id"]
    status, mine = await get(url, "/api/orders", token("viewer", "b1", "alice"))
    assert status == 200 and [o["id"] for o in mine["orders"]] == [oid]
    status, theirs = await get(url, "/api/orders", token("viewer", "b1", "bob"))
    assert status == 200 and theirs["orders"] == []
    status, host = await get(url, "/api/orders?broadcast=b1", token("host", "b1", "h1"))
    assert status == 200 and host["paid"] == 1 and host["revenue"] == {"KRW": 12900}
    assert (await get(url, f"/api/orders/{oid}", token("viewer", "b1", "bob")))[0] == 404
    assert (await get(url, f"/api/orders/{oid}", token("viewer", "b1", "alice")))[0] == 200
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/metrics") as r:
            text = await r.text()
    assert 'hawker_orders_total{state="PAID"}' in text and 'hawker_payments_total{outcome="succeeded"}' in text
    assert 'hawker_revenue_minor_units_total{currency="KRW"}' in text


async def test_idempotency_key_semantics(shop, clients, token):  # noqa: F811 - the fixture imported above
    url, sale = shop["server"].url, shop["sale"]
    rid = await hold_for(shop, clients, token, "alice")
    tok = token("viewer", "b1", "alice")
    # duplicate clicks, same key, at once: one order, the others get it replayed or wait (409)
    results = await asyncio.gather(*(post(url, tok, body(sale, rid), key="click-1") for _ in range(4)))
    created = [d for s, d in results if s == 201]
    assert created and len({d["order"]["id"] for d in created}) == 1
    assert all(s in (201, 409) for s, _ in results)
    assert all(d["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS" for s, d in results if s == 409)
    # the same key and body later: the stored answer
    status, again = await post(url, tok, body(sale, rid), key="click-1")
    assert status == 201 and again["order"]["id"] == created[0]["order"]["id"]
    # the same JSON with its keys in another order is the same request
    reordered = orjson.dumps(dict(reversed(list(body(sale, rid).items()))))
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/api/checkout", data=reordered, headers={
                "Authorization": f"Bearer {tok}", "Idempotency-Key": "click-1", "Content-Type": "application/json"}) as r:
            assert r.status == 201 and r.headers["Idempotent-Replayed"] == "true"
    # the same key with another body: 422
    status, err = await post(url, tok, body(sale, rid, card=DECLINE_CARD), key="click-1")
    assert (status, err["error"]["code"]) == (422, "IDEMPOTENCY_MISMATCH")
    status, orders = await get(url, "/api/orders?broadcast=b1", token("host", "b1", "h1"))
    assert orders["count"] == 1


async def test_missing_key_and_bad_bodies(shop, clients, token):  # noqa: F811 - the fixture imported above
    url, sale = shop["server"].url, shop["sale"]
    rid = await hold_for(shop, clients, token, "alice")
    tok = token("viewer", "b1", "alice")
    cases = [
        (body(sale, rid), None, 400, "IDEMPOTENCY_KEY_REQUIRED"),
        ({"sale_id": sale}, "a", 422, "VALIDATION"),
        ({"sale_id": 5, "reservation_id": rid, "card": OK_CARD, "contact": CONTACT}, "b", 422, "VALIDATION"),
        ([1, 2], "c", 422, "VALIDATION"),
        (body(sale, "r-unknown"), "d", 404, "RESERVATION_NOT_FOUND"),
        (body("no-such-sale", rid), "e", 404, "SALE_NOT_FOUND"),
        (body(sale, rid, card={"number": "42", "exp": "1/1", "cvc": ""}), "f", 422, "INVALID_CARD"),
    ]
    for b, key, status, code in cases:
        got_status, data = await post(url, tok, b, key=key)
        assert (got_status, data["error"]["code"]) == (status, code), (b, data)
    # another viewer cannot pay for alice's hold
    got_status, data = await post(url, token("viewer", "b1", "mallory"), body(sale, rid), key="m")
    assert (got_status, data["error"]["code"]) == (403, "NOT_YOUR_RESERVATION")
    # a token for another broadcast cannot see this sale
    got_status, data = await post(url, token("viewer", "b2", "alice"), body(sale, rid), key="x")
    assert (got_status, data["error"]["code"]) == (404, "SALE_NOT_FOUND")
    # no token at all
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/api/checkout", json=body(sale, rid), headers={"Idempotency-Key": "z"}) as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "TOKEN_MISSING"
    # nothing changed: alice still holds her unit, no order exists
    _, audit = await get(url, f"/api/sales/{sale}/audit", token("host", "b1", "h1"))
    assert audit["orders"] == []
    assert [(r["id"], r["state"]) for r in audit["reservations"]] == [(rid, "HELD")]


async def test_socket_checkout_pay_and_decline(shop, clients, token):  # noqa: F811 - the fixture imported above
    sale = shop["sale"]
    viewer = await clients(shop["server"].url, token("viewer", "b1", "carol"))
    ack = await viewer.call("sale.reserve", {"sale_id": sale, "qty": 1, "request_id": "r1"})
    rid = ack["reservation"]["id"]
    declined = await viewer.call("checkout.pay", body(sale, rid, card=DECLINE_CARD))
    assert declined["ok"] is False and declined["error"]["code"] == "PAYMENT_DECLINED"
    paid = await viewer.call("checkout.pay", {**body(sale, rid), "idempotency_key": "k"})
    assert paid["ok"] and paid["order"]["state"] == "PAID"
    again = await viewer.call("checkout.pay", {**body(sale, rid), "idempotency_key": "k"})
    assert again["ok"] and again["replayed"] is True and again["order"]["id"] == paid["order"]["id"]
    other = await viewer.call("checkout.pay", {**body(sale, rid, card=DECLINE_CARD), "idempotency_key": "k"})
    assert other["ok"] is False and other["error"]["code"] == "IDEMPOTENCY_MISMATCH"
    bad = await viewer.call("checkout.pay", {"sale_id": sale})
    assert bad["ok"] is False and bad["error"]["code"] == "VALIDATION"


async def test_audit_endpoint(shop, clients, token):  # noqa: F811 - the fixture imported above
    url, sale = shop["server"].url, shop["sale"]
    rid = await hold_for(shop, clients, token, "alice")
    await post(url, token("viewer", "b1", "alice"), body(sale, rid))
    await hold_for(shop, clients, token, "bob")
    assert (await get(url, f"/api/sales/{sale}/audit", token("viewer", "b1", "alice")))[0] == 403
    assert (await get(url, "/api/sales/nope/audit", token("host", "b1", "h1")))[0] == 404
    status, audit = await get(url, f"/api/sales/{sale}/audit", token("host", "b1", "h1"))
    assert status == 200
    assert audit["lot"]["total"] == 2 and audit["lot"]["per_user_limit"] == 1
    assert audit["levels"] == {"total": 2, "available": 0, "held": 1, "sold": 1, "waitlist": 0}
    assert sorted(r["state"] for r in audit["reservations"]) == ["HELD", "SOLD"]
    assert [o["reservation_id"] for o in audit["orders"]] == [rid]
    assert audit["inventory_audit"]["ok"] is True and audit["server_time"] > 0


async def test_webhooks_through_the_app(shop, clients, token, redis, receiver):  # noqa: F811 - the fixture imported above
    """Register over REST; a paid order, a sell-out and an expired hold each reach the merchant, signed."""
    rec = receiver
    url, sale, host_tok = shop["server"].url, shop["sale"], token("host", "b1", "h1")
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/api/webhooks", json={"url": rec.url, "secret": SECRET},
                             headers={"Authorization": f"Bearer {host_tok}"}) as r:
            assert r.status == 201, await r.text()
        async with http.post(url + "/api/webhooks", json={"url": "nope", "secret": SECRET},
                             headers={"Authorization": f"Bearer {host_tok}"}) as r:
            assert r.status == 422 and (await r.json())["error"]["code"] == "VALIDATION"
        async with http.post(url + "/api/webhooks", json={"url": "http://x.test/", "secret": SECRET},
                             headers={"Authorization": f"Bearer {token('viewer', 'b1', 'v')}"}) as r:
            assert r.status == 403
    rid = await hold_for(shop, clients, token, "alice")
    status, paid = await post(url, token("viewer", "b1", "alice"), body(sale, rid))
    assert status == 201
    await hold_for(shop, clients, token, "bob")  # the last unit: sold out
    await wait_until(lambda: {e["type"] for e in rec.accepted} >= {"order.created", "sale.soldout"},
                     what=f"order.created and sale.soldout, got {rec.accepted}")
    created = [e for e in rec.accepted if e["type"] == "order.created"]
    assert created[0]["data"]["order"]["id"] == paid["order"]["id"]
    assert [e["type"] for e in rec.accepted].count("sale.soldout") == 1
    assert rec.bad_signatures == 0


async def test_an_expired_hold_reaches_the_merchant_once(shop, clients, token, receiver):  # noqa: F811 - the fixture imported above
    """A hold nobody pays for expires (on the hub's stock watcher) and becomes reservation.expired."""
    rec = receiver
    url, host_tok = shop["server"].url, token("host", "b1", "h1")
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/api/webhooks", headers={"Authorization": f"Bearer {host_tok}"}, json={
                "url": rec.url, "secret": SECRET, "events": ["reservation.expired"]}) as r:
            assert r.status == 201, await r.text()
    ack = await shop["host"].call("sale.schedule", {"product_id": "p2", "units": 1, "limit": 1, "hold_s": 10})
    assert ack["ok"], ack
    sale = ack["sale"]["id"]
    viewer = await clients(url, token("viewer", "b1", "dave"))
    held = await viewer.call("sale.reserve", {"sale_id": sale, "qty": 1, "request_id": "d1"})
    assert held["ok"], held
    await wait_until(lambda: len(rec.accepted) >= 1, timeout=60)
    (event,) = rec.accepted
    assert event["type"] == "reservation.expired" and event["id"] == f"reservation.expired:{sale}:{held['reservation']['id']}"
    assert event["data"]["user"] == "dave" and event["data"]["qty"] == 1 and rec.bad_signatures == 0


async def test_host_refund_of_a_paid_order(shop, clients, token):  # noqa: F811 - the fixture imported above
    url, sale = shop["server"].url, shop["sale"]
    rid = await hold_for(shop, clients, token, "alice")
    status, data = await post(url, token("viewer", "b1", "alice"), body(sale, rid))
    assert status == 201
    oid = data["order"]["id"]

    async def refund(tok: str, key: str) -> tuple[int, dict]:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/api/orders/{oid}/refund",
                                 headers={"Authorization": f"Bearer {tok}", "Idempotency-Key": key}) as r:
                return r.status, await r.json()

    status, err = await refund(token("viewer", "b1", "alice"), "r1")
    assert (status, err["error"]["code"]) == (403, "FORBIDDEN")
    assert (await get(url, f"/api/orders/{oid}", token("viewer", "b1", "alice")))[1]["order"]["state"] == "PAID"
    status, done = await refund(token("host", "b1", "h1"), "r2")
    assert status == 200 and done["order"]["state"] == "REFUNDED"
    provider = shop["server"].app["node"].checkout.provider
    assert (await provider.status(f"{sale}:{rid}:1")).status.value == "refunded"
    status, again = await refund(token("host", "b1", "h1"), "r3")  # a second refund changes nothing
    assert status == 200 and again["order"]["updated_at"] == done["order"]["updated_at"]
    _, host = await get(url, "/api/orders?broadcast=b1", token("host", "b1", "h1"))
    assert host["paid"] == 0 and host["revenue"] == {}
