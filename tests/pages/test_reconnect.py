"""The player reconnects by itself and resumes from the snapshot: its node goes away, the show goes
on through another node (a pin, a chat line), the node comes back on the same port, and the page
shows what happened while it was away. Keyboard: the player's controls are reachable with Tab."""
from __future__ import annotations

from aiohttp import web

from live.app import create_app
from tests.pages.conftest import create_broadcast, new_page, open_player, open_studio


async def test_player_reconnects_and_resumes_from_snapshot(make_server, browser, token) -> None:
    node_a = await make_server()
    node_b = await make_server()
    host = token("host", "b1", "h1")
    await create_broadcast(node_a.url, host)
    viewer = await new_page(browser)
    await viewer.goto(f"{node_a.url}/watch/b1#token={token('viewer', 'b1', 'v1')}")
    await viewer.wait_for_selector("#conn[data-state='online']")
    studio = await open_studio(browser, node_b.url, host)

    await node_a.stop()
    await viewer.wait_for_selector("#conn[data-state='offline']")
    await studio.locator("#products li[data-product='mug'] button").click()
    await studio.fill("#chat-input", "mug is pinned now")
    await studio.press("#chat-input", "Enter")
    await studio.locator("#chat-list li", has_text="mug is pinned now").wait_for()

    runner = web.AppRunner(create_app(node_a.config), shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", node_a.config.port).start()
    try:
        await viewer.wait_for_selector("#conn[data-state='online']", timeout=60_000)
        await viewer.locator("#card-title", has_text="Enamel camp mug").wait_for()
        await viewer.locator("#chat-list li", has_text="mug is pinned now").wait_for()
        assert viewer.errors == []
    finally:
        await runner.cleanup()


async def test_player_controls_reachable_by_keyboard(make_server, browser, token) -> None:
    srv = await make_server()
    await create_broadcast(srv.url, token("host", "b1", "h1"))
    viewer = await open_player(browser, srv.url, token('viewer', 'b1', 'v1'))
    reached = set()
    for _ in range(12):
        await viewer.keyboard.press("Tab")
        reached.add(await viewer.evaluate("() => document.activeElement.id || document.activeElement.getAttribute('aria-label') || ''"))
    assert {"lang", "unmute", "chat-input"} <= reached, reached
    assert "heart" in reached
    # the heart goes with the keyboard alone
    await viewer.focus("#heart")
    await viewer.keyboard.press("Enter")
    await viewer.locator("#hearts-count", has_text="1").wait_for()
    # every visible control has an accessible name
    unnamed = await viewer.evaluate("""() => [...document.querySelectorAll('button, input, select, textarea')]
        .filter(e => e.offsetParent !== null)
        .filter(e => !(e.getAttribute('aria-label') || (e.labels && e.labels.length && e.labels[0].textContent.trim()) || e.textContent.trim()))
        .map(e => e.outerHTML)""")
    assert unnamed == []
