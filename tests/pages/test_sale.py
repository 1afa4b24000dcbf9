"""The flash sale through real pages: one unit, two viewers press Buy at the countdown; one holds,
the other sees sold out and joins the waitlist; the holder reloads mid-sale and the hold timer
resumes; checkout completes and the host's dashboard shows the order and the revenue."""
from __future__ import annotations

import asyncio

from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.pages.conftest import CARD, fill, open_player, open_studio, shot, start_show, until


async def _text(loc) -> str:
    return (await loc.text_content()) or ""


async def test_one_unit_two_buyers_waitlist_reload_checkout(make_server, browser, token) -> None:
    srv, host = await start_show(make_server, token)
    studio = await open_studio(browser, srv.url, host)
    await studio.locator("#products li[data-product='tote'] button").click()  # pin

    viewers = []
    for sub in ("v1", "v2"):
        page = await open_player(browser, srv.url, token('viewer', 'b1', sub))
        viewers.append(page)
    a, b = viewers
    await a.wait_for_selector("#buy-card:not([hidden])")  # pinned product card

    await studio.select_option("#sale-product", "tote")
    await fill(studio, "#sale-form", units="1", countdown="4")
    await studio.click("#sale-form button[type=submit]")
    for page in viewers:
        await page.wait_for_selector("#buy-card[data-sale-state='countdown']")
        assert "Opens in" in await _text(page.locator("#card-countdown"))
        assert await page.locator("#buy").is_disabled()
    # at the countdown: both press Buy as soon as the button unlocks on the server clock
    await asyncio.gather(*(p.wait_for_selector("#buy:not([disabled])") for p in viewers))
    await asyncio.gather(*(_press_buy(p) for p in viewers))

    async def outcome(page) -> str:
        if await page.locator("#hold:not([hidden])").count():
            return "hold"
        if await page.locator("#buy-card[data-sale-state='soldout']").count() and "Sold out" in await _text(page.locator("#card-state")):
            return "soldout"
        return ""

    results = await until(lambda: _both(outcome(a), outcome(b)), what="both buyers to get an answer")
    assert sorted(results) == ["hold", "soldout"], results
    holder, loser = (a, b) if results[0] == "hold" else (b, a)

    await loser.get_by_role("button", name="Join the waitlist").click()
    await until(lambda: _has(loser.locator("#card-state"), "number 1 on the waitlist"), what="waitlist position")
    await studio.locator("#lots tr td.waitlist", has_text="1").wait_for()
    await studio.locator("#lots tr td.held", has_text="1").wait_for()

    # reload mid-sale: the hold timer resumes from the snapshot
    left_before = int(await holder.locator("#hold-timer").get_attribute("data-left-ms"))
    await holder.reload()
    await holder.wait_for_selector("body[data-ready='1']")
    await holder.wait_for_selector("#hold:not([hidden])")
    left_after = int(await holder.locator("#hold-timer").get_attribute("data-left-ms"))
    assert 0 < left_after <= left_before
    assert "Held for" in await _text(holder.locator("#hold-timer"))

    await fill(holder, "#checkout", name="Kim Minji", email="minji@example.test", **CARD)
    await holder.click("#pay")
    await holder.wait_for_selector("#confirmation:not([hidden])")
    assert "is confirmed" in await _text(holder.locator("#confirmation"))

    await until(lambda: _has(studio.locator("#d-orders"), "1"), what="the dashboard's order count")
    await until(lambda: _has(studio.locator("#d-revenue"), "19,000"), what="the dashboard's revenue")
    await studio.locator("#lots tr td.sold", has_text="1").wait_for()
    await shot(studio, "studio-desktop")
    await shot(loser, "player-desktop-soldout")
    for page in (a, b, studio):
        assert page.errors == []


async def _press_buy(page) -> None:
    """Press Buy; a slower viewer may find it already gone (the other took the unit): that is the
    sold-out outcome the test then checks, not a failure to press."""
    try:
        await page.click("#buy", timeout=5000)
    except PlaywrightTimeout:
        pass


async def _both(x, y):
    rx, ry = await x, await y
    return [rx, ry] if rx and ry else None


async def _has(loc, text: str) -> bool:
    return text in ((await loc.text_content()) or "")
