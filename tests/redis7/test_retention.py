"""Memory that follows the business on a running node: a finished sale is compacted and its audit
still passes; orders expire after their retention; the CSV export hands them to the merchant first."""
from __future__ import annotations

import asyncio
import csv
import io
import re

import aiohttp
import pytest

from checkout import Ledger
from checkout.ledger import Order, OrderState
from inventory import keys_for
from shop.broadcasts import BroadcastStore
from tests.checkout.conftest import CONTACT, OK_CARD
from tests.hub.conftest import PRODUCTS, clients  # noqa: F401 - fixture


async def lot_bytes(redis, lot_id: str) -> int:
    return sum([int(await redis.memory_usage(k, samples=0) or 0) for k in keys_for(lot_id)])


async def api(url: str, method: str, path: str, tok: str, **kw) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, url + path, headers={"Authorization": f"Bearer {tok}", **kw.pop("headers", {})},
                                **kw) as r:
            return r.status, await r.text()


async def sell(url: str, clients, token, sale: str, user: str) -> dict:  # noqa: F811 - the fixture imported above
    viewer = await clients(url, token("viewer", "b1", user))
    ack = await viewer.call("sale.reserve", {"sale_id": sale, "qty": 1, "request_id": "req-" + re.sub(r"[^A-Za-z0-9_-]", "_", user)})
    assert ack["ok"], ack
    rid = ack["reservation"]["id"]
    pay = await viewer.call("checkout.pay", {"sale_id": sale, "reservation_id": rid, "card": OK_CARD,
                                             "contact": CONTACT, "idempotency_key": f"pay-{user}"})
    assert pay["ok"], pay
    return pay["order"]


@pytest.fixture
async def node(redis, make_server):
    await BroadcastStore(redis).ensure("b1", title="Drop", host="h1", products=PRODUCTS)
    return await make_server(sale_compact_after_s=1)


async def test_a_finished_sale_is_compacted_and_its_audit_still_passes(node, redis, clients, token):  # noqa: F811 - the fixture imported above
    host = await clients(node.url, token("host", "b1", "h1"))
    ack = await host.call("sale.schedule", {"product_id": "p1", "units": 3, "limit": 1, "hold_s": 60, "duration_s": 2})
    assert ack["ok"], ack
    sale = ack["sale"]["id"]
    order = await sell(node.url, clients, token, sale, "alice")
    for i in range(20):  # viewers who reserved and gave the units back
        viewer = await clients(node.url, token("viewer", "b1", f"v{i}"))
        held = await viewer.call("sale.reserve", {"sale_id": sale, "qty": 1, "request_id": f"r{i}"})
        assert held["ok"], held
        assert (await viewer.call("sale.release", {"sale_id": sale,
                                                   "reservation_id": held["reservation"]["id"]}))["ok"]
    inv = node.app["node"].inventory
    before = await lot_bytes(redis, sale)
    compactor = node.app["node"].compactor
    # closes by itself after 2 s; compacted 1 s after its last stock change
    deadline = asyncio.get_running_loop().time() + 30
    while (await inv.audit(sale)).compacted_at_ms is None:
        assert asyncio.get_running_loop().time() < deadline, "never compacted"
        await compactor.round()
        await asyncio.sleep(0.2)
    after = await lot_bytes(redis, sale)
    assert after < before / 2, (before, after)
    status, text = await api(node.url, "GET", f"/api/sales/{sale}/audit", token("host", "b1", "h1"))
    assert status == 200, text
    import orjson

    audit = orjson.loads(text)
    assert audit["inventory_audit"] == {"ok": True, "problems": []}
    assert audit["levels"] == {"total": 3, "available": 2, "held": 0, "sold": 1, "waitlist": 0}
    assert [(r["state"], r["order_id"]) for r in audit["reservations"]] == [("SOLD", order["id"])]
    assert [o["id"] for o in audit["orders"]] == [order["id"]]


async def test_orders_expire_after_their_retention(redis):
    ledger = Ledger(redis, retention_s=1)
    forever = Ledger(redis)

    def order(i: int, created_at: int, broadcast: str = "b1") -> Order:
        return Order(id=f"o{i}", user="alice", broadcast=broadcast, sale_id="s1", reservation_id=f"r{i}", qty=1,
                     unit_price=100, total=100, currency="EUR", state=OrderState.PAID, charge_id=f"c{i}",
                     created_at=created_at, updated_at=created_at)

    sec, usec = await redis.time()
    now = sec * 1000 + usec // 1000
    await ledger.create(order(1, now))
    assert 0 < await redis.pttl("order:o1") <= 1000
    assert 0 < await redis.pttl("order:by-res:s1:r1") <= 1000
    assert 0 < await redis.pttl("orders:bc:b1") <= 1000
    await ledger.set_state("o1", OrderState.REFUNDED, now_ms=now)  # a refund keeps the expiry
    assert 0 < await redis.pttl("order:o1") <= 1000
    await forever.create(order(9, now, broadcast="b9"))
    assert await redis.ttl("order:o9") == -1  # no retention: kept
    await asyncio.sleep(1.3)
    assert await ledger.get("o1") is None and await redis.exists("order:by-res:s1:r1") == 0
    assert await redis.exists("orders:bc:b1", "orders:user:alice", "orders:lot:s1") < 3  # idle indexes expire
    # an index that keeps getting orders drops the expired ids as new ones come
    await ledger.create(order(2, now + 1300))
    assert [m.decode() for m in await redis.zrange("orders:bc:b1", 0, -1)] == ["o2"]
    assert [o.id for o in await ledger.of_broadcast("b1")] == ["o2"]
    assert await forever.get("o9") is not None
    with pytest.raises(ValueError):
        Ledger(redis, retention_s=0)


async def test_csv_export_of_a_broadcasts_orders(node, redis, clients, token):  # noqa: F811 - the fixture imported above
    host = await clients(node.url, token("host", "b1", "h1"))
    ack = await host.call("sale.schedule", {"product_id": "p1", "units": 5, "limit": 1, "hold_s": 60})
    sale = ack["sale"]["id"]
    first = await sell(node.url, clients, token, sale, "alice")
    second = await sell(node.url, clients, token, sale, "=HYPERLINK(1)")  # a formula for a user id
    path = "/api/broadcasts/b1/orders.csv"
    status, text = await api(node.url, "GET", path, token("host", "b1", "h1"))
    assert status == 200, text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["id"] for r in rows] == [first["id"], second["id"]]
    assert rows[0]["user"] == "alice" and rows[0]["state"] == "PAID" and rows[0]["sale_id"] == sale
    assert int(rows[0]["total"]) == first["total"] and rows[0]["currency"] == first["currency"]
    assert rows[1]["user"] == "'=HYPERLINK(1)"  # a spreadsheet shows it, never runs it
    status, text = await api(node.url, "GET", f"{path}?since={second['created_at']}", token("host", "b1", "h1"))
    assert [r["id"] for r in csv.DictReader(io.StringIO(text))] == [second["id"]]
    for tok, code in ((token("viewer", "b1", "alice"), 403), (token("moderator", "b1", "m"), 403),
                      (token("host", "b2", "h2"), 403), ("nope", 401)):
        status, text = await api(node.url, "GET", path, tok)
        assert status == code, text
        assert "alice" not in text
    status, text = await api(node.url, "GET", f"{path}?since=yesterday", token("host", "b1", "h1"))
    assert status == 422 and '"VALIDATION"' in text
