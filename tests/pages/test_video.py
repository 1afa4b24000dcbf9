"""A host goes live from the studio (fake camera, WHIP) and a viewer page shows moving video; the
pages at phone size and in Korean; screenshots under artifacts/."""
from __future__ import annotations

import pytest

from tests.pages.conftest import PHONE, lan_ip, open_player, open_studio, shot, start_show, until


@pytest.mark.parametrize("playback", ["webrtc", "hls"])
async def test_go_live_viewer_sees_moving_video(make_server, browser, token, tmp_path, playback) -> None:
    """WebRTC while there is room; with a WebRTC cap of 0 the server says HLS and the page plays hls.js."""
    if lan_ip() is None:
        pytest.skip("no non-loopback IPv4 interface: WebRTC ICE cannot gather candidates here")
    extra = {} if playback == "webrtc" else {"webrtc_viewer_cap": 0}
    srv, host = await start_show(make_server, token, media_dir=str(tmp_path / "media"), **extra)
    studio = await open_studio(browser, srv.url, host)
    viewer = await open_player(browser, srv.url, token('viewer', 'b1', 'v1'))
    assert await viewer.locator("#video-status").text_content() == "Waiting for the host's video…"

    await until(lambda: studio.evaluate("() => !!document.querySelector('#preview').srcObject"), what="camera preview")
    await studio.click("#golive")
    await studio.wait_for_selector("body[data-publishing='1']", timeout=60_000)

    async def playing() -> dict | None:
        v = await viewer.evaluate("() => { const v = document.querySelector('#video'); return {w: v.videoWidth, t: v.currentTime}; }")
        return v if v["w"] > 0 and v["t"] > 0 else None

    try:
        first = await until(playing, timeout=90, what="the viewer's video to play")
    except AssertionError:
        state = await viewer.evaluate("() => ({video: document.body.dataset.video, status: document.querySelector('#video-status').textContent, media: window.hawker.snap.media, src: document.querySelector('#video').src, err: document.querySelector('#video').error && document.querySelector('#video').error.message, rs: document.querySelector('#video').readyState})")
        raise AssertionError(f"no video: {state} {viewer.logs[-20:]}") from None
    await until(lambda: _later(viewer, first["t"]), timeout=30, what="currentTime to advance")
    assert await viewer.evaluate("() => document.body.dataset.video") == playback
    await shot(studio, f"studio-live-desktop-{playback}")
    await shot(viewer, f"player-live-desktop-{playback}")
    await studio.click("#stopvideo")
    await viewer.locator("#video-status", has_text="Waiting for the host's video").wait_for(timeout=30_000)


async def _later(page, t0: float) -> bool:
    return await page.evaluate("() => document.querySelector('#video').currentTime") > t0 + 0.5


async def test_phone_size_and_korean(make_server, browser, token) -> None:
    srv, host = await start_show(make_server, token)
    studio = await open_studio(browser, srv.url, host, viewport=PHONE)
    await studio.locator("#products li[data-product='mug'] button").click()
    viewer = await open_player(browser, srv.url, token('viewer', 'b1', 'v1', name='민지'), viewport=PHONE, locale="ko-KR")
    await viewer.wait_for_selector("#buy-card:not([hidden])")
    assert await viewer.locator("html").get_attribute("lang") == "ko"
    assert await viewer.locator("#chat-title").text_content() == "채팅"
    # nothing wider than the phone: no sideways scrolling
    assert await viewer.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    # a refusal from the server is a Korean sentence, not a code
    await viewer.fill("#chat-input", "   ")
    await viewer.fill("#chat-input", "x" * 300 + "y")  # maxlength keeps it to 300: send one the server refuses instead
    await viewer.evaluate("() => { document.querySelector('#chat-input').removeAttribute('maxlength'); }")
    await viewer.fill("#chat-input", "x" * 301)
    await viewer.press("#chat-input", "Enter")
    err = viewer.locator("#error")
    await err.wait_for(state="visible")
    assert await err.text_content() == "메시지가 너무 깁니다."
    assert await err.get_attribute("data-code") == "TOO_LONG"
    await shot(viewer, "player-phone-ko")
    await shot(studio, "studio-phone")
    # switchable: English from the menu
    await viewer.select_option("#lang", "en")
    assert await viewer.locator("#chat-title").text_content() == "Chat"
    await shot(viewer, "player-phone-en")
