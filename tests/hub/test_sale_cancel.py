"""A cancelled sale sells nothing more (issue 13 row 4): `sale.cancel` frees every hold and the
waitlist, telling each of those people; a held unit cannot be paid afterwards; no `sale.soldout`
(socket event or webhook) follows the cancel; cancelling a closed sale changes nothing."""
from __future__ import annotations

import asyncio

import aiohttp

from tests.checkout.conftest import CONTACT, OK_CARD
from tests.hub.conftest import wait_for


async def pay(url: str, tok: str, sale: str, rid: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/api/checkout", json={"sale_id": sale, "reservation_id": rid, "card": OK_CARD,
                                                          "contact": CONTACT},
                             headers={"Authorization": f"Bearer {tok}", "Idempotency-Key": "k-" + rid}) as r:
            return r.status, await r.json()


async def test_cancel_frees_holds_and_waitlist_and_refuses_payment(server, bc, clients, token, redis):
    host = await clients(server.url, token("host", "b1", "h1"))
    alice = await clients(server.url, token("viewer", "b1", "alice"))
    bob = await clients(server.url, token("viewer", "b1", "bob"))
    for c in (host, alice, bob):
        await c.snapshot()
    sale = (await host.call("sale.schedule", {"product_id": "p1", "units": 1, "limit": 1, "hold_s": 60}))["sale"]["id"]
    held = await alice.call("sale.reserve", {"sale_id": sale, "request_id": "a1"})
    assert held["ok"], held
    rid = held["reservation"]["id"]
    assert (await bob.call("sale.waitlist", {"sale_id": sale}))["ok"]

    ack = await host.call("sale.cancel", {"sale_id": sale})
    assert ack["ok"], ack
    [told] = await wait_for(lambda: alice.of("hold.cancelled"), what="hold.cancelled")
    assert told["sale_id"] == sale and told["reservation"]["id"] == rid and told["reservation"]["state"] == "CANCELLED"
    [waiting] = await wait_for(lambda: bob.of("waitlist.cancelled"), what="waitlist.cancelled")
    assert waiting["sale_id"] == sale

    status, err = await pay(server.url, token("viewer", "b1", "alice"), sale, rid)
    assert (status, err["error"]["code"]) == (409, "SALE_CANCELLED")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/api/sales/{sale}/audit",
                            headers={"Authorization": f"Bearer {token('host', 'b1', 'h1')}"}) as r:
            audit = await r.json()
    assert audit["orders"] == [] and audit["inventory_audit"]["ok"] is True
    assert audit["levels"] == {"total": 1, "available": 1, "held": 0, "sold": 0, "waitlist": 0}
    assert audit["lot"]["state"] == "CANCELLED"

    await asyncio.sleep(1.0)  # the watcher's rounds after the cancel
    for c in (alice, bob, host):
        names = [e for e, _, _ in c.events]
        assert "sale.closed" in names
        assert "sale.soldout" not in names[names.index("sale.closed"):], names

    again = await host.call("sale.cancel", {"sale_id": sale})
    assert again["ok"] is False and again["error"]["code"] == "SALE_CLOSED"


async def test_no_soldout_webhook_for_a_cancelled_sale_read_late(server, bc, clients, token, redis):
    """The stock watcher may read a sell-out event only after the cancel: it must not announce it."""
    host = await clients(server.url, token("host", "b1", "h1"))
    alice = await clients(server.url, token("viewer", "b1", "alice"))
    sale = (await host.call("sale.schedule", {"product_id": "p1", "units": 1, "limit": 1, "hold_s": 60}))["sale"]["id"]
    assert (await alice.call("sale.reserve", {"sale_id": sale, "request_id": "a1"}))["ok"]
    assert (await host.call("sale.cancel", {"sale_id": sale}))["ok"]
    api = server.app["node"].checkout
    marker = f"{{webhooks}}:emitted:sale.soldout:{sale}"
    await redis.delete(marker)  # as if the watcher had not reached the sell-out before the cancel
    events = await api.sales.inv.read_events(sale)
    assert any(e.type == "reserved" and e.levels.available == 0 for e in events)
    for ev in events:
        await api.on_stock_event("b1", ev)
    assert not await redis.exists(marker)


async def test_cancelling_a_closed_sale_changes_nothing(server, bc, clients, token, redis):
    host = await clients(server.url, token("host", "b1", "h1"))
    alice = await clients(server.url, token("viewer", "b1", "alice"))
    sale = (await host.call("sale.schedule", {"product_id": "p1", "units": 2, "limit": 1, "hold_s": 60,
                                              "duration_s": 1}))["sale"]["id"]
    held = await alice.call("sale.reserve", {"sale_id": sale, "request_id": "a1"})
    assert held["ok"], held
    await wait_for(lambda: host.of("sale.closed"), timeout=30, what="sale.closed at its end")
    api = server.app["node"].checkout
    before = await api.sales.inv.get_reservation(sale, held["reservation"]["id"])
    refused = await host.call("sale.cancel", {"sale_id": sale})
    assert refused["ok"] is False and refused["error"]["code"] == "SALE_CLOSED"
    assert await api.sales.inv.get_reservation(sale, held["reservation"]["id"]) == before  # still HELD
    assert (await api.sales.inv.get_lot(sale)).state.value == "CLOSED"
