"""Real Chromium, the shipped studio (issue 17): an OBS-like host sending B-frames sees the warning
in the studio, in English and in Korean; and a viewer page on a process that does not hold the
publish plays WebRTC through the cascade instead of HLS."""
from __future__ import annotations

import aiohttp
import pytest

from tests.media.obs_like import ObsLikePublisher
from tests.pages.conftest import browser, create_broadcast, new_page, until  # noqa: F401 - browser is a fixture

pytestmark = [pytest.mark.media, pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("locale,text", [("en-US", "Your encoder sends B-frames"),
                                         ("ko-KR", "인코더가 B-프레임을 보내고 있어")])
async def test_the_studio_shows_the_b_frames_warning(make_server, browser, token, media_ip, tmp_path,  # noqa: F811 - the fixture imported above
                                                     locale, text) -> None:
    srv = await make_server(media_dir=str(tmp_path / "media"))
    host = token("host", "b1", "h1")
    await create_broadcast(srv.url, host)
    studio = await new_page(browser, locale=locale)
    await studio.goto(f"{srv.url}/studio#token={host}")
    await studio.wait_for_selector("body[data-ready='1']")
    assert await studio.locator("#ingest-warnings").is_hidden()
    async with aiohttp.ClientSession() as http:
        obs = ObsLikePublisher(srv.url, "b1", host, bframes=2)  # OBS's WHIP output with x264 defaults
        await obs.start(http)
        item = studio.locator("#ingest-warnings li[data-warning='B_FRAMES']")
        await item.wait_for(state="visible", timeout=30_000)
        assert text in await item.inner_text()
        # a studio opened later gets it from its join snapshot
        late = await new_page(browser, locale=locale)
        await late.goto(f"{srv.url}/studio#token={host}")
        await late.locator("#ingest-warnings li[data-warning='B_FRAMES']").wait_for(state="visible", timeout=30_000)
        assert await obs.stop(http) == 200
    await until(lambda: studio.locator("#ingest-warnings").is_hidden(), 30, "the warning to go with the publish")
    assert not studio.errors and not late.errors


async def test_a_player_on_the_edge_process_plays_webrtc(make_server, browser, token, media_ip,  # noqa: F811 - the fixture imported above
                                                         tmp_path) -> None:
    shared = str(tmp_path / "shared")
    origin = await make_server(media_dir=shared)
    edge = await make_server(media_dir=shared)
    host = token("host", "b1", "h1")
    await create_broadcast(origin.url, host)
    async with aiohttp.ClientSession() as http:
        obs = ObsLikePublisher(origin.url, "b1", host, bframes=0, keyint=30)
        await obs.start(http)
        viewer = await new_page(browser)
        await viewer.goto(f"{edge.url}/watch/b1?token={token('viewer', 'b1', 'v1')}")
        await until(lambda: viewer.evaluate("() => document.body.dataset.video === 'webrtc'"), 60, "WebRTC playback")
        await until(lambda: viewer.evaluate("() => document.querySelector('#video').currentTime > 1"), 60,
                    "the edge's video to play")
        assert "b1" in edge.app["node"].media.pulls and edge.app["node"].media.viewer_count("b1") == 1
        assert await obs.stop(http) == 200
    assert not viewer.errors
