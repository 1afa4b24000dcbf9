"""Personal data of buyers (issue 13 row 9): contact data and dead letters expire; an operator can
export and erase one person (chat, orders' contact, reservations' linkage, idempotency records)
and the merchant hears `user.erased`; the sale audit still adds up afterwards."""
from __future__ import annotations

import asyncio

import aiohttp

from checkout.webhooks import DEAD
from shop.broadcasts import BroadcastStore
from tests.checkout.conftest import CONTACT
from tests.checkout.hooks import SECRET
from tests.checkout.test_api import config, get  # noqa: F401 - config: loopback receivers allowed
from tests.checkout.test_trust_api import buy, open_sale
from tests.hub.conftest import PRODUCTS, clients  # noqa: F401 - fixture
from tests.waiting import wait_for as wait_until

DAY_MS = 24 * 3600 * 1000


async def call(method: str, url: str, tok: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, url, headers={"Authorization": f"Bearer {tok}"}) as r:
            return r.status, await r.json()


async def test_contact_data_expires_after_the_retention_totals_stay(redis, server, token, clients):  # noqa: F811 - the fixture imported above
    await BroadcastStore(redis).ensure("b1", title="b1", host="h1", products=PRODUCTS)
    sale = await open_sale(server.url, clients, token, "b1", "h1")
    order = await buy(server.url, clients, token, "b1", sale, "alice", "k1")
    privacy = server.app["node"].privacy
    now = await privacy.inv.server_time_ms()
    assert await privacy.retention_round(now_ms=now + 89 * DAY_MS) == (0, 0)  # default: 90 days
    host = token("host", "b1", "h1")
    assert (await get(server.url, f"/api/orders/{order['id']}", host))[1]["order"]["contact"] == CONTACT
    assert await privacy.retention_round(now_ms=now + 91 * DAY_MS) == (1, 0)
    _, seen = await get(server.url, f"/api/orders/{order['id']}", host)
    assert seen["order"]["contact"] == {} and seen["order"]["contact_removed"] == "retention"
    assert (seen["order"]["total"], seen["order"]["state"], seen["order"]["user"]) == (12900, "PAID", "alice")
    _, audit = await get(server.url, f"/api/sales/{sale}/audit", host)
    assert audit["inventory_audit"]["ok"] and [o["id"] for o in audit["orders"]] == [order["id"]]


async def test_dead_letters_expire(redis, make_server, receiver):
    """A delivery that failed for good keeps its body (order contact data): it goes after the retention."""
    srv = await make_server(webhook_max_attempts=1)
    receiver.down = True
    hooks = srv.app["node"].checkout.webhooks
    await hooks.register("b9", receiver.url, SECRET)
    await hooks.emit("sale.soldout", "b9", {"sale_id": "s1"}, event_id="e1")
    for _ in range(300):
        if await hooks.dead_letters("b9"):
            break
        await asyncio.sleep(0.05)
    assert len(await hooks.dead_letters("b9")) == 1
    privacy = srv.app["node"].privacy
    now = await privacy.inv.server_time_ms()
    assert await privacy.retention_round(now_ms=now + 29 * DAY_MS) == (0, 0)  # default: 30 days
    assert len(await hooks.dead_letters("b9")) == 1
    assert await privacy.retention_round(now_ms=now + 31 * DAY_MS) == (0, 1)
    assert await hooks.dead_letters("b9") == [] and await redis.hlen(DEAD) == 0


async def test_operator_exports_and_erases_one_person(redis, server, token, clients, receiver):  # noqa: F811 - the fixture imported above
    url = server.url
    for bc, host in (("b1", "h1"), ("b2", "h2")):
        await BroadcastStore(redis).ensure(bc, title=bc, host=host, products=PRODUCTS)
    s1 = await open_sale(url, clients, token, "b1", "h1")
    order = await buy(url, clients, token, "b1", s1, "alice", "k1")
    bob_order = await buy(url, clients, token, "b1", s1, "bob", "k2")
    alice = await clients(url, token("viewer", "b2", "alice"))
    said = await alice.call("chat.send", {"text": "hello from alice", "request_id": "c1"})
    assert said["ok"], said
    bob = await clients(url, token("viewer", "b2", "bob"))
    assert (await bob.call("chat.send", {"text": "hi from bob", "request_id": "c2"}))["ok"]
    waiting = await clients(url, token("viewer", "b1", "alice"))
    held = await waiting.call("sale.reserve", {"sale_id": s1, "request_id": "hold-2"})  # a live hold too
    assert held["ok"], held
    api = server.app["node"].checkout
    await api.webhooks.register("b1", receiver.url, SECRET, ["user.erased"])

    operator = token("host", "*", "ops")
    for tok in (token("host", "b1", "h1"), token("moderator", "*", "m"), token("viewer", "*", "alice")):
        assert (await call("GET", f"{url}/api/users/alice/export", tok))[0] == 403
        assert (await call("DELETE", f"{url}/api/users/alice", tok))[0] == 403
    status, export = await call("GET", f"{url}/api/users/alice/export", operator)
    assert status == 200 and export["user"] == "alice"
    assert [o["id"] for o in export["orders"]] == [order["id"]] and export["orders"][0]["contact"] == CONTACT
    assert [m["text"] for m in export["chat"]] == ["hello from alice"] and export["chat"][0]["broadcast"] == "b2"
    assert sorted(r["state"] for r in export["reservations"]) == ["HELD", "SOLD"]
    assert await redis.keys("idem:{alice}:*")

    status, done = await call("DELETE", f"{url}/api/users/alice", operator)
    assert status == 200, done
    assert done["erased"]["orders"] == 1 and done["erased"]["chat_messages"] == 1
    assert done["erased"]["reservations"] == 2 and done["erased"]["idempotency_records"] >= 1
    pseudonym = done["pseudonym"]
    assert pseudonym.startswith("erased-") and sorted(done["told"]) == ["b1", "b2"]

    # nothing of alice is left to export; bob is untouched
    status, empty = await call("GET", f"{url}/api/users/alice/export", operator)
    assert status == 200 and empty["orders"] == [] and empty["chat"] == [] and empty["reservations"] == []
    assert not await redis.keys("idem:{alice}:*")
    _, seen = await get(url, f"/api/orders/{order['id']}", token("host", "b1", "h1"))
    assert seen["order"]["contact"] == {} and seen["order"]["user"] == pseudonym
    assert seen["order"]["contact_removed"] == "erasure" and seen["order"]["total"] == 12900
    _, bobs = await get(url, f"/api/orders/{bob_order['id']}", token("host", "b1", "h1"))
    assert bobs["order"]["contact"] == CONTACT
    history = await redis.xrange("chat:{b2}:msgs")
    texts = [f[b"t"].decode() for _, f in history]
    assert "hello from alice" not in texts and "hi from bob" in texts

    # the audit still adds up: counts stay, under the pseudonym
    _, audit = await get(url, f"/api/sales/{s1}/audit", token("host", "b1", "h1"))
    assert audit["inventory_audit"]["ok"], audit["inventory_audit"]
    assert audit["levels"]["sold"] == 2 and audit["levels"]["held"] == 1
    assert "alice" not in {r["user"] for r in audit["reservations"]} | {o["user"] for o in audit["orders"]}
    assert pseudonym in {r["user"] for r in audit["reservations"]}

    # the merchant is told, to erase its own copies
    await wait_until(lambda: receiver.accepted)
    [erased] = receiver.accepted
    assert erased["type"] == "user.erased" and erased["broadcast"] == "b1"
    assert erased["data"]["user"] == "alice" and erased["data"]["orders"] == [order["id"]]

    # bad input changes nothing
    assert (await call("DELETE", f"{url}/api/users/" + "x" * 65, operator))[0] == 422
