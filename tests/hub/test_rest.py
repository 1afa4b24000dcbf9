"""REST for hosts: broadcasts and products, validation, scopes, idempotency, live updates."""
from __future__ import annotations

import aiohttp
import pytest

from shop.broadcasts import BroadcastStore
from tests.hub.conftest import PRODUCTS, wait_for


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


def auth(t: str) -> dict:
    return {"Authorization": f"Bearer {t}"}


async def test_create_list_update_and_products(server, http, token, clients, redis):
    admin = auth(token("host", "*", "op"))
    body = {"id": "show1", "title": "Night market", "scheduled_start": 1_900_000_000_000, "products": PRODUCTS}
    r = await http.post(server.url + "/api/broadcasts", json=body, headers=admin)
    assert r.status == 201, await r.text()
    created = await r.json()
    assert created["state"] == "scheduled" and created["host"] == "op" and created["pinned"] is None
    assert [p["id"] for p in created["products"]] == ["p1", "p2"] and created["products"][0]["price"] == 12900
    r = await http.post(server.url + "/api/broadcasts", json=body, headers=admin)
    assert r.status == 409 and (await r.json())["error"]["code"] == "BROADCAST_EXISTS"

    r = await http.get(server.url + "/api/broadcasts", headers=admin)
    assert [b["id"] for b in (await r.json())["broadcasts"]] == ["show1"]

    viewer = await clients(server.url, token("viewer", "show1", "u1"))
    await viewer.snapshot()
    host = auth(token("host", "show1", "h"))
    r = await http.patch(server.url + "/api/broadcasts/show1", json={"title": "Night market II"}, headers=host)
    assert r.status == 200 and (await r.json())["title"] == "Night market II"
    [upd] = await wait_for(lambda: viewer.of("broadcast.updated"), what="broadcast.updated")
    assert upd["title"] == "Night market II"

    p3 = {"id": "p3", "title": "Fan", "price": 3000, "currency": "KRW", "image_url": "/img/fan.png"}
    r = await http.post(server.url + "/api/broadcasts/show1/products", json=p3, headers=host)
    assert r.status == 201 and (await r.json())["position"] == 3
    r = await http.patch(server.url + "/api/broadcasts/show1/products/p3", json={"price": 2500}, headers=host)
    assert r.status == 200 and (await r.json())["price"] == 2500 and (await r.json())["title"] == "Fan"
    await wait_for(lambda: [m for m in viewer.of("product.updated") if m["product"]["price"] == 2500], what="product.updated")
    bc = await BroadcastStore(redis).get("show1")
    assert bc.product("p3").price == 2500

    r = await http.get(server.url + "/api/broadcasts/show1", headers=auth(token("viewer", "show1", "u1")))
    assert r.status == 200 and len((await r.json())["products"]) == 3


@pytest.mark.parametrize("body,field", [
    ({"id": "x", "title": ""}, "title"),
    ({"id": "bad id!", "title": "T"}, "id"),
    ({"id": "x", "title": "T", "scheduled_start": "soon"}, "scheduled_start"),
    ({"id": "x", "title": "T", "products": [{"id": "p", "title": "P", "price": -1, "currency": "KRW"}]}, "products[0].price"),
    ({"id": "x", "title": "T", "products": [{"id": "p", "title": "P", "price": 1, "currency": "krw"}]}, "products[0].currency"),
    ({"id": "x", "title": "T", "products": [{"id": "p", "title": "P", "price": 1.5, "currency": "KRW"}]}, "products[0].price"),
    ({"id": "x", "title": "T",
      "products": [{"id": "p", "title": "P", "price": 1, "currency": "KRW", "image_url": "javascript:x"}]},
     "products[0].image_url"),
    ({"id": "x", "title": "T", "colour": "red"}, "colour"),
])
async def test_validation_errors_name_the_field_and_change_nothing(server, http, token, redis, body, field):
    r = await http.post(server.url + "/api/broadcasts", json=body, headers=auth(token("host", "*", "op")))
    assert r.status == 422
    err = (await r.json())["error"]
    assert err["code"] == "VALIDATION" and err["field"] == field and err["message"]
    assert await BroadcastStore(redis).list() == []


async def test_scopes_and_roles(server, http, token, bc):
    r = await http.post(server.url + "/api/broadcasts", json={"title": "T"})
    assert r.status == 401 and (await r.json())["error"]["code"] == "TOKEN_MISSING"
    r = await http.post(server.url + "/api/broadcasts", json={"id": "z", "title": "T"}, headers=auth(token("viewer", "*", "u")))
    assert r.status == 403
    r = await http.post(server.url + "/api/broadcasts", json={"id": "other", "title": "T"}, headers=auth(token("host", "mine", "h")))
    assert r.status == 403
    r = await http.post(server.url + "/api/broadcasts", json={"title": "Mine"}, headers=auth(token("host", "mine", "h")))
    assert r.status == 201 and (await r.json())["id"] == "mine"  # a host token's own broadcast by default
    r = await http.patch(server.url + "/api/broadcasts/b1", json={"title": "hijack"}, headers=auth(token("host", "b2", "h2")))
    assert r.status == 403
    r = await http.get(server.url + "/api/broadcasts", headers=auth(token("host", "b2", "h2")))
    assert [b["id"] for b in (await r.json())["broadcasts"]] == ["b2"]
    r = await http.patch(server.url + "/api/broadcasts/b1/products/nope", json={"price": 1}, headers=auth(token("host", "b1", "h1")))
    assert r.status == 404 and (await r.json())["error"]["code"] == "PRODUCT_NOT_FOUND"
    r = await http.post(server.url + "/api/broadcasts/b1/products", json=PRODUCTS[0], headers=auth(token("host", "b1", "h1")))
    assert r.status == 409 and (await r.json())["error"]["code"] == "PRODUCT_EXISTS"


async def test_idempotency_key_replays_the_first_answer(server, http, token, redis):
    h = {**auth(token("host", "*", "op")), "Idempotency-Key": "k-1"}
    first = await http.post(server.url + "/api/broadcasts", json={"id": "s1", "title": "One"}, headers=h)
    again = await http.post(server.url + "/api/broadcasts", json={"id": "s1", "title": "One"}, headers=h)
    assert first.status == again.status == 201
    assert await first.json() == await again.json() and again.headers.get("Idempotent-Replayed") == "true"


async def test_an_idempotency_key_reused_on_another_request_is_refused_and_changes_nothing(server, http, token):
    """The broadcasts door uses the one idempotency protocol (live.idempotent), as checkout does:
    before, a key reused with another body silently replayed the first answer."""
    h = {**auth(token("host", "*", "op")), "Idempotency-Key": "k-2"}
    first = await http.post(server.url + "/api/broadcasts", json={"id": "s2", "title": "Two"}, headers=h)
    assert first.status == 201
    other = await http.post(server.url + "/api/broadcasts", json={"id": "s3", "title": "Three"}, headers=h)
    assert other.status == 422 and (await other.json())["error"]["code"] == "IDEMPOTENCY_MISMATCH"
    listed = await http.get(server.url + "/api/broadcasts", headers=auth(token("host", "*", "op")))
    assert "s3" not in [b["id"] for b in (await listed.json())["broadcasts"]]
    # keys are per user: another host's same key is a request of its own
    mine = await http.post(server.url + "/api/broadcasts", json={"id": "s3", "title": "Three"},
                           headers={**auth(token("host", "*", "op2")), "Idempotency-Key": "k-2"})
    assert mine.status == 201 and "Idempotent-Replayed" not in mine.headers


async def test_concurrent_retries_with_one_key_run_the_change_once(server, http, token, clients, bc):
    """A double click (or a client retrying before the first answer): one edit, one
    `product.updated` to viewers; the other answer is the replay or IDEMPOTENCY_IN_PROGRESS."""
    import asyncio

    viewer = await clients(server.url, token("viewer", "b1", "watcher"))
    await viewer.snapshot()
    h = {**auth(token("host", "b1", "h1")), "Idempotency-Key": "edit-1"}

    async def edit() -> tuple[int, dict]:
        async with http.patch(server.url + "/api/broadcasts/b1/products/p1", json={"price": 777}, headers=h) as r:
            return r.status, await r.json()

    answers = await asyncio.gather(*(edit() for _ in range(8)))
    codes = sorted(a[1].get("error", {}).get("code", "OK") for a in answers)
    assert set(codes) <= {"OK", "IDEMPOTENCY_IN_PROGRESS"} and "OK" in codes, answers
    assert all(a[1]["price"] == 777 for a in answers if a[0] == 200)
    await asyncio.sleep(0.3)
    assert len(viewer.of("product.updated")) == 1


async def test_ensure_is_idempotent_and_keeps_edits(redis):
    store = BroadcastStore(redis)
    await store.ensure("demo", title="Demo", host="demo-host", products=PRODUCTS)
    await store.edit_product("demo", "p1", {"price": 100})
    again = await store.ensure("demo", title="Demo", host="demo-host",
                               products=[*PRODUCTS, {"id": "p9", "title": "New", "price": 5, "currency": "KRW"}])
    assert [p.id for p in again.products] == ["p1", "p2", "p9"] and again.product("p1").price == 100
