"""Social proof in a real player (Chromium): "N sold" on the card, the "Jiwoo just bought" ticker
(names masked, or none once the host turns them off), and system chat lines when the sale sells out
and comes back in stock."""
from __future__ import annotations

import aiohttp

from tests.checkout.conftest import OK_CARD
from tests.hub.conftest import Client
from tests.pages.conftest import create_broadcast, open_player, shot, until


async def _buy(url: str, token, user: str, sale: str, name: str, n: int) -> None:
    c = await Client().connect(url, token("viewer", "b1", user))
    try:
        r = await c.call("sale.reserve", {"sale_id": sale, "qty": 1, "request_id": f"r-{user}"})
        assert r["ok"], r
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/api/checkout", json={
                    "sale_id": sale, "reservation_id": r["reservation"]["id"], "card": OK_CARD,
                    "contact": {"name": name, "email": f"{user}@example.test"}},
                    headers={"Authorization": f"Bearer {token('viewer', 'b1', user)}", "Idempotency-Key": f"k-{user}"}) as resp:
                assert resp.status == 201, await resp.text()
    finally:
        await c.sio.disconnect()


async def _text(page, sel: str) -> str:
    return (await page.locator(sel).text_content()) or ""


async def test_sold_count_ticker_and_stock_lines(make_server, browser, token) -> None:
    srv = await make_server(analytics_flush_ms=200)
    await create_broadcast(srv.url, token("host", "b1", "h1"))
    host = await Client().connect(srv.url, token("host", "b1", "h1"))
    holder = None
    try:
        assert (await host.call("product.pin", {"product_id": "tote"}))["ok"]
        sale = (await host.call("sale.schedule", {"product_id": "tote", "units": 3, "limit": 1, "hold_s": 60}))["sale"]["id"]
        page = await open_player(browser, srv.url, token('viewer', 'b1', 'watcher'))
        await page.wait_for_selector("#buy-card[data-sale-state='open']")

        await _buy(srv.url, token, "buyer1", sale, "Jiwoo Park", 1)
        await page.wait_for_selector("#ticker:not([hidden])")
        assert await _text(page, "#ticker") == "Jiwoo just bought Canvas tote bag"  # first name only
        await until(lambda: _has(page, "#card-sold", "1 sold"), what="1 sold on the card")
        assert "2 left" in await _text(page, "#card-left")
        await shot(page, "player-ticker")

        await _buy(srv.url, token, "buyer2", sale, "김지우", 2)
        await until(lambda: _has(page, "#ticker", "김*우 just bought"), what="a masked Korean name")
        # the last unit is held: sold out, then released: back in stock (a system line each)
        holder = await Client().connect(srv.url, token("viewer", "b1", "holder"))
        held = await holder.call("sale.reserve", {"sale_id": sale, "qty": 1, "request_id": "h1"})
        assert held["ok"], held
        line = page.locator("#chat-list li.system[data-proof='proof.soldout']")
        await line.wait_for()
        assert await line.text_content() == "Canvas tote bag is sold out"
        assert await page.locator("#chat-list li.system[data-proof='proof.restock']").count() == 0
        assert (await holder.call("sale.release", {"sale_id": sale, "reservation_id": held["reservation"]["id"]}))["ok"]
        back = page.locator("#chat-list li.system[data-proof='proof.restock']")
        await back.wait_for()
        assert await back.text_content() == "Canvas tote bag is back in stock"
        assert await page.locator("#chat-list li.system[data-proof='proof.soldout']").count() == 1  # once, coalesced

        # the host turns names off for this show: the next purchase is "Someone"
        assert (await host.call("proof.names", {"enabled": False}))["ok"]
        await _buy(srv.url, token, "buyer3", sale, "Minji Kim", 3)
        await until(lambda: _has(page, "#ticker", "Someone just bought Canvas tote bag"), what="an anonymous ticker")
        assert "Minji" not in await page.content()
        await until(lambda: _has(page, "#card-sold", "3 sold"), what="3 sold")
        await shot(page, "player-proof")
        assert not page.errors, page.errors
    finally:
        for c in (host, holder):
            if c is not None and c.sio.connected:
                await c.sio.disconnect()


async def _has(page, sel: str, want: str) -> bool:
    return want in await _text(page, sel)
