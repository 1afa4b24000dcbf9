"""OBS-proof ingest (issue 17): the host learns at once when its encoder settings hurt viewers.

The publishers are aiortc + PyAV's libx264 (tests/media/obs_like.py), H.264 + Opus like OBS's WHIP
output, with the settings under test: B-frames, a long keyframe interval. Before: nothing told the
host (`media.state` had no `warnings`), and the HLS remux silently dropped the B-frames."""
from __future__ import annotations

import asyncio

import pytest

from loadtest.media_clients import Publisher, Viewer
from shop.broadcasts import BroadcastStore
from tests.hub.conftest import Client
from tests.media.conftest import wait_for
from tests.media.obs_like import ObsLikePublisher

pytestmark = [pytest.mark.media, pytest.mark.slow]


async def _state(http, server) -> dict:
    async with http.get(f"{server.url}/api/media/b1") as resp:
        return await resp.json()


async def test_b_frames_from_an_obs_like_publisher_warn_the_host_at_once(media_server, http, token, redis):
    await BroadcastStore(redis).ensure("b1", title="Show", host="h1")
    studio = Client()
    await studio.connect(media_server.url, token("host", "b1", "h1"))
    try:
        await studio.snapshot()
        pub = ObsLikePublisher(media_server.url, "b1", token("host", "b1", "h1"), bframes=2, keyint=30)
        await pub.start(http)
        warned = await wait_for(lambda: [d for d in studio.of("media.state") if "B_FRAMES" in d.get("warnings", [])],
                                30, "media.state with the B_FRAMES warning")
        assert warned[0]["live"] is True and warned[0]["codec"] == "H264"
        session = media_server.app["node"].media.publishers["b1"]
        assert session.ingest.reordered > 0 and session.stream.frames_in < 60  # within the first 2 s of video
        assert (await _state(http, media_server))["warnings"] == ["B_FRAMES"]
        assert pub.track is not None and pub.track.sent_pts != sorted(pub.track.sent_pts)  # it really sent B-frames
        # the media still flows to a WebRTC viewer (the warning is advice, not a refusal)
        viewer = Viewer(media_server.url, "b1", token("viewer", "b1", "v1"))
        assert await viewer.start(http), viewer.error
        await wait_for(lambda: len(viewer.sizes) >= 5 and viewer.audio_frames > 0, 60, "video and audio")
        await viewer.stop(http)
        assert await pub.stop(http) == 200
    finally:
        if studio.sio.connected:
            await studio.sio.disconnect()


async def test_an_obs_like_publisher_without_b_frames_and_with_2s_keyframes_gets_no_warning(media_server, http,
                                                                                             token):
    pub = ObsLikePublisher(media_server.url, "b1", token("host", "b1", "h1"), bframes=0, keyint=60)
    await pub.start(http)
    session = await wait_for(lambda: media_server.app["node"].media.publishers.get("b1"), 10, "the publish")
    await wait_for(lambda: session.stream.keyframes_in >= 3, 60, "three keyframes (4 s of video)")
    assert (await _state(http, media_server))["warnings"] == []
    assert session.ingest.reordered == 0
    assert await pub.stop(http) == 200


async def test_keyframes_more_than_4s_apart_warn_keyframe_interval_long(media_server, http, token):
    pub = ObsLikePublisher(media_server.url, "b1", token("host", "b1", "h1"), bframes=0, keyint=150)  # 5 s at 30 fps
    await pub.start(http)
    session = await wait_for(lambda: media_server.app["node"].media.publishers.get("b1"), 10, "the publish")
    await wait_for(lambda: session.stream.frames_in > 30, 30, "video")
    assert (await _state(http, media_server))["warnings"] == []  # not yet: 4 s have not passed
    state = await wait_for(lambda: "KEYFRAME_INTERVAL_LONG" in session.ingest.warnings, 30, "the warning")
    assert state
    assert session.stream.keyframes_in == 1  # warned before the next keyframe even came
    assert (await _state(http, media_server))["warnings"] == ["KEYFRAME_INTERVAL_LONG"]
    assert await pub.stop(http) == 200


async def test_a_bitrate_over_the_setting_warns_bitrate_high(make_server, media_ip, http, token, tmp_path):
    server = await make_server(media_dir=str(tmp_path / "media"), media_bitrate_warn_kbps=20)
    pub = Publisher(server.url, "b1", token("host", "b1", "h1"), noise=0.05)
    await pub.start(http)
    session = await wait_for(lambda: server.app["node"].media.publishers.get("b1"), 10, "the publish")
    await wait_for(lambda: "BITRATE_HIGH" in session.ingest.warnings, 30, "the bitrate warning")
    assert (await _state(http, server))["warnings"] == ["BITRATE_HIGH"]  # VP8 from aiortc: no other warning
    assert await pub.stop(http) == 200
    await asyncio.sleep(0)
