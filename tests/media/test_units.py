"""The small parts of the fan-out: keyframe detection on real encoder output, merged PLIs,
bounded per-viewer queues, ICE server parsing, SDP checks."""
from __future__ import annotations

import asyncio
import fractions

import av
import pytest

from domain import DomainError
from live.media import ice
from live.media.forward import ForwardTrack
from live.media.frames import EncodedFrame, is_keyframe, packetize
from live.media.limits import TokenBucket
from live.media.sdp import check_offer
from live.media.stream import KeyframeRequester, Stream
from tests.media.conftest import wait_for

pytestmark = pytest.mark.media


def _encode(codec: str, n: int = 5) -> list[av.Packet]:
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt = 64, 48, "yuv420p"
    ctx.time_base = fractions.Fraction(1, 30)
    ctx.framerate = fractions.Fraction(30, 1)
    if codec == "libx264":
        ctx.options = {"tune": "zerolatency", "x264-params": "keyint=100:scenecut=0"}
    packets = []
    for i in range(n):
        frame = av.VideoFrame(64, 48, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([(i * 40) % 256]) * plane.buffer_size)
        frame.pts = i
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    return packets


@pytest.mark.parametrize("encoder,name", [("libvpx", "VP8"), ("libx264", "H264")])
def test_keyframe_flag_matches_the_encoder(encoder, name):
    packets = _encode(encoder)
    flags = [is_keyframe(name, bytes(p)) for p in packets]
    assert flags == [p.is_keyframe for p in packets]
    assert flags[0] is True and not all(flags)
    frame = EncodedFrame(kind="video", codec=name, data=bytes(packets[0]), timestamp=0, keyframe=True)
    payloads = packetize(frame)
    assert payloads and frame.payloads() is frame.payloads()  # cut once, shared by every viewer


async def test_keyframe_requests_are_merged_to_one_per_interval():
    sent: list[float] = []
    loop = asyncio.get_running_loop()
    req = KeyframeRequester(lambda: sent.append(loop.time()), min_interval_s=0.5)
    for _ in range(20):
        req.request()
    assert len(sent) == 1  # the first goes at once, the other 19 are merged into one pending PLI
    await wait_for(lambda: len(sent) == 2, 10, "the merged PLI")
    assert sent[1] - sent[0] >= 0.45
    await asyncio.sleep(0.7)
    assert len(sent) == 2 and req.requested == 20
    req.close()


def _frame(key: bool, ts: int) -> EncodedFrame:
    return EncodedFrame(kind="video", codec="VP8", data=b"\x00" if key else b"\x01", timestamp=ts, keyframe=key)


async def test_viewer_queue_waits_for_a_keyframe_and_drops_to_the_next_one_on_overflow():
    asked: list[int] = []
    track = ForwardTrack("video", max_queue=3, want_keyframe=lambda: asked.append(1))
    track.push(_frame(False, 0))
    assert track.waiting and track.dropped == 1
    track.push(_frame(True, 1))
    for ts in (2, 3):
        track.push(_frame(False, ts))
    assert [f.timestamp for f in track._queue] == [1, 2, 3]
    track.push(_frame(False, 4))  # overflow: everything queued goes, wait for a keyframe again
    assert track.waiting and len(track._queue) == 0 and asked == [1]
    track.push(_frame(False, 5))
    track.push(_frame(True, 6))
    assert (await track.recv()).timestamp == 6
    track.stop()


def test_ice_servers_parse_both_forms():
    assert ice.parse("") == []
    servers = ice.parse("stun:s.example:3478, turn:u:p@t.example:3478?transport=tcp")
    assert [s.to_browser() for s in servers] == [
        {"urls": ["stun:s.example:3478"]},
        {"urls": ["turn:t.example:3478?transport=tcp"], "username": "u", "credential": "p"},
    ]
    same = ice.parse('[{"urls": ["turn:t.example:3478?transport=tcp"], "username": "u", "credential": "p"}]')
    assert same == servers[1:]
    for bad in ("http://x", "[{}]", "[not json"):
        with pytest.raises(ValueError):
            ice.parse(bad)
    assert ice.rtc_configuration([]).iceServers == []  # not None: no default public STUN


def test_sdp_checks_name_what_is_wrong():
    with pytest.raises(DomainError) as exc:
        check_offer("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", publishing=True)
    assert exc.value.code == "INVALID_SDP" and "ICE" in exc.value.message
    with pytest.raises(DomainError) as exc:
        check_offer("x" * 70000, publishing=False)
    assert exc.value.status == 413


def test_offer_token_bucket_refills_and_stays_bounded():
    bucket = TokenBucket(rate=1.0, burst=2, max_keys=3)
    assert bucket.take("u", now=0.0) == 0 and bucket.take("u", now=0.0) == 0
    assert bucket.take("u", now=0.0) == pytest.approx(1.0)  # empty: one token per second
    assert bucket.take("u", now=0.5) == pytest.approx(0.5)  # a refused take costs nothing...
    assert bucket.take("u", now=1.5) == 0  # ...and the bucket refilled meanwhile
    for key in "abcde":
        bucket.take(key, now=2.0)
    assert len(bucket._buckets) == 3  # least recently used buckets go first
    assert TokenBucket(rate=0, burst=5).take("u") == 0  # rate 0: no limit


async def test_a_takeover_stream_continues_the_viewers_rtp_timeline():
    """Viewers adopted from the old stream see one timeline: timestamps advance by the wall-clock
    gap, VP8 picture ids follow on, and video restarts at the new stream's first keyframe."""
    def frame(ts: int, key: bool, at: float, pid: int = 0) -> EncodedFrame:
        return EncodedFrame(kind="video", codec="VP8", data=b"\x00" if key else b"\x01", timestamp=ts,
                            keyframe=key, picture_id=pid, arrival=at)

    old = Stream(broadcast="b1", session_id="s1", keyframes=KeyframeRequester(lambda: None))
    asked: list[int] = []
    new = Stream(broadcast="b1", session_id="s2", keyframes=KeyframeRequester(lambda: asked.append(1)))
    track = ForwardTrack("video", max_queue=10, want_keyframe=lambda: None)
    old.add_tracks(track, None)
    old.on_frame(frame(1000, True, 100.0, pid=9))
    old.on_frame(frame(4000, False, 100.033, pid=10))
    assert [f.timestamp for f in track._queue] == [1000, 4000]

    new.adopt(old)
    assert track in new.video_tracks and not old.video_tracks and asked == [1]  # a keyframe asked for at once
    assert track.waiting and not track._queue
    new.on_frame(frame(777_000, False, 100.533, pid=0))  # not a keyframe: dropped
    assert not track._queue
    new.on_frame(frame(780_000, True, 100.566, pid=1))
    new.on_frame(frame(783_000, False, 100.6, pid=2))
    gap = round((100.566 - 100.033) * 90000)
    # the first frame the new stream saw set the offset (0.5 s after the old stream's last one)
    first_offset = 4000 + round((100.533 - 100.033) * 90000) - 777_000
    assert [f.timestamp for f in track._queue] == [(780_000 + first_offset) & 0xFFFFFFFF,
                                                   (783_000 + first_offset) & 0xFFFFFFFF]
    assert abs(track._queue[0].timestamp - (4000 + gap)) <= 3000  # one frame's worth of the wall-clock gap
    assert [f.picture_id for f in track._queue] == [12, 13]  # 10 was the old stream's last: 11, 12, 13 follow
    old.end()
    assert track.readyState == "live"  # ending the old stream does not stop the adopted viewer
    new.end()
