"""The merchant's figures through real pages (Chromium): the studio dashboard counts every order of
the show (it used to show the last one only), draws live charts, and the post-show report page
shows the funnel, charts, the sales table and downloads the CSV, in English and Korean."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import aiohttp

from analytics import CSV_COLUMNS
from tests.checkout.conftest import CONTACT, OK_CARD
from tests.hub.conftest import Client
from tests.pages.conftest import new_page, open_studio, shot, start_show, until


async def _three_orders(url: str, token) -> tuple[list[Client], str]:
    """A sale of the tote (19 000 KRW), three viewers who each reserve one and pay: 57 000 KRW."""
    host = await Client().connect(url, token("host", "b1", "h1"))
    ack = await host.call("sale.schedule", {"product_id": "tote", "units": 5, "limit": 1, "hold_s": 60})
    assert ack["ok"], ack
    sale = ack["sale"]["id"]
    made = [host]
    async with aiohttp.ClientSession() as http:
        for n in range(3):
            v = await Client().connect(url, token("viewer", "b1", f"v{n}"))
            made.append(v)
            await v.snapshot()
            await v.call("chat.send", {"text": f"want one {n}"})
            await v.call("react", {"emoji": "heart"})
            r = await v.call("sale.reserve", {"sale_id": sale, "qty": 1, "request_id": f"r{n}"})
            assert r["ok"], r
            async with http.post(f"{url}/api/checkout", json={"sale_id": sale, "reservation_id": r["reservation"]["id"],
                                                               "card": OK_CARD, "contact": CONTACT},
                                 headers={"Authorization": f"Bearer {token('viewer', 'b1', f'v{n}')}",
                                          "Idempotency-Key": f"pay-{n}"}) as resp:
                assert resp.status == 201, await resp.text()
    return made, sale


async def _close(clients: list[Client]) -> None:
    for c in clients:
        if c.sio.connected:
            await c.sio.disconnect()


async def test_dashboard_counts_every_order_and_their_sum(make_server, browser, token) -> None:
    srv, host = await start_show(make_server, token, analytics_flush_ms=200)
    studio = await open_studio(browser, srv.url, host)
    made, _ = await _three_orders(srv.url, token)
    try:
        await until(lambda: _text_is(studio, "#d-orders", "3"), what="the dashboard to count 3 orders")
        assert "57,000" in (await studio.locator("#d-revenue").text_content() or "")
        await until(lambda: _text_is(studio, "#d-chat", "3"), what="chat/min from the server's counts")
        assert await studio.locator("#d-hearts").text_content() == "3"
        await studio.wait_for_selector("#chart-sales canvas")  # the live chart is drawn
        assert await studio.locator("#report-link").get_attribute("href") == "/studio/report/b1"
        # a reload keeps the figures: they are the server's, not the page's
        await studio.reload()
        await studio.wait_for_selector("body[data-ready='1']")
        await until(lambda: _text_is(studio, "#d-orders", "3"), what="the figures after a reload")
        assert "57,000" in (await studio.locator("#d-revenue").text_content() or "")
        await shot(studio, "studio-dashboard-3-orders")
        assert not studio.errors, studio.errors
    finally:
        await _close(made)


async def test_report_page_charts_funnel_sales_and_csv(make_server, browser, token) -> None:
    srv, host = await start_show(make_server, token, analytics_flush_ms=200)
    made, sale = await _three_orders(srv.url, token)
    try:
        async with aiohttp.ClientSession() as http:
            async def ready() -> bool:
                async with http.get(f"{srv.url}/api/broadcasts/b1/analytics", headers={"Authorization": f"Bearer {host}"}) as r:
                    show = (await r.json())["show"]
                    return show["orders"] == 3 and show["reservers"] == 3 and show["paid_holds"] == 3
            await until(ready, what="the figures")
        page = await new_page(browser)
        await page.goto(f"{srv.url}/studio/report/b1#token={host}")
        await page.wait_for_selector("body[data-ready='1']")
        assert "#token" not in page.url  # the token left the address bar
        assert await page.locator("#r-orders").text_content() == "3"
        assert "57,000" in (await page.locator("#r-revenue").text_content() or "")
        assert await page.locator("#r-unique").text_content() == "3"
        assert await page.locator("#r-conversion").text_content() == "100.0%"
        steps = {s: await page.locator(f"#funnel .step[data-step='{s}']").get_attribute("data-n")
                 for s in ("viewers", "reservers", "buyers")}
        assert steps == {"viewers": "3", "reservers": "3", "buyers": "3"}
        row = page.locator(f"#sales tr[data-sale='{sale}']")
        assert await row.locator("td.sold").text_content() == "3 / 5"
        for chart in ("#chart-viewers", "#chart-sales", "#chart-engagement"):
            await page.wait_for_selector(f"{chart} canvas")
        async with page.expect_download() as dl:
            await page.click("#csv")
        download = await dl.value
        assert download.suggested_filename == "hawker-b1-analytics.csv"
        rows = list(csv.reader(io.StringIO(Path(await download.path()).read_text(encoding="utf-8"))))
        assert rows[0][:len(CSV_COLUMNS)] == list(CSV_COLUMNS) and "revenue_KRW" in rows[0]
        assert sum(int(dict(zip(rows[0], r))["orders"]) for r in rows[1:]) == 3
        await shot(page, "report-en")
        await page.select_option("#lang", "ko")
        await until(lambda: _text_has(page, "#title", "방송 리포트"), what="the Korean report")
        await page.wait_for_selector("#chart-sales canvas")
        assert "₩57,000" in (await page.locator("#r-revenue").text_content() or "")
        await shot(page, "report-ko")
        assert not page.errors, page.errors
        # a stranger's page cannot read it: the API answers 401 and the page says so
        stranger = await new_page(browser)
        await stranger.goto(f"{srv.url}/studio/report/b1")
        await stranger.wait_for_selector("#error:not([hidden])")
        assert await stranger.locator("#report").is_hidden()
    finally:
        await _close(made)


async def _text_is(page, sel: str, want: str) -> bool:
    return (await page.locator(sel).text_content() or "").strip() == want


async def _text_has(page, sel: str, want: str) -> bool:
    return want in (await page.locator(sel).text_content() or "")
