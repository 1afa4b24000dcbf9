"""Live auctions and a giveaway through real pages in Chromium: the host creates and starts an
auction in the studio, two viewers bid (one in Korean), a late bid resets the timer, the winner
pays in the player; a giveaway is entered by two viewers, drawn in the studio and verified with
the `hawker giveaway verify` command."""
from __future__ import annotations

import asyncio
import sys

from tests.pages.conftest import CARD, fill, open_player, open_studio, shot, start_show, until


async def _text(loc) -> str:
    return (await loc.text_content()) or ""


async def _studio(browser, srv, host):
    return await open_studio(browser, srv.url, host)


async def _viewer(browser, srv, token, sub, locale="en-US"):
    return await open_player(browser, srv.url, token('viewer', 'b1', sub, name=sub.capitalize() + 'x'), locale=locale)


async def test_two_viewers_bid_a_late_bid_resets_the_timer_and_the_winner_pays(make_server, browser, token) -> None:
    srv, host = await start_show(make_server, token)
    studio = await _studio(browser, srv, host)
    a = await _viewer(browser, srv, token, "ann")
    b = await _viewer(browser, srv, token, "bob", locale="ko-KR")

    await studio.select_option("#auction-product", "tote")
    await fill(studio, "#auction-form", start_price="1000", duration_s="8", counter_s="5")
    await studio.click("#auction-form button[type=submit]")
    await studio.click("#auctions li[data-state='scheduled'] button.start")
    for page in (a, b):
        await page.wait_for_selector("#auction[data-state='live']")
    assert "Bid" in await _text(a.locator("#auction-bid"))
    assert "입찰" in await _text(b.locator("#auction-bid"))  # the Korean player

    await a.click("#auction-bid")  # the next increment: the starting bid
    await a.wait_for_selector("#auction-state[data-leading='1']")
    assert "high bidder" in await _text(a.locator("#auction-state"))
    ends_before = int(await b.locator("#auction-timer").get_attribute("data-ends-at"))
    # wait until the last 5 s (counter-bid time), then bob bids late
    await until(lambda: _left_below(b, 4_000), what="the last seconds")
    left_before = int(await b.locator("#auction-timer").get_attribute("data-left-ms"))
    await b.click("#auction-bid")
    await b.wait_for_selector("#auction-state[data-leading='1']")
    await until(lambda: _ends_after(a, ends_before), what="the timer reset on the other viewer")
    left_after = int(await a.locator("#auction-timer").get_attribute("data-left-ms"))
    assert left_after > left_before
    await a.wait_for_selector("#auction-state[data-outbid='1']")
    assert "outbid" in await _text(a.locator("#auction-state"))
    assert "1,100" in await _text(a.locator("#auction-high"))  # 1,000 + one step

    # the end: bob won at 1,100 (ann's 1,000 + one step), pays in the player
    await b.wait_for_selector("#auction-pay:not([hidden])", timeout=60_000)
    assert "낙찰" in await _text(b.locator("#auction-state"))
    await a.wait_for_selector("#auction[data-state='closed']")
    assert "Sold to" in await _text(a.locator("#auction-state"))
    assert await a.locator("#auction-pay").is_hidden()
    await fill(b, "#auction-pay", name="Kim Minji", email="minji@example.test", **CARD)
    await b.click("#auction-pay-btn")
    await b.wait_for_selector("#auction-paid:not([hidden])")
    assert "o_" in await _text(b.locator("#auction-paid"))
    await studio.wait_for_selector("#auctions li[data-state='closed']")
    assert "Sold to" in await _text(studio.locator("#auctions li[data-state='closed'] .result"))
    await shot(b, "auction-won-ko")
    for page in (studio, a, b):
        assert page.errors == [], page.errors


async def _left_below(page, ms: int) -> bool:
    left = await page.locator("#auction-timer").get_attribute("data-left-ms")
    return left is not None and 0 < int(left) < ms


async def _ends_after(page, ends: int) -> bool:
    v = await page.locator("#auction-timer").get_attribute("data-ends-at")
    return v is not None and int(v) > ends


async def test_a_giveaway_drawn_in_the_studio_is_verified_with_the_cli(make_server, browser, token) -> None:
    srv, host = await start_show(make_server, token)
    studio = await _studio(browser, srv, host)
    viewers = [await _viewer(browser, srv, token, "ann"), await _viewer(browser, srv, token, "bob", locale="ko-KR")]
    await studio.fill("#giveaway-form input[name=title]", "Enamel mug")
    await studio.click("#giveaway-form button[type=submit]")
    await studio.wait_for_selector("#giveaway-live[data-state='open']")
    commitment = await _text(studio.locator("#giveaway-live-commit"))
    assert len(commitment) == 64
    for page in viewers:
        await page.wait_for_selector("#giveaway[data-state='open']")
        assert await _text(page.locator("#giveaway-commit")) == commitment
        await page.click("#giveaway-enter")
        await page.wait_for_selector("#giveaway-enter[disabled]")
    assert "응모" in await _text(viewers[1].locator("#giveaway-enter"))
    await until(lambda: _has(studio.locator("#giveaway-live-entries"), "2 entries"), what="two entries")
    await studio.click("#giveaway-draw")
    await studio.wait_for_selector("#giveaway-live[data-state='drawn']")
    gid = await studio.locator("#giveaway-live").get_attribute("data-giveaway")
    seed = await _text(studio.locator("#giveaway-live-seed"))
    assert len(seed) == 64
    for page in viewers:
        await page.wait_for_selector("#giveaway[data-state='drawn']")
        assert await _text(page.locator("#giveaway-seed")) == seed
    states = [await _text(p.locator("#giveaway-state")) for p in viewers]
    assert sum(("You won" in s) or ("당첨되었습니다" in s) for s in states) == 1, states
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "live", "giveaway", "verify", "--url", srv.url, "--broadcast", "b1", "--giveaway", gid,
        "--token", token("viewer", "b1", "auditor"), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0 and out.decode().startswith("OK"), out.decode()
    assert "hawker giveaway verify" in await _text(studio.locator("#giveaway-live-verify"))
    await shot(studio, "giveaway-studio")
    for page in (studio, *viewers):
        assert page.errors == [], page.errors


async def _has(loc, text: str) -> bool:
    return text in ((await loc.text_content()) or "")


async def test_a_quiz_reveals_its_answer_and_ranks_the_fastest(make_server, browser, token) -> None:
    srv, host = await start_show(make_server, token)
    studio = await _studio(browser, srv, host)
    ann, bob = await _viewer(browser, srv, token, "ann"), await _viewer(browser, srv, token, "bob", locale="ko-KR")
    await fill(studio, "#quiz-form", question="Which is a fruit?", options="Carrot\nApple\nLeek", correct="2")
    await studio.click("#quiz-form button[type=submit]")
    await studio.wait_for_selector("#poll-live:not([hidden])")
    for page in (ann, bob):
        await page.wait_for_selector("#quiz[data-state='open']")
    assert "revealed" in await _text(ann.locator("#quiz-answer"))  # the answer is not shown while open
    await ann.locator("#poll-options button[data-option='1']").click()
    await ann.wait_for_selector("#poll-options button[data-option='1'][aria-pressed='true']")
    await bob.locator("#poll-options button[data-option='0']").click()
    await bob.wait_for_selector("#poll-options button[data-option='0'][aria-pressed='true']")
    await studio.click("#poll-close")
    for page in (ann, bob):
        await page.wait_for_selector("#quiz[data-state='closed']")
    assert "Apple" in await _text(ann.locator("#quiz-answer"))
    assert "정답" in await _text(bob.locator("#quiz-answer"))
    assert (await ann.locator("#quiz-ranking li").count()) == 1
    assert (await _text(ann.locator("#quiz-ranking li"))).startswith("A***x")
    await studio.wait_for_selector("#quiz-results:not([hidden])")
    assert "1 of 2" in await _text(studio.locator("#quiz-results-right"))
    for page in (studio, ann, bob):
        assert page.errors == [], page.errors
