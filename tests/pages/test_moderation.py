"""Chat moderation from the studio, seen from the player: slow mode, ban, comment-to-buy; the
dashboard counts chat and hearts per minute."""
from __future__ import annotations

from tests.pages.conftest import fill, new_page, open_studio, start_show, until


async def _has(loc, text: str) -> bool:
    return text in ((await loc.text_content()) or "")


async def _send(page, text: str) -> None:
    await page.fill("#chat-input", text)
    await page.press("#chat-input", "Enter")


async def test_slow_mode_ban_and_comment_to_buy(make_server, browser, token) -> None:
    srv, host = await start_show(make_server, token)
    studio = await open_studio(browser, srv.url, host)
    troll = await new_page(browser)
    await troll.goto(f"{srv.url}/watch/b1#token={token('viewer', 'b1', 'troll', name='Troll')}")
    buyer = await new_page(browser)
    await buyer.goto(f"{srv.url}/watch/b1#token={token('viewer', 'b1', 'buyer', name='Buyer')}")
    for p in (troll, buyer):
        await p.wait_for_selector("body[data-ready='1']")

    # hearts and chat show on the dashboard
    await buyer.click("#heart")
    await buyer.click("#heart")
    await until(lambda: _has(studio.locator("#d-hearts"), "2"), what="hearts/min")

    await studio.select_option("#slowmode", "30")
    await _send(troll, "first!")
    await studio.locator("#chat-list li", has_text="first!").wait_for()
    await _send(troll, "second!")
    await until(lambda: _has(troll.locator("#error"), "Slow mode is on"), what="the slow mode sentence")
    assert await troll.locator("#error").get_attribute("data-code") == "SLOW_MODE"
    await until(lambda: _has(studio.locator("#d-chat"), "1"), what="chat/min")

    await studio.get_by_role("button", name="Ban: Troll").click()
    await until(lambda: _has(troll.locator("#error"), "You can no longer chat in this show."), what="ban notice")
    await studio.select_option("#slowmode", "0")

    # comment to buy: "buy" in chat reserves while a sale is selling
    await studio.check("#commentbuy")
    await studio.select_option("#sale-product", "mug")
    await fill(studio, "#sale-form", units="3", countdown="0")
    await studio.click("#sale-form button[type=submit]")
    await buyer.wait_for_selector("#buy-card[data-sale-state='open']")
    await _send(buyer, "buy")
    await buyer.wait_for_selector("#hold:not([hidden])")
    assert await buyer.locator("#card-state").text_content() == "Your comment reserved 1 - finish checkout below."
    await studio.locator("#lots tr td.held", has_text="1").wait_for()
