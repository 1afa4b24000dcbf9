"""Chat and polls through real pages: a viewer's message reaches the studio and back, a message the
host deletes disappears for the viewer, and a viewer's vote moves the host's bars."""
from __future__ import annotations

from tests.pages.conftest import fill, new_page, open_player, open_studio, start_show, until


async def test_chat_round_trip_and_host_delete(make_server, browser, token) -> None:
    srv, host = await start_show(make_server, token)
    studio = await new_page(browser)
    await studio.goto(f"{srv.url}/studio#token={host}")
    viewer = await open_player(browser, srv.url, token('viewer', 'b1', 'v1', name='Mina'))
    await studio.wait_for_selector("body[data-ready='1']")

    await viewer.fill("#chat-input", "is the tote waterproof?")
    await viewer.click("#chat-form button[type=submit]")
    line = studio.locator("#chat-list li", has_text="is the tote waterproof?")
    await line.wait_for()
    await studio.fill("#chat-input", "yes, fully")
    await studio.press("#chat-input", "Enter")
    await viewer.locator("#chat-list li", has_text="yes, fully").wait_for()

    await line.get_by_role("button", name="Delete: is the tote waterproof?").click()
    await viewer.locator("#chat-list li", has_text="is the tote waterproof?").wait_for(state="detached")
    await until(lambda: line.evaluate("e => e.classList.contains('removed')"), what="host sees the line flagged")
    assert await viewer.locator("#chat-list li", has_text="yes, fully").count() == 1
    assert viewer.errors == [] and studio.errors == []


async def test_poll_vote_moves_host_bars(make_server, browser, token) -> None:
    srv, host = await start_show(make_server, token)
    studio = await open_studio(browser, srv.url, host)
    viewer = await open_player(browser, srv.url, token('viewer', 'b1', 'v1'))

    await fill(studio, "#poll-form", question="Which colour next?", options="Red\nBlue")
    await studio.click("#poll-form button[type=submit]")
    await studio.wait_for_selector("#poll-live:not([hidden])")
    blue_bar = studio.locator("#poll-bars [data-option='1']")
    assert await blue_bar.get_attribute("data-votes") == "0"

    await viewer.locator("#poll-options button[data-option='1']").click()
    await until(lambda: blue_bar.get_attribute("data-votes"), what="bar rendered")
    await until(lambda: _eq(blue_bar.get_attribute("data-votes"), "1"), what="the host's bar to move")
    assert await blue_bar.get_attribute("aria-valuenow") == "100"
    assert await viewer.locator("#poll-options button[data-option='1']").get_attribute("aria-pressed") == "true"


async def _eq(coro, want):
    return (await coro) == want
