"""Tokens in page URLs (real Chromium): links carry them in the fragment, which no server, log or
Referer ever sees; an old `?token=` link still works, leaves the address bar at once and is not
handed on as a Referer; an embedded player takes a token only from a parent of an allowed origin
and asks only that origin for one."""
from __future__ import annotations

from typing import Any

from tests.pages.conftest import create_broadcast, new_page, serve_merchant, start_show


def record_requests(page: Any) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    page.on("request", lambda req: seen.append((req.url, req.headers.get("referer", ""))))
    return seen


async def test_studio_and_player_links_keep_the_token_out_of_requests_and_referers(make_server, browser, token) -> None:
    srv, host = await start_show(make_server, token)
    viewer_tok = token("viewer", "b1", "v1")
    for url, secret, ready in [(f"{srv.url}/studio#token={host}", host, "#studio:not([hidden])"),
                               (f"{srv.url}/watch/b1#token={viewer_tok}", viewer_tok, "body[data-ready='1']"),
                               (f"{srv.url}/studio?token={host}", host, "#studio:not([hidden])"),  # an old link
                               (f"{srv.url}/watch/b1?lang=ko&token={viewer_tok}", viewer_tok, "body[data-ready='1']")]:
        page = await new_page(browser)
        seen = record_requests(page)
        await page.goto(url)
        await page.wait_for_selector(ready)
        assert secret not in page.url  # out of the address bar (and so out of history and bookmarks)
        assert "token" not in page.url
        later = [(u, r) for (u, r) in seen[1:]]  # every request after the page itself: scripts, css, images, API
        assert later, "the page loaded nothing?"
        assert all(secret not in u for u, _ in later), later
        assert all(r == "" for _, r in later), f"a Referer was sent: {[x for x in later if x[1]][:3]}"
        if "#token=" in url:
            assert all(secret not in u for u, _ in seen)  # the fragment never left the browser
        await page.context.close()


PARENT = """<!doctype html><title>Shop</title>
<iframe id="p" src="{player}" style="width:800px;height:700px"></iframe>
<script>
  window.asked = [];
  window.addEventListener("message", (e) => {{
    if (e.data && e.data.type === "hawker:need-token") {{
      window.asked.push(e.origin);
      document.getElementById("p").contentWindow.postMessage({{ type: "hawker:token", token: "{token}" }}, "*");
    }}
  }});
</script>"""


async def test_the_player_takes_a_token_only_from_an_allowed_parent_origin(make_server, browser, token) -> None:
    """Two shops on two origins frame the player without a token in its URL; the player asks its
    parent over postMessage. Only the allowed shop is asked and heard. For the other one the CSP is
    also removed on the way (a browser that ignores frame-ancestors): the postMessage check stops it."""
    good_box: dict[str, str] = {}
    evil_box: dict[str, str] = {}
    good_runner, good = await serve_merchant(good_box)
    evil_runner, evil = await serve_merchant(evil_box)
    try:
        srv = await make_server(embed_origins=good)
        await create_broadcast(srv.url, token("host", "b1", "h1"))
        player = f"{srv.url}/watch/b1"
        good_box["html"] = PARENT.format(player=player, token=token("viewer", "b1", "shopper-good"))
        evil_box["html"] = PARENT.format(player=player, token=token("viewer", "b1", "attacker"))

        page = await new_page(browser)
        await page.goto(f"{good}/shop")
        await page.frame_locator("#p").locator("body[data-ready='1']").wait_for()
        assert await page.evaluate("() => window.asked") == [srv.url]  # asked once (e.origin: the player)
        frame = next(f for f in page.frames if f.url.startswith(player))
        assert await frame.evaluate("() => window.hawker.snap.you.user") == "shopper-good"

        # the other shop: the CSP really blocks the frame...
        blocked = await new_page(browser)
        await blocked.goto(f"{evil}/shop")
        await blocked.wait_for_timeout(1500)
        inner = [f for f in blocked.frames if f.url.startswith(player)]
        assert not inner or not await inner[0].evaluate("() => !!(document.body && document.body.dataset.broadcast)")
        assert await blocked.evaluate("() => window.asked") == []

        # ...and with the CSP stripped, the player neither asks that origin nor takes its token
        evil_page = await new_page(browser)

        async def strip_csp(route: Any) -> None:
            resp = await route.fetch()
            headers = {k: v for k, v in resp.headers.items() if k.lower() != "content-security-policy"}
            await route.fulfill(response=resp, headers=headers)

        await evil_page.route(f"{player}*", strip_csp)
        await evil_page.goto(f"{evil}/shop")
        evil_frame = None
        for _ in range(100):
            evil_frame = next((f for f in evil_page.frames if f.url.startswith(player)), None)
            if evil_frame is not None:
                break
            await evil_page.wait_for_timeout(100)
        assert evil_frame is not None
        await evil_frame.wait_for_selector("#error:not([hidden])")
        assert await evil_frame.locator("#error").get_attribute("data-code") == "EMBED_NOT_ALLOWED"
        attacker = token("viewer", "b1", "attacker")
        await evil_page.evaluate("(t) => document.getElementById('p').contentWindow.postMessage("
                                 "{type: 'hawker:token', token: t}, '*')", attacker)
        await evil_page.wait_for_timeout(1500)
        assert await evil_page.evaluate("() => window.asked") == []
        assert await evil_frame.evaluate("() => document.body.dataset.ready || ''") == ""
    finally:
        await good_runner.cleanup()
        await evil_runner.cleanup()
