"""Embedding: a merchant page (another origin) uses <hawker-player> with a token it minted; the
demo path mints guest tokens only when demo mode is on; every error code has a sentence."""
from __future__ import annotations

import aiohttp

from tests.pages.conftest import create_broadcast, new_page, serve_merchant


async def test_web_component_on_a_merchant_page(make_server, browser, token) -> None:
    html_box: dict[str, str] = {}
    runner, origin = await serve_merchant(html_box)
    srv = await make_server(embed_origins=origin)  # the shop may frame the player
    await create_broadcast(srv.url, token("host", "b1", "h1"))
    viewer_token = token("viewer", "b1", "shopper-7", name="Shopper")
    html_box["html"] = (f'<!doctype html><title>Shop</title><h1>Our shop</h1>'
                         f'<script src="{srv.url}/static/hawker/hawker-player.js"></script>'
                         f'<hawker-player broadcast="b1" lang="ko" token="{viewer_token}"></hawker-player>')
    try:
        page = await new_page(browser)
        await page.goto(f"{origin}/shop")
        frame = page.frame_locator("hawker-player iframe")
        await frame.locator("body[data-ready='1']").wait_for()
        assert await frame.locator("#chat-title").text_content() == "채팅"
        await frame.locator("#chat-input").fill("hello from the shop")
        await frame.locator("#chat-input").press("Enter")
        await frame.locator("#chat-list li", has_text="hello from the shop").wait_for()
        assert "Shopper" in (await frame.locator("#chat-list li").last.text_content() or "")
    finally:
        await runner.cleanup()


async def test_guest_token_only_in_demo_mode(make_server, browser, token) -> None:
    plain = await make_server()
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{plain.url}/api/guest-token?broadcast=b1") as r:
            assert r.status == 404
            assert (await r.json())["error"]["code"] == "NOT_FOUND"
    demo = await make_server(demo=True)
    await create_broadcast(demo.url, token("host", "b1", "h1"))
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{demo.url}/api/guest-token?broadcast=b%20x") as r:
            assert r.status == 422
    page = await new_page(browser)
    await page.goto(f"{demo.url}/watch/b1")
    await page.wait_for_selector("body[data-ready='1']")
    user = await page.evaluate("() => window.hawker.snap.you.user")
    assert user.startswith("guest-")
    await page.reload()
    await page.wait_for_selector("body[data-ready='1']")
    assert await page.evaluate("() => window.hawker.snap.you.user") == user  # same guest after a reload


async def test_every_documented_error_code_has_a_sentence(make_server, browser) -> None:
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text("utf-8")
    codes = set(re.findall(r"`([A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+|[A-Z]{4,})`", doc))
    codes -= {"HAWKER", "JSON", "HTTP", "GET", "POST", "PATCH", "DELETE", "OPTIONS", "HELD", "PAYING", "SOLD", "RELEASED",
              "EXPIRED_STATE", "PAID", "REFUNDED", "VOD", "KRW", "EVENT", "ENDLIST", "TIME", "HMAC"}
    srv = await make_server()
    page = await new_page(browser)
    await page.goto(f"{srv.url}/static/hawker/i18n.js")  # same origin for the module import
    known = set(await page.evaluate("async () => (await import('/static/hawker/i18n.js')).ERROR_CODES"))
    missing = sorted(c for c in codes if c not in known and not c.startswith("HAWKER_") and not c.startswith("EXT_"))
    assert missing == [], f"no sentence for {missing}"
    # the generic fallback: an unknown code is a sentence, never the code
    text = await page.evaluate("async () => (await import('/static/hawker/i18n.js')).errorText('SOMETHING_NEW')")
    assert text and "SOMETHING_NEW" not in text
