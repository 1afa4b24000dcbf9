"""The player's checkout asks where a shipped product goes, laid out for the buyer's country (here a
Korean address in Korean), and the order carries it; a product that does not ship asks nothing."""
from __future__ import annotations

import aiohttp

from tests.hub.conftest import Client
from tests.pages.conftest import CARD, fill, new_page, open_player, shot, until


async def test_korean_shipping_address_in_the_player(make_server, browser, token) -> None:
    srv = await make_server()
    host_tok = token("host", "b1", "h1")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{srv.url}/api/broadcasts", headers={"Authorization": f"Bearer {host_tok}"}, json={
                "id": "b1", "title": "금요일 라이브", "products": [
                    {"id": "tote", "title": "캔버스 토트백", "price": 19000, "currency": "KRW", "image_url": "/static/demo/tote.svg",
                     "ships": True}]}) as r:
            assert r.status == 201
    host = await Client().connect(srv.url, host_tok)
    try:
        assert (await host.call("product.pin", {"product_id": "tote"}))["ok"]
        sale = (await host.call("sale.schedule", {"product_id": "tote", "units": 2, "limit": 1}))["sale"]["id"]
        page = await open_player(browser, srv.url, token('viewer', 'b1', 'jiwoo'), locale="ko-KR")
        await page.select_option("#lang", "ko")
        await page.wait_for_selector("#buy:not([disabled])")
        await page.click("#buy")
        await page.wait_for_selector("#hold:not([hidden])")
        await page.wait_for_selector("#shipping:not([hidden])")
        assert await page.locator("#shipping select[name=ship_country]").input_value() == "KR"  # from the KRW price
        labels = await page.locator("#shipping label > span").all_text_contents()
        assert labels[:6] == ["국가", "받는 분", "휴대폰 번호", "우편번호", "도로명 주소", "상세 주소(동, 호수) (선택)"]
        await fill(page, "#checkout", name="김지우", email="jiwoo@example.test", **CARD)
        await page.fill("input[name=ship_name]", "김지우")
        await page.fill("input[name=ship_phone]", "010-1234-5678")
        await page.fill("input[name=ship_postal_code]", "06236")
        await page.fill("input[name=ship_line1]", "서울특별시 강남구 테헤란로 152")
        await page.fill("input[name=ship_line2]", "20층")
        await shot(page, "player-shipping-ko")
        await page.click("#pay")
        await page.wait_for_selector("#confirmation:not([hidden])")
        oid = await page.locator("#confirmation").get_attribute("data-order-id")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{srv.url}/api/orders/{oid}", headers={"Authorization": f"Bearer {host_tok}"}) as r:
                order = (await r.json())["order"]
        assert order["shipping"] == {"name": "김지우", "phone": "010-1234-5678", "country": "KR", "postal_code": "06236",
                                     "line1": "서울특별시 강남구 테헤란로 152", "line2": "20층"}
        assert order["sale_id"] == sale
        assert not page.errors, page.errors
    finally:
        await host.sio.disconnect()


async def test_a_product_that_does_not_ship_asks_no_address(make_server, browser, token) -> None:
    srv = await make_server()
    host_tok = token("host", "b1", "h1")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{srv.url}/api/broadcasts", headers={"Authorization": f"Bearer {host_tok}"}, json={
                "id": "b1", "title": "Drop", "products": [{"id": "ebook", "title": "E-book", "price": 500, "currency": "USD"}]}) as r:
            assert r.status == 201
    host = await Client().connect(srv.url, host_tok)
    try:
        await host.call("product.pin", {"product_id": "ebook"})
        await host.call("sale.schedule", {"product_id": "ebook", "units": 2, "limit": 1})
        page = await new_page(browser)
        await page.goto(f"{srv.url}/watch/b1#token={token('viewer', 'b1', 'v')}")
        await page.wait_for_selector("#buy:not([disabled])")
        await page.click("#buy")
        await page.wait_for_selector("#hold:not([hidden])")
        await until(lambda: page.locator("#shipping").count(), what="the shipping fieldset to exist")
        assert await page.locator("#shipping").is_hidden()
        assert await page.locator("#shipping input[required]").count() == 0  # nothing hidden blocks the form
    finally:
        await host.sio.disconnect()
