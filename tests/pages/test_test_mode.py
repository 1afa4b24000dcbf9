"""The player says TEST MODE (English and Korean) when payments go through the sandbox, and says
nothing of the kind with a live provider (issue 13 row 2)."""
from __future__ import annotations

from checkout import SandboxProvider
from tests.pages.conftest import create_broadcast, new_page


class LiveDouble(SandboxProvider):
    """Stands in for a real provider: it declares livemode like one."""

    name = "live-double"
    livemode = True


def make_live(redis):
    return LiveDouble(redis)


async def _open_player(srv, browser, token):
    await create_broadcast(srv.url, token("host", "b1", "h1"))
    page = await new_page(browser)
    await page.goto(f"{srv.url}/watch/b1?token={token('viewer', 'b1', 'v1')}")
    await page.wait_for_selector("body[data-ready='1']")
    return page


async def test_sandbox_payments_show_a_test_mode_badge(make_server, browser, token) -> None:
    srv = await make_server()  # the sandbox provider
    page = await _open_player(srv, browser, token)
    badge = page.locator("#test-mode")
    await badge.wait_for(state="visible")
    assert "TEST MODE" in (await badge.text_content() or "")
    await page.select_option("#lang", "ko")
    assert "테스트 모드" in (await badge.text_content() or "")
    assert await badge.is_visible()
    assert page.errors == []


async def test_live_payments_show_no_badge(make_server, browser, token) -> None:
    srv = await make_server(payment_provider=f"{__name__}:make_live")
    page = await _open_player(srv, browser, token)
    await page.wait_for_selector("body[data-livemode='1']")
    assert not await page.locator("#test-mode").is_visible()
    assert not await page.locator("#sandbox-hint").is_visible()
    assert page.errors == []
