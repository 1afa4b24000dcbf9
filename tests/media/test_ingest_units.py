"""IngestCheck on hand-made frames: decode-order timestamps, RTP wrap-around, keyframe gaps, bitrate."""
from __future__ import annotations

from live.media.frames import EncodedFrame
from live.media.ingest import IngestCheck


def _frame(ts: int, key: bool = False, codec: str = "H264", size: int = 100, at: float = 0.0) -> EncodedFrame:
    return EncodedFrame(kind="video", codec=codec, data=b"x" * size, timestamp=ts & 0xFFFFFFFF, keyframe=key,
                        arrival=at)


def test_presentation_times_going_back_are_b_frames_even_across_the_rtp_wrap() -> None:
    check = IngestCheck()
    start = 0xFFFFFFFF - 4000  # the wrap happens inside the sequence
    ordered = [start + i * 3000 for i in range(6)]
    assert not any(check.feed(_frame(ts, key=i == 0)) for i, ts in enumerate(ordered))
    assert check.warnings == []
    decode_order = [start + 18000 + d for d in (9000, 3000, 6000)]  # I/P then the B-frames before it
    assert [check.feed(_frame(ts)) for ts in decode_order] == [False, True, False]  # warned once
    assert check.warnings == ["B_FRAMES"] and check.reordered == 2


def test_keyframe_gap_is_measured_in_media_time_and_only_for_h264() -> None:
    check = IngestCheck(keyframe_warn_s=4.0)
    assert not check.feed(_frame(0, key=True))
    assert not check.feed(_frame(4 * 90000))  # exactly 4 s: fine
    assert check.feed(_frame(4 * 90000 + 3000))
    assert check.warnings == ["KEYFRAME_INTERVAL_LONG"]
    vp8 = IngestCheck(keyframe_warn_s=4.0)  # the browser studio's VP8 is re-encoded for HLS: keyframes are ours
    assert not vp8.feed(_frame(0, key=True, codec="VP8")) and not vp8.feed(_frame(10 * 90000, codec="VP8"))


def test_bitrate_over_the_setting_over_a_5s_window() -> None:
    check = IngestCheck(bitrate_warn_kbps=1000)
    t = 0.0
    for i in range(151):  # 5 s at 30 fps of 3 KB frames = 720 kbps
        assert not check.feed(_frame(i * 3000, key=i == 0, codec="VP8", size=3000, at=t))
        t += 1 / 30
    check = IngestCheck(bitrate_warn_kbps=500)
    warned = [check.feed(_frame(i * 3000, key=i == 0, codec="VP8", size=3000, at=i / 30)) for i in range(151)]
    assert warned.count(True) == 1 and check.warnings == ["BITRATE_HIGH"]
