"""Host takeover and stalls (issue 13 row 14): a host who reloads the studio is never locked out.

Real aiortc peers over the machine's interface: the same host publishing again takes over at once
and the viewers' connections carry on with the new publish; a host whose media stops is `stalled`
(viewers keep their connection) and ended only after the grace period."""
from __future__ import annotations

import asyncio
import time

import pytest

from loadtest.media_clients import Publisher, Viewer, post_sdp
from shop.broadcasts import BroadcastStore
from tests.hub.conftest import Client
from tests.media.conftest import wait_for
from tests.media.test_http import _offer

pytestmark = [pytest.mark.media, pytest.mark.slow]


def _session_id(viewer: Viewer) -> str:
    assert viewer.location
    return viewer.location.rsplit("/", 1)[-1]


@pytest.mark.parametrize("forward", ["direct", "sender"])
async def test_the_same_host_takes_over_at_once_and_viewers_continue_on_the_new_publish(media_server, http, token,
                                                                                         forward):
    """Before: `POST /whip` from the reloaded studio answered 409 while the dead tab's session lived."""
    media = media_server.app["node"].media
    media.forward = forward  # the fan-out loop (default) or aiortc's own sender per viewer
    first = Publisher(media_server.url, "b1", token("host", "b1", "h1"), width=320, height=240)
    await first.start(http)
    viewer = Viewer(media_server.url, "b1", token("viewer", "b1", "v1"))
    assert await viewer.start(http), viewer.error
    await wait_for(lambda: len(viewer.sizes) >= 5, 60, "video from the first publish")
    old = media.publishers["b1"]

    second = Publisher(media_server.url, "b1", token("host", "b1", "h1"), width=160, height=120)
    await second.start(http)  # the same host: 201 at once
    new = media.publishers["b1"]
    assert new is not old and old.closed and new.sub == "h1"
    await wait_for(lambda: old.pc.connectionState == "closed", 10, "the old session to be closed")
    await wait_for(lambda: viewer.sizes.count((160, 120)) >= 10, 60, "the viewer to play the new publish")
    assert _session_id(viewer) in media.viewers and not viewer.ended.is_set()  # the same connection
    assert media.viewers[_session_id(viewer)].stream is new.stream

    # another host is refused while the broadcast is live, with the documented code
    status, _, body = await post_sdp(http, f"{media_server.url}/whip/b1", await _offer(), token("host", "b1", "h2"))
    assert status == 409 and '"PUBLISH_CONFLICT"' in body
    # the dead tab's DELETE (its session id) cannot end the new publish
    assert await first.stop(http) == 404
    assert media.publishers["b1"] is new
    frames = len(viewer.sizes)
    await wait_for(lambda: len(viewer.sizes) >= frames + 10, 60, "video after the old tab's DELETE")
    assert await second.stop(http) == 200
    await wait_for(viewer.ended.is_set, 30, "the viewer to end with the publish")
    await viewer.stop()


async def test_a_host_whose_tab_dies_is_held_as_stalled_and_comes_back(media_server, http, token):
    """The studio tab dies (no DELETE): the broadcast is `stalled`, viewers keep their connection,
    and the host's next publish takes over within the grace period."""
    media = media_server.app["node"].media
    first = Publisher(media_server.url, "b1", token("host", "b1", "h1"), width=320, height=240)
    await first.start(http)
    viewer = Viewer(media_server.url, "b1", token("viewer", "b1", "v1"))
    assert await viewer.start(http), viewer.error
    await wait_for(lambda: len(viewer.sizes) >= 5, 60, "video from the first publish")

    await first.pc.close()  # the tab is gone: RTCP BYE / DTLS close, no DELETE
    await wait_for(lambda: media.state("b1")["state"] == "stalled", 15, "the publish to be stalled")
    state = media.state("b1")
    assert state["live"] is True and state["stalled_until"] > time.time() * 1000
    assert _session_id(viewer) in media.viewers  # viewers wait for the host instead of being dropped

    again = Publisher(media_server.url, "b1", token("host", "b1", "h1"), width=160, height=120)
    await again.start(http)
    await wait_for(lambda: viewer.sizes.count((160, 120)) >= 10, 60, "the viewer to play the host's new publish")
    assert media.state("b1")["state"] == "live" and _session_id(viewer) in media.viewers
    assert await again.stop(http) == 200
    await viewer.stop()


async def test_no_media_for_stall_s_is_stalled_then_ended_after_the_grace(media_server, http, token, redis):
    """No RTP for `media_stall_s` -> `media.state` `stalled` (urgent, to every viewer's socket); media
    back -> `live`; stalled for `media_stall_grace_s` -> ended."""
    media = media_server.app["node"].media
    media.stall_s, media.stall_grace_s = 1.0, 3.0  # Config.media_stall_s / media_stall_grace_s
    await BroadcastStore(redis).ensure("b1", title="Show", host="h1")
    watcher = Client()
    await watcher.connect(media_server.url, token("viewer", "b1", "v1"))
    try:
        await watcher.snapshot()
        pub = Publisher(media_server.url, "b1", token("host", "b1", "h1"), audio=False)
        await pub.start(http)
        session = media.publishers["b1"]
        await wait_for(lambda: session.stream.frames_in > 10, 60, "media from the host")

        track = pub.video_track
        assert track is not None
        send = track.recv
        flowing = asyncio.Event()

        async def paused():
            await flowing.wait()
            return await send()

        track.recv = paused  # the camera freezes; the connection lives
        stalled = await wait_for(lambda: [d for d in watcher.of("media.state") if d.get("state") == "stalled"], 15,
                                 "media.state stalled")
        assert stalled[0]["live"] is True and stalled[0]["stalled_until"] > time.time() * 1000
        async with http.get(f"{media_server.url}/api/media/b1") as resp:
            assert (await resp.json())["state"] == "stalled"

        flowing.set()
        track.recv = send
        await wait_for(lambda: watcher.of("media.state")[-1].get("state") == "live", 15, "media.state live again")
        assert media.publishers["b1"] is session

        flowing.clear()
        track.recv = paused
        await wait_for(lambda: session.stalled_at is not None, 15, "the second stall")
        started = time.monotonic()
        await wait_for(lambda: "b1" not in media.publishers, 15, "the stalled publish to end")
        assert 2.0 <= time.monotonic() - started <= 9.0  # the grace (3 s), not the ICE consent timeout (30 s)
        ended = await wait_for(lambda: [d for d in watcher.of("media.state") if d["live"] is False], 15,
                               "media.state offline")
        assert ended[-1]["state"] == "offline"
        flowing.set()
        await pub.stop(http)
    finally:
        if watcher.sio.connected:
            await watcher.sio.disconnect()


async def test_the_same_host_takes_over_from_another_process_and_another_host_is_refused(make_server, http, token,
                                                                                          tmp_path):
    """With several processes the Redis claim carries the host's `sub`: the same host's publish on
    process b wins at once and process a ends its copy at its next claim renewal (<= 5 s)."""
    shared = str(tmp_path / "shared-media")
    a = await make_server(media_dir=shared)
    b = await make_server(media_dir=shared)
    first = Publisher(a.url, "b1", token("host", "b1", "h1"))
    await first.start(http)
    await wait_for(lambda: "b1" in a.app["node"].media.publishers and a.app["node"].media.publishers["b1"].stream.frames_in > 5,
                   60, "media on process a")
    status, _, body = await post_sdp(http, f"{b.url}/whip/b1", await _offer(), token("host", "b1", "h2"))
    assert status == 409 and '"PUBLISH_CONFLICT"' in body  # another host, another process

    second = Publisher(b.url, "b1", token("host", "b1", "h1"))
    await second.start(http)  # the same host on process b: 201 at once
    assert "b1" in b.app["node"].media.publishers
    await wait_for(lambda: "b1" not in a.app["node"].media.publishers, 15, "process a to end its copy")
    async with http.get(f"{a.url}/api/media/b1") as resp:
        state = await resp.json()
    assert state["live"] is True and state["elsewhere"] is True  # process a now points at b's publish
    status, _, body = await post_sdp(http, f"{a.url}/whip/b1", await _offer(), token("host", "b1", "h2"))
    assert status == 409 and '"PUBLISH_CONFLICT"' in body
    assert await second.stop(http) == 200
    await first.stop(http)
