"""Issue 13, commerce rows, on a running node: every host/moderator/viewer action is scoped to the
token's broadcast (another broadcast's order is a 404), moderators see no buyer contact data,
refund failures are answered REFUND_FAILED, and test payments say so (livemode, TEST MODE)."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Any

import aiohttp
import pytest

from checkout import SandboxProvider
from shop.broadcasts import BroadcastStore
from tests.checkout.conftest import CONTACT, OK_CARD
from tests.checkout.test_api import get, post
from tests.conftest import TEST_SECRET
from tests.foundation.procs import REPO
from tests.hub.conftest import PRODUCTS, clients  # noqa: F401 - fixture


async def open_sale(url: str, clients, token, bc: str, host: str) -> str:  # noqa: F811 - the fixture imported above
    sock = await clients(url, token("host", bc, host))
    ack = await sock.call("sale.schedule", {"product_id": "p1", "units": 5, "limit": 2, "hold_s": 60})
    assert ack["ok"], ack
    return ack["sale"]["id"]


async def buy(url: str, clients, token, bc: str, sale: str, user: str, key: str) -> dict:  # noqa: F811 - the fixture imported above
    viewer = await clients(url, token("viewer", bc, user))
    held = await viewer.call("sale.reserve", {"sale_id": sale, "qty": 1, "request_id": key})
    assert held["ok"], held
    status, data = await post(url, token("viewer", bc, user), {"sale_id": sale, "reservation_id": held["reservation"]["id"],
                                                               "card": OK_CARD, "contact": CONTACT}, key=key)
    assert status == 201, data
    return data["order"]


async def refund(url: str, tok: str, oid: str, key: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/orders/{oid}/refund",
                             headers={"Authorization": f"Bearer {tok}", "Idempotency-Key": key}) as r:
            return r.status, await r.json()


@pytest.fixture
async def two_shows(redis, server, token, clients):  # noqa: F811 - the fixture imported above
    """Broadcasts b1 (host h1) and b2 (host h2), each with an open sale; "x" is b1's host in
    another's show: x buys in b2 with a viewer token of b2."""
    for bc, host in (("b1", "h1"), ("b2", "h2")):
        await BroadcastStore(redis).ensure(bc, title=bc, host=host, products=PRODUCTS)
    url = server.url
    s1 = await open_sale(url, clients, token, "b1", "h1")
    s2 = await open_sale(url, clients, token, "b2", "h2")
    return {"url": url, "s1": s1, "s2": s2, "server": server}


async def test_a_host_token_cannot_touch_the_same_persons_order_in_another_broadcast(two_shows, clients, token):  # noqa: F811 - the fixture imported above
    url = two_shows["url"]
    order = await buy(url, clients, token, "b2", two_shows["s2"], "x", "k-b2")
    host_a = token("host", "b1", "x")  # the same person, host of b1
    status, err = await refund(url, host_a, order["id"], "r1")
    assert (status, err["error"]["code"]) == (404, "ORDER_NOT_FOUND")
    assert (await get(url, f"/api/orders/{order['id']}", host_a))[0] == 404
    missing = await get(url, "/api/orders/o_does_not_exist", host_a)
    assert missing[0] == 404 and missing[1]["error"] == (await get(url, f"/api/orders/{order['id']}", host_a))[1]["error"]
    status, seen = await get(url, f"/api/orders/{order['id']}", token("host", "b2", "h2"))
    assert status == 200 and seen["order"]["state"] == "PAID"  # nothing changed
    # an operator's `*` host token acts on every broadcast
    status, done = await refund(url, token("host", "*", "ops"), order["id"], "r2")
    assert status == 200 and done["order"]["state"] == "REFUNDED"


async def test_a_viewer_token_lists_only_its_broadcasts_orders(two_shows, clients, token):  # noqa: F811 - the fixture imported above
    url = two_shows["url"]
    o1 = await buy(url, clients, token, "b1", two_shows["s1"], "alice", "k1")
    o2 = await buy(url, clients, token, "b2", two_shows["s2"], "alice", "k2")
    status, mine = await get(url, "/api/orders", token("viewer", "b1", "alice"))
    assert status == 200 and [o["id"] for o in mine["orders"]] == [o1["id"]]
    status, err = await get(url, "/api/orders?broadcast=b2", token("viewer", "b1", "alice"))
    assert (status, err["error"]["code"]) == (403, "FORBIDDEN")
    assert (await get(url, f"/api/orders/{o2['id']}", token("viewer", "b1", "alice")))[0] == 404
    status, both = await get(url, "/api/orders", token("viewer", "*", "alice"))
    assert status == 200 and {o["id"] for o in both["orders"]} == {o1["id"], o2["id"]}


async def test_moderators_see_no_contact_data_hosts_do(two_shows, clients, token):  # noqa: F811 - the fixture imported above
    url = two_shows["url"]
    order = await buy(url, clients, token, "b1", two_shows["s1"], "alice", "k1")
    mod = token("moderator", "b1", "mod1")
    status, listed = await get(url, "/api/orders?broadcast=b1", mod)
    assert status == 200 and listed["count"] == 1 and listed["orders"][0]["contact"] is None
    status, one = await get(url, f"/api/orders/{order['id']}", mod)
    assert status == 200 and one["order"]["contact"] is None and one["order"]["total"] == 12900
    assert CONTACT["email"] not in str(listed) + str(one)
    status, host = await get(url, f"/api/orders/{order['id']}", token("host", "b1", "h1"))
    assert status == 200 and host["order"]["contact"]["email"] == CONTACT["email"]
    status, buyer = await get(url, f"/api/orders/{order['id']}", token("viewer", "b1", "alice"))
    assert status == 200 and buyer["order"]["contact"]["email"] == CONTACT["email"]


class NoRefunds(SandboxProvider):
    async def refund(self, charge_id: str) -> bool:
        return False


def make_no_refunds(redis):
    return NoRefunds(redis)


async def test_a_refund_the_provider_refuses_is_answered_refund_failed(redis, make_server, token, clients):  # noqa: F811 - the fixture imported above
    srv = await make_server(payment_provider=f"{__name__}:make_no_refunds")
    await BroadcastStore(redis).ensure("b1", title="b1", host="h1", products=PRODUCTS)
    sale = await open_sale(srv.url, clients, token, "b1", "h1")
    order = await buy(srv.url, clients, token, "b1", sale, "alice", "k1")
    status, err = await refund(srv.url, token("host", "b1", "h1"), order["id"], "r1")
    assert (status, err["error"]["code"]) == (502, "REFUND_FAILED")
    assert err["error"]["order"]["state"] == "REFUND_FAILED"
    status, seen = await get(srv.url, f"/api/orders/{order['id']}", token("host", "b1", "h1"))
    assert seen["order"]["state"] == "REFUND_FAILED"
    _, listed = await get(srv.url, "/api/orders?broadcast=b1", token("host", "b1", "h1"))
    assert listed["paid"] == 0


async def test_sandbox_outside_demo_warns_and_everything_says_livemode_false(make_server, redis, token, clients, caplog):  # noqa: F811 - the fixture imported above
    with caplog.at_level(logging.WARNING, logger="hawker.checkout"):
        srv = await make_server()  # payment_provider="sandbox", demo off
    assert any("test mode" in r.getMessage() for r in caplog.records if r.name == "hawker.checkout")
    await BroadcastStore(redis).ensure("b1", title="b1", host="h1", products=PRODUCTS)
    sale = await open_sale(srv.url, clients, token, "b1", "h1")
    order = await buy(srv.url, clients, token, "b1", sale, "alice", "k1")
    assert order["livemode"] is False
    _, audit = await get(srv.url, f"/api/sales/{sale}/audit", token("host", "b1", "h1"))
    assert audit["livemode"] is False and audit["orders"][0]["livemode"] is False
    viewer = await clients(srv.url, token("viewer", "b1", "bob"))
    snap: Any = await viewer.snapshot()
    assert snap["checkout"]["livemode"] is False


async def test_demo_mode_uses_the_sandbox_without_a_warning(make_server, caplog):
    with caplog.at_level(logging.WARNING, logger="hawker.checkout"):
        await make_server(demo=True)
    assert not [r for r in caplog.records if r.name == "hawker.checkout" and "test mode" in r.getMessage()]


def test_serve_refuses_to_start_without_a_payment_provider() -> None:
    env = {k: v for k, v in os.environ.items() if k != "HAWKER_PAYMENT_PROVIDER"}
    env.update(HAWKER_SECRET=TEST_SECRET, HAWKER_PORT="1")  # a real secret; never gets as far as binding
    out = subprocess.run([sys.executable, "-m", "live", "serve"], env=env, cwd=REPO, text=True,
                         capture_output=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "without a payment provider" in out.stderr and "HAWKER_PAYMENT_PROVIDER" in out.stderr
    assert "Traceback" not in out.stderr
