"""One live stream: the host's encoded frames in, pushed to every viewer track and to the HLS writer.

`on_frame()` runs on the event loop for each frame the ingest reassembles. The work per viewer is
an O(1) `push()` into a bounded deque; RTP payloads are cut once per frame (frames.EncodedFrame)."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from live.media.forward import ForwardTrack
from live.media.frames import AUDIO_CLOCK, VIDEO_CLOCK, EncodedFrame
from live.media.rtpout import RtpOutput, now_ntp

log = logging.getLogger("hawker.media.stream")


class KeyframeRequester:
    """Merges keyframe requests (viewer PLIs, new viewers, HLS) into at most one PLI per interval."""

    def __init__(self, send: Callable[[], None], min_interval_s: float = 1.0) -> None:
        self._send = send
        self._min = min_interval_s
        self._last = -1e9
        self._pending: asyncio.TimerHandle | None = None
        self.sent = 0
        self.requested = 0

    def request(self) -> None:
        self.requested += 1
        if self._pending is not None:
            return  # already scheduled: this request is merged into it
        now = time.monotonic()
        wait = self._last + self._min - now
        if wait <= 0:
            self._fire()
        else:
            self._pending = asyncio.get_running_loop().call_later(wait, self._fire)

    def _fire(self) -> None:
        self._pending = None
        self._last = time.monotonic()
        self.sent += 1
        try:
            self._send()
        except Exception:  # noqa: BLE001 - a failed keyframe request must not break the frame path that asked
            log.exception("sending a keyframe request failed")

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None


class LoopLoad:
    """How much of the event loop's wall time the fan-out takes (all streams of the process).

    The viewer cap is a count; this is the measured cost behind it. When the fan-out passes
    `MediaService.max_fanout_busy` of the loop, new viewers are sent to HLS even below the cap, so a
    busy machine or a high bitrate cannot push the loop past the point where it answers the
    host's ICE consent checks too late and loses the publish."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._start = time.monotonic()
        self._busy = 0.0
        self._last_fraction = 0.0

    def add(self, seconds: float) -> None:
        self._busy += seconds
        now = time.monotonic()
        if now - self._start >= self.window_s:
            self._last_fraction = self._busy / (now - self._start)
            self._start, self._busy = now, 0.0

    def fraction(self) -> float:
        """Busy share of the last full window (0 when the fan-out has been idle for a window)."""
        if time.monotonic() - self._start >= 2 * self.window_s:
            return 0.0
        return self._last_fraction


@dataclass
class StreamInfo:
    """What a viewer needs to negotiate: the host's codecs as aiortc codec parameters."""

    video_codec: RTCRtpCodecParameters | None = None
    audio_codec: RTCRtpCodecParameters | None = None


FrameListener = Callable[[EncodedFrame], None]


@dataclass(eq=False)
class Stream:
    """The host's stream for one broadcast while it is published."""

    broadcast: str
    session_id: str
    keyframes: KeyframeRequester
    load: LoopLoad = field(default_factory=LoopLoad)
    info: StreamInfo = field(default_factory=StreamInfo)
    video_tracks: set[ForwardTrack] = field(default_factory=set)
    audio_tracks: set[ForwardTrack] = field(default_factory=set)
    video_outputs: set[RtpOutput] = field(default_factory=set)
    audio_outputs: set[RtpOutput] = field(default_factory=set)
    listeners: list[FrameListener] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    frames_in: int = 0
    keyframes_in: int = 0
    ended: bool = False
    # continuity for viewers adopted from an earlier stream (host takeover): see adopt()
    last: dict[str, tuple[int, float]] = field(default_factory=dict)  # kind -> (timestamp, arrival)
    last_picture_id: int = -1
    _follow: dict[str, tuple[int, float]] = field(default_factory=dict)
    _ts_offset: dict[str, int] = field(default_factory=dict)
    _follow_picture_id: int | None = None
    _picture_offset: int = 0

    def on_frame(self, frame: EncodedFrame) -> None:
        if self.ended:
            return
        self._continue(frame)
        self.frames_in += 1
        if frame.kind == "video":
            if frame.keyframe:
                self.keyframes_in += 1
            tracks, outputs = self.video_tracks, self.video_outputs
        else:
            tracks, outputs = self.audio_tracks, self.audio_outputs
        for track in tracks:
            track.push(frame)
        if outputs:
            started = time.perf_counter()
            ntp = now_ntp()
            for output in outputs:
                try:
                    output.send(frame, ntp)
                except Exception:  # noqa: BLE001 - one broken viewer must not stop the others
                    log.exception("sending to a viewer failed; dropping it from the fan-out")
                    output.close()
            if any(o.closed for o in outputs):
                outputs.difference_update([o for o in outputs if o.closed])
            self.load.add(time.perf_counter() - started)
        for listener in self.listeners:
            listener(frame)

    def _continue(self, frame: EncodedFrame) -> None:
        """Shift this stream's RTP timestamps (and VP8 picture ids) to follow the stream it adopted
        viewers from, so their decoders see one timeline: the gap in RTP time is the gap in wall time."""
        kind = frame.kind
        follow = self._follow.pop(kind, None)
        if follow is not None:
            ts, arrival = follow
            clock = VIDEO_CLOCK if kind == "video" else AUDIO_CLOCK
            step = max(1, round((frame.arrival - arrival) * clock))
            self._ts_offset[kind] = (ts + step - frame.timestamp) & 0xFFFFFFFF
        offset = self._ts_offset.get(kind)
        if offset:
            frame.timestamp = (frame.timestamp + offset) & 0xFFFFFFFF
        if kind == "video":
            if self._follow_picture_id is not None:
                self._picture_offset = (self._follow_picture_id + 1 - frame.picture_id) & 0x7FFF
                self._follow_picture_id = None
            if self._picture_offset:
                frame.picture_id = (frame.picture_id + self._picture_offset) & 0x7FFF
            self.last_picture_id = frame.picture_id
        self.last[kind] = (frame.timestamp, frame.arrival)

    def adopt(self, old: Stream) -> None:
        """Host takeover: `old`'s viewers continue on this stream without renegotiating. Their RTP
        timeline (SSRC, sequence numbers, timestamps, picture ids) goes on; video waits for this
        stream's first keyframe, which is asked for at once."""
        self._follow.update(old.last)
        if old.last_picture_id >= 0:
            self._follow_picture_id = old.last_picture_id
        for output in old.video_outputs:
            output.waiting = True
        for track in old.video_tracks:
            track.wait_for_keyframe()
        self.video_outputs |= old.video_outputs
        self.audio_outputs |= old.audio_outputs
        self.video_tracks |= old.video_tracks
        self.audio_tracks |= old.audio_tracks
        for group in (old.video_outputs, old.audio_outputs, old.video_tracks, old.audio_tracks):
            group.clear()
        if self.video_outputs or self.video_tracks:
            self.keyframes.request()

    def add_tracks(self, video: ForwardTrack | None, audio: ForwardTrack | None) -> None:
        if video is not None:
            self.video_tracks.add(video)
            self.keyframes.request()  # a new viewer waits for the next keyframe: ask for it now
        if audio is not None:
            self.audio_tracks.add(audio)

    def add_outputs(self, outputs: list[RtpOutput]) -> None:
        for output in outputs:
            (self.video_outputs if output.kind == "video" else self.audio_outputs).add(output)
        if any(o.kind == "video" for o in outputs):
            self.keyframes.request()  # a new viewer waits for the next keyframe: ask for it now

    def remove_outputs(self, outputs: list[RtpOutput]) -> None:
        for output in outputs:
            output.close()
            self.video_outputs.discard(output)
            self.audio_outputs.discard(output)

    def remove_tracks(self, *tracks: ForwardTrack | None) -> None:
        for track in tracks:
            if track is not None:
                self.video_tracks.discard(track)
                self.audio_tracks.discard(track)
                track.stop()

    def end(self) -> None:
        self.ended = True
        self.keyframes.close()
        for track in list(self.video_tracks) + list(self.audio_tracks):
            track.stop()
        self.video_tracks.clear()
        self.audio_tracks.clear()
        for output in list(self.video_outputs) + list(self.audio_outputs):
            output.close()
        self.video_outputs.clear()
        self.audio_outputs.clear()
