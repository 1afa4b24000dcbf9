"""One id rule at every door (domain/validate.py ID_RE, docs/protocol.md "Ids"): 1-64 of
[A-Za-z0-9_-]. A malformed id - with a '.', a ':', 65 characters, a trailing newline - is refused
the same way by every socket command and every JSON endpoint that takes one: `VALIDATION` naming the
field, before anything is looked up, and nothing changes. Before domain/, chat allowed '.' and ':' in
a request_id, the hub's sale/auction commands any printable text, checkout any 1-64 characters (a
path id was cut to 64 and looked up)."""
from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from domain.validate import ID_RE
from tests.hub.conftest import wait_for

BAD_IDS = ["a.b", "sale:1", "x" * 65, "ok\n"]


def _refused(ack: Any, field: str) -> None:
    assert ack["ok"] is False, ack
    assert ack["error"]["code"] == "VALIDATION" and ack["error"]["field"] == field, ack


def test_the_rule_fits_every_id_the_product_issues() -> None:
    import uuid

    from checkout.ulid import new_ulid
    from live.sockets.auctions import new_auction_id
    from shop.sales import new_sale_id

    issued = [uuid.uuid4().hex, "o_" + new_ulid(), "we_" + new_ulid(), "r17", new_sale_id("b1", "h1", None),
              new_auction_id("b1", "h1", "req-1") + "-w2", "demo-sneaker", "b1", "guest-0a1b2c3d4e5f"]
    assert all(ID_RE.match(i) for i in issued), issued
    assert not any(ID_RE.match(b) for b in BAD_IDS)


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_every_socket_command_refuses_a_bad_id_the_same_way(make_server, bc, clients, token, bad):
    srv = await make_server()
    host = await clients(srv.url, token("host", "b1", "h1"))
    viewer = await clients(srv.url, token("viewer", "b1", "v1"))
    await host.snapshot()
    await viewer.snapshot()
    sale = await host.call("sale.schedule", {"product_id": "p1", "units": 3, "limit": 1, "hold_s": 60})
    assert sale["ok"], sale
    sale_id = sale["sale"]["id"]
    await wait_for(lambda: viewer.of("sale.scheduled"), what="sale.scheduled")

    _refused(await viewer.call("sale.reserve", {"sale_id": bad, "request_id": "r1"}), "sale_id")
    _refused(await viewer.call("sale.reserve", {"sale_id": sale_id, "request_id": bad}), "request_id")
    _refused(await viewer.call("chat.send", {"text": "hello", "request_id": bad}), "request_id")
    _refused(await viewer.call("poll.vote", {"poll_id": bad, "option": 0}), "poll_id")
    _refused(await viewer.call("auction.bid", {"auction_id": bad, "next": True, "request_id": "r1"}), "auction_id")
    _refused(await viewer.call("giveaway.enter", {"giveaway_id": bad}), "giveaway_id")
    _refused(await viewer.call("checkout.pay", {"sale_id": bad, "reservation_id": "r1"}), "sale_id")
    _refused(await viewer.call("checkout.pay", {"sale_id": sale_id, "reservation_id": bad}), "reservation_id")
    _refused(await host.call("product.pin", {"product_id": bad}), "product_id")
    _refused(await host.call("sale.schedule", {"product_id": "p1", "units": 1, "request_id": bad}), "request_id")
    _refused(await host.call("auction.create", {"product_id": "p1", "request_id": bad}), "request_id")
    # nothing changed: no chat message, no reservation, the stock as it was
    assert not viewer.of("chat.message") and not [b for b in viewer.of("tick") if (b or {}).get("chat")]
    ok = await viewer.call("sale.reserve", {"sale_id": sale_id, "request_id": "r1"})
    assert ok["ok"] and ok["levels"]["available"] == 2, ok  # the refusals took no unit: 3 - this one


@pytest.mark.parametrize("bad", ["a.b", "x" * 65])
async def test_every_json_endpoint_refuses_a_bad_id_the_same_way(make_server, bc, token, bad):
    srv = await make_server()
    admin = {"Authorization": f"Bearer {token('host', '*', 'ops')}"}
    viewer = {"Authorization": f"Bearer {token('viewer', 'b1', 'v1')}"}
    async with aiohttp.ClientSession() as http:
        async def answer(method: str, path: str, headers: dict[str, str], **kw: Any) -> tuple[int, dict]:
            async with http.request(method, srv.url + path, headers=headers, **kw) as resp:
                return resp.status, await resp.json()

        checks = [
            (await answer("GET", f"/api/broadcasts/{bad}", admin), "broadcast"),
            (await answer("PATCH", f"/api/broadcasts/{bad}", {**admin, "Idempotency-Key": "k1"}, json={"title": "x"}),
             "broadcast"),
            (await answer("POST", "/api/broadcasts", {**admin, "Idempotency-Key": "k2"},
                          json={"id": bad, "title": "x"}), "id"),
            (await answer("GET", f"/api/orders/{bad}", viewer), "order"),
            (await answer("GET", f"/api/auctions/{bad}/audit", viewer), "auction"),
            (await answer("GET", f"/api/broadcasts/b1/giveaways/{bad}", viewer), "giveaway"),
            (await answer("POST", "/api/checkout", {**viewer, "Idempotency-Key": "k3"},
                          json={"sale_id": bad, "reservation_id": "r1"}), "sale_id"),
        ]
    for (status, body), field in checks:
        assert status == 422 and body["error"]["code"] == "VALIDATION" and body["error"]["field"] == field, body


@pytest.mark.parametrize("bad", ["a.b", "x" * 65])
async def test_a_malformed_path_id_is_checked_after_the_token(make_server, bc, token, bad):
    """Auth before lookup still holds: a stranger learns nothing from whether an id is well formed."""
    srv = await make_server()
    other = {"Authorization": f"Bearer {token('viewer', 'b2', 'v2')}"}
    async with aiohttp.ClientSession() as http:
        for headers, status, code in (({}, 401, "TOKEN_MISSING"), (other, 403, "FORBIDDEN")):
            for path in (f"/api/broadcasts/{bad}", "/api/broadcasts/b1"):
                async with http.get(srv.url + path, headers=headers) as resp:
                    assert resp.status == status and (await resp.json())["error"]["code"] == code, path
