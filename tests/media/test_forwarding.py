"""WHIP publisher -> server -> WHEP viewers, all real aiortc peers over the machine's interface."""
from __future__ import annotations

import pytest

from loadtest.media_clients import Publisher, Viewer
from tests.media.conftest import wait_for, watching

pytestmark = [pytest.mark.media, pytest.mark.slow]


def _video_frames_sent(session) -> int:
    direct = sum(o.frames for o in session.outputs if o.kind == "video")
    return direct + (session.video.sent if session.video is not None else 0)


@pytest.mark.parametrize("forward", ["direct", "direct-unbatched", "sender"])
async def test_two_viewers_then_a_late_one_get_decodable_video_and_end_cleanly(media_server, http, token, forward):
    media = media_server.app["node"].media
    media.forward = forward  # the fan-out loop (default) or aiortc's own sender per viewer
    pub = Publisher(media_server.url, "b1", token("host", "b1", "h1"), width=320, height=240, noise=0.2)
    await pub.start(http)
    viewers = [Viewer(media_server.url, "b1", token("viewer", "b1", f"v{i}")) for i in range(2)]
    for v in viewers:
        assert await v.start(http), v.error
    await wait_for(lambda: all(len(v.sizes) >= 10 for v in viewers), 60, "both viewers to decode 10 frames")
    for v in viewers:
        assert set(v.sizes) == {(320, 240)}
        assert v.audio_frames > 0

    stream = media.publishers["b1"].stream
    keyframes_before = stream.keyframes_in
    late = Viewer(media_server.url, "b1", token("viewer", "b1", "late"))
    assert await late.start(http), late.error
    await wait_for(lambda: len(late.sizes) >= 5, 60, "the late viewer to decode frames")
    assert set(late.sizes) == {(320, 240)}
    # the late viewer's PLI request made the host send a new keyframe, and that is where it started
    assert stream.keyframes_in > keyframes_before
    late_session = next(s for s in media.viewers.values() if s.sub == "late")
    assert _video_frames_sent(late_session) >= 5
    if forward != "sender":  # hand-built RTP carries the negotiated MID header extension
        assert late_session.outputs and all(o.b0 == 0x90 and o.ext for o in late_session.outputs)
        # "direct" sends a frame's packets to a viewer in one UDP GSO sendmsg; "direct-unbatched" one by one
        batches = sum(o.batches for v in media.viewers.values() for o in v.outputs)
        assert (batches > 0) == (forward == "direct")

    # the server forwards, it does not transcode: every viewer's sender got the shared frames
    assert media.viewer_count("b1") == 3

    assert await pub.stop(http) == 200
    for v in [*viewers, late]:
        await wait_for(v.ended.is_set, 30, "viewer tracks to end after the publish ended")
    await wait_for(lambda: media.viewer_count("b1") == 0, 30, "viewer sessions to close")
    assert "b1" not in media.publishers
    for v in [*viewers, late]:
        await v.stop()


async def test_a_viewer_whose_socket_backs_up_skips_to_the_next_keyframe(media_server, http, token):
    """The per-viewer bound of the fan-out loop is the socket backlog: past it, drop to a keyframe."""
    media = media_server.app["node"].media
    pub, viewer = await watching(media_server.url, http, token, "slow", 5, "video before the backlog")
    session = next(s for s in media.viewers.values() if s.sub == "slow")
    output = next(o for o in session.outputs if o.kind == "video")
    transport = output.ice._nominated[1].protocol.transport
    keyframes = media.publishers["b1"].stream.keyframes.sent

    transport._buffer_size += 10 * 1024 * 1024  # the kernel and asyncio hold 10 MiB for this viewer
    await wait_for(lambda: output.overflows > 0 and output.waiting, 30, "the overflow to be noticed")
    transport._buffer_size -= 10 * 1024 * 1024  # it drains

    frames = len(viewer.sizes)
    await wait_for(lambda: len(viewer.sizes) >= frames + 5, 60, "video again after the next keyframe")
    assert not output.waiting and media.publishers["b1"].stream.keyframes.sent > keyframes
    assert set(viewer.sizes) == {(320, 240)}
    await viewer.stop(http)
    await pub.stop(http)
