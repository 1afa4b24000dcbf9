"""Social proof on the hub: the `proof` level after a purchase (a masked first name, or none when
the host turned names off), and who may switch names off."""
from __future__ import annotations

import aiohttp
import pytest

from live.analytics_feed import shown_name
from tests.checkout.conftest import OK_CARD
from tests.hub.conftest import bc, clients, wait_for  # noqa: F401 - fixtures


@pytest.fixture
def config(config):
    return config.with_(analytics_flush_ms=100)


def test_shown_name_is_a_first_name_or_masked():
    assert shown_name("Jiwoo Park") == "Jiwoo"
    assert shown_name("김지우") == "김*우" and shown_name("남궁민수") == "남**수" and shown_name("김지") == "김*"
    assert shown_name("   ") is None and shown_name("") is None
    assert len(shown_name("A" * 40 + " B") or "") == 12


async def _buy(url: str, viewer, token, user: str, sale: str, name: str) -> None:
    r = await viewer.call("sale.reserve", {"sale_id": sale, "qty": 1, "request_id": f"r-{user}"})
    assert r["ok"], r
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/checkout", json={"sale_id": sale, "reservation_id": r["reservation"]["id"],
                                                           "card": OK_CARD, "contact": {"name": name, "email": "a@example.test"}},
                             headers={"Authorization": f"Bearer {token('viewer', 'b1', user)}", "Idempotency-Key": user}) as resp:
            assert resp.status == 201


async def test_purchase_becomes_a_proof_level_and_the_host_can_hide_names(bc, make_server, clients, token):  # noqa: F811 - the fixture imported above
    a, b = await make_server(), await make_server()
    host = await clients(a.url, token("host", "b1", "h1"))
    sale = (await host.call("sale.schedule", {"product_id": "p1", "units": 5, "limit": 1}))["sale"]["id"]
    watcher = await clients(b.url, token("viewer", "b1", "w"))  # on the other node
    buyer = await clients(a.url, token("viewer", "b1", "u1"))
    await watcher.snapshot()
    await _buy(a.url, buyer, token, "u1", sale, "Jiwoo Park")
    proof = await wait_for(lambda: watcher.levels("proof"), what="the proof level")
    assert proof["name"] == "Jiwoo" and proof["sale_id"] == sale and proof["qty"] == 1
    assert "Park" not in str(watcher.events)  # the surname never leaves the server

    viewer_try = await buyer.call("proof.names", {"enabled": False})
    assert viewer_try["error"]["code"] == "FORBIDDEN"
    for bad in ({"enabled": "no"}, {}, {"enabled": False, "x": 1}):
        ack = await host.call("proof.names", bad)
        assert ack["error"]["code"] == "VALIDATION" and ack["error"]["field"] == "enabled", (bad, ack)
    assert (await host.call("proof.names", {"enabled": False})) == {"ok": True, "enabled": False}
    await wait_for(lambda: watcher.of("proof.names"), what="proof.names to reach the viewers")
    buyer2 = await clients(b.url, token("viewer", "b1", "u2"))
    await _buy(b.url, buyer2, token, "u2", sale, "Minji Kim")
    anon = await wait_for(lambda: (p := watcher.levels("proof")) and p["v"] != proof["v"] and p, what="the second proof")
    assert anon["name"] is None
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{a.url}/api/broadcasts/b1/analytics", headers={"Authorization": f"Bearer {token('host', 'b1', 'h1')}"}) as r:
            assert (await r.json())["settings"] == {"buyer_names": False}
