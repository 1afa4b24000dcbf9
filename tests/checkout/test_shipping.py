"""Checkout a merchant can fulfil: a product that ships needs a shipping address and phone, laid
out by country (Korean addresses included); the order and its webhook carry it."""
from __future__ import annotations

import aiohttp
import pytest

from checkout.shipping import ShippingInvalid, validate_shipping
from shop.broadcasts import BroadcastStore
from tests.checkout.conftest import CONTACT, OK_CARD
from tests.checkout.hooks import SECRET
from tests.hub.conftest import clients  # noqa: F401 - fixture
from tests.waiting import wait_for as wait_until

KR = {"name": "김지우", "phone": "010-1234-5678", "country": "KR", "postal_code": "06236",
      "line1": "서울특별시 강남구 테헤란로 152", "line2": "강남파이낸스센터 20층"}
US = {"name": "Jiwoo Park", "phone": "+1 415 555 0100", "country": "us", "line1": "1 Market St", "city": "San Francisco",
      "region": "CA", "postal_code": "94105"}


@pytest.fixture
def config(config):
    return config.with_(webhook_allow_private=True, webhook_http_hosts="127.0.0.1")


def _field(data, required=True) -> str:
    with pytest.raises(ShippingInvalid) as exc:
        validate_shipping(data, required=required)
    return exc.value.field


def test_country_rules():
    assert validate_shipping(KR, required=True) == KR
    assert validate_shipping(US, required=True)["country"] == "US"
    assert validate_shipping(None, required=False) == {}
    assert _field(None) == "shipping" and _field({}) == "shipping" and _field("Seoul") == "shipping"
    assert _field({**KR, "postal_code": "135-080"}) == "shipping.postal_code"  # the old 6-digit form
    assert _field({k: v for k, v in KR.items() if k != "postal_code"}) == "shipping.postal_code"
    assert _field({k: v for k, v in KR.items() if k != "line1"}) == "shipping.line1"
    assert _field({**KR, "phone": "call me"}) == "shipping.phone"
    assert _field({k: v for k, v in US.items() if k != "region"}) == "shipping.region"
    assert _field({**US, "postal_code": "9410"}) == "shipping.postal_code"
    assert _field({**KR, "country": "Korea"}) == "shipping.country"
    assert _field({**KR, "floor": "3"}) == "shipping"
    assert _field({**KR, "line1": "x" * 201}) == "shipping.line1"
    assert _field({**KR, "line2": "a\x00b"}) == "shipping.line2"
    jp = {"name": "山田太郎", "phone": "090-1234-5678", "country": "JP", "postal_code": "150-0002", "region": "東京都",
          "city": "渋谷区", "line1": "渋谷2-21-1"}
    assert validate_shipping(jp, required=True)["postal_code"] == "150-0002"
    other = {"name": "Ana", "phone": "+351 912 345 678", "country": "PT", "line1": "Rua Augusta 1", "city": "Lisboa"}
    assert validate_shipping(other, required=True)["country"] == "PT"  # elsewhere: a city, postal code optional
    assert _field({k: v for k, v in other.items() if k != "city"}) == "shipping.city"


async def test_a_shipped_product_needs_an_address_and_the_order_and_webhook_carry_it(
        redis, server, clients, token, receiver):  # noqa: F811 - clients: the fixture imported above
    await BroadcastStore(redis).ensure("b1", title="Drop", host="h1", products=[
        {"id": "shirt", "title": "Linen shirt", "price": 12900, "currency": "KRW", "ships": True},
        {"id": "ebook", "title": "Style e-book", "price": 5000, "currency": "KRW"}])
    host = await clients(server.url, token("host", "b1", "h1"))
    shirt = (await host.call("sale.schedule", {"product_id": "shirt", "units": 3, "limit": 1}))["sale"]["id"]
    ebook = (await host.call("sale.schedule", {"product_id": "ebook", "units": 3, "limit": 1}))["sale"]["id"]
    rec = receiver
    vtok = token("viewer", "b1", "jiwoo")
    viewer = await clients(server.url, vtok)
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/webhooks", json={"url": rec.url, "secret": SECRET},
                             headers={"Authorization": f"Bearer {token('host', 'b1', 'h1')}"}) as r:
            assert r.status == 201

        async def pay(sale: str, rid: str, key: str, **extra) -> tuple[int, dict]:
            async with http.post(server.url + "/api/checkout", headers={"Authorization": f"Bearer {vtok}", "Idempotency-Key": key},
                                 json={"sale_id": sale, "reservation_id": rid, "card": OK_CARD, "contact": CONTACT, **extra}) as r:
                return r.status, await r.json()

        rid = (await viewer.call("sale.reserve", {"sale_id": shirt, "request_id": "r1"}))["reservation"]["id"]
        status, body = await pay(shirt, rid, "k1")
        assert status == 422 and body["error"]["code"] == "VALIDATION" and body["error"]["field"] == "shipping"
        status, body = await pay(shirt, rid, "k2", shipping={**KR, "postal_code": "1234"})
        assert status == 422 and body["error"]["field"] == "shipping.postal_code"
        audit = await (await http.get(f"{server.url}/api/sales/{shirt}/audit",
                                      headers={"Authorization": f"Bearer {token('host', 'b1', 'h1')}"})).json()
        assert audit["orders"] == [] and audit["reservations"][0]["state"] == "HELD"  # nothing changed
        status, body = await pay(shirt, rid, "k3", shipping=KR)
        assert status == 201, body
        assert body["order"]["shipping"] == KR
        # over the socket too, and a product that does not ship needs none
        rid2 = (await viewer.call("sale.reserve", {"sale_id": ebook, "request_id": "r2"}))["reservation"]["id"]
        ack = await viewer.call("checkout.pay", {"sale_id": ebook, "reservation_id": rid2, "card": OK_CARD, "contact": CONTACT})
        assert ack["ok"], ack
        assert ack["order"]["shipping"] == {}
        host_auth = {"Authorization": f"Bearer {token('host', 'b1', 'h1')}"}
        async with http.get(server.url + "/api/orders?broadcast=b1", headers=host_auth) as r:
            orders = {o["sale_id"]: o for o in (await r.json())["orders"]}
        assert orders[shirt]["shipping"]["line1"] == KR["line1"]
    await wait_until(lambda: len([e for e in rec.accepted if e["type"] == "order.created"]) >= 2,
                     what=f"two order.created, got {rec.accepted}")
    hooked = {e["data"]["order"]["sale_id"]: e["data"]["order"] for e in rec.accepted if e["type"] == "order.created"}
    assert hooked[shirt]["shipping"] == KR and hooked[ebook]["shipping"] == {}
    assert rec.bad_signatures == 0


async def test_products_say_whether_they_ship(server, token, redis):
    async with aiohttp.ClientSession() as http:
        hdr = {"Authorization": f"Bearer {token('host', 'b9', 'h1')}"}
        async with http.post(server.url + "/api/broadcasts", headers=hdr, json={"id": "b9", "title": "T", "products": [
                {"id": "p", "title": "P", "price": 1, "currency": "KRW", "ships": "yes"}]}) as r:
            assert r.status == 422 and (await r.json())["error"]["field"] == "products[0].ships"
        async with http.post(server.url + "/api/broadcasts", headers=hdr, json={"id": "b9", "title": "T", "products": [
                {"id": "p", "title": "P", "price": 1, "currency": "KRW", "ships": True}]}) as r:
            assert r.status == 201 and (await r.json())["products"][0]["ships"] is True
        async with http.patch(server.url + "/api/broadcasts/b9/products/p", headers=hdr, json={"ships": False}) as r:
            assert r.status == 200 and (await r.json())["ships"] is False
