"""Real Chromium, the shipped studio and player pages (issue 13 row 14): a host who reloads the
studio is live again at once (a takeover; the viewer's WebRTC connection carries on), and when the
studio tab dies the player says the host's video is reconnecting, in English and in Korean."""
from __future__ import annotations

import pytest

from tests.pages.conftest import browser, create_broadcast, new_page, until  # noqa: F401 - browser is a fixture

pytestmark = [pytest.mark.media, pytest.mark.browser, pytest.mark.slow]

VIDEO_TIME = "() => document.querySelector('#video').currentTime"


async def _live_studio(browser, url: str, host: str):  # noqa: F811 - the fixture imported above
    studio = await new_page(browser)
    await studio.goto(f"{url}/studio?token={host}")
    await studio.wait_for_selector("body[data-ready='1']")
    await until(lambda: studio.evaluate("() => !!document.querySelector('#preview').srcObject"), what="camera preview")
    await studio.click("#golive")
    await studio.wait_for_selector("body[data-publishing='1']", timeout=60_000)
    return studio


async def _advancing(page, timeout: float = 60) -> None:
    t0 = await page.evaluate(VIDEO_TIME)
    await until(lambda: _after(page, t0 + 1.0), timeout=timeout, what="the viewer's video to advance")


async def _after(page, t: float) -> bool:
    return await page.evaluate(VIDEO_TIME) > t


async def test_a_studio_reload_takes_over_and_the_viewer_keeps_playing(make_server, browser, token, media_ip,  # noqa: F811 - the fixture imported above
                                                                       tmp_path) -> None:
    srv = await make_server(media_dir=str(tmp_path / "media"))
    media = srv.app["node"].media
    host = token("host", "b1", "h1")
    await create_broadcast(srv.url, host)
    studio = await _live_studio(browser, srv.url, host)
    viewer = await new_page(browser)
    await viewer.goto(f"{srv.url}/watch/b1?token={token('viewer', 'b1', 'v1')}")
    await until(lambda: viewer.evaluate("() => document.body.dataset.video === 'webrtc'"), 60, "WebRTC playback")
    await _advancing(viewer)
    first = media.publishers["b1"]
    watching = set(media.viewers)

    await studio.reload()  # the host reloads the studio: it resumes by itself, as a takeover
    await studio.wait_for_selector("body[data-publishing='1']", timeout=60_000)
    await until(lambda: "b1" in media.publishers and media.publishers["b1"] is not first, 30, "the new publish")
    assert first.closed
    await _advancing(viewer)  # the same page, the same WebRTC connection: no renegotiation
    assert set(media.viewers) == watching
    assert await viewer.evaluate("() => document.body.dataset.video") == "webrtc"
    assert not studio.errors and not viewer.errors


@pytest.mark.parametrize("locale,text", [("en-US", "The host's video is reconnecting…"),
                                         ("ko-KR", "호스트의 영상을 다시 연결하는 중…")])
async def test_the_player_says_reconnecting_while_the_host_is_stalled(make_server, browser, token, media_ip,  # noqa: F811 - the fixture imported above
                                                                      tmp_path, locale, text) -> None:
    srv = await make_server(media_dir=str(tmp_path / "media"))
    host = token("host", "b1", "h1")
    await create_broadcast(srv.url, host)
    studio = await _live_studio(browser, srv.url, host)
    viewer = await new_page(browser, locale=locale)
    await viewer.goto(f"{srv.url}/watch/b1?token={token('viewer', 'b1', 'v1')}")
    await until(lambda: viewer.evaluate("() => document.body.dataset.video === 'webrtc'"), 60, "WebRTC playback")
    await _advancing(viewer)

    await studio.context.close()  # the studio tab dies: no DELETE, no goodbye
    await viewer.locator("#video-status", has_text=text).wait_for(state="visible", timeout=30_000)
    assert await viewer.evaluate("() => document.body.dataset.video") == "stalled"

    studio = await _live_studio(browser, srv.url, host)  # the host is back (another tab): a takeover
    await until(lambda: viewer.evaluate("() => document.body.dataset.video === 'webrtc'"), 30, "playing again")
    assert await viewer.locator("#video-status").is_hidden()
    await _advancing(viewer)
