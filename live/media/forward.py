"""Per-viewer forwarding tracks: a bounded queue of shared encoded frames feeding one RTCRtpSender.

A video track starts "waiting for a keyframe" and drops everything until one arrives; when its
queue overflows (a slow viewer, a busy loop) it empties the queue and waits for the next keyframe
again, asking the host for one through the stream's merged PLI. Audio needs no keyframes."""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from live.media.frames import EncodedFrame, KeyframeWait, SharedPacker

_ENCODER_ATTR = "_RTCRtpSender__encoder"


class ForwardTrack(KeyframeWait, MediaStreamTrack):
    """A MediaStreamTrack whose recv() returns the host's encoded frames (never av.Frames)."""

    def __init__(self, kind: str, max_queue: int, want_keyframe: Callable[[], None]) -> None:
        super().__init__()
        self.kind = kind
        self._queue: deque[EncodedFrame] = deque()
        self._max = max_queue
        self._waiter: asyncio.Future[None] | None = None
        self._want_keyframe = want_keyframe
        self.waiting = kind == "video"
        self.sent = 0
        self.dropped = 0
        self.overflows = 0

    def push(self, frame: EncodedFrame) -> None:
        """Called by the stream for every host frame; O(1), never awaits."""
        if self.readyState != "live":
            return
        if self.waiting and not self._resumes_at(frame):
            return
        if len(self._queue) >= self._max:
            self.overflows += 1
            self.dropped += len(self._queue) + 1
            self._queue.clear()
            if self.kind == "video":
                self.waiting = not frame.keyframe
                if self.waiting:
                    self._want_keyframe()
                    return
        self._queue.append(frame)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def wait_for_keyframe(self) -> None:
        """Drop what is queued and start again at the next keyframe (a new publish took over)."""
        self._queue.clear()
        self.waiting = self.kind == "video"

    async def recv(self) -> EncodedFrame:  # type: ignore[override]  # forwards encoded frames, not aiortc's Frame/Packet
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self.sent += 1
        return self._queue.popleft()

    def stop(self) -> None:
        super().stop()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def prepare_sender(sender: RTCRtpSender, on_keyframe_request: Callable[[], None]) -> None:
    """Make an aiortc sender forward shared payloads and route viewer PLI/FIR to the host."""
    if not hasattr(sender, _ENCODER_ATTR):  # pragma: no cover - guards an aiortc upgrade
        raise RuntimeError("aiortc internals changed: RTCRtpSender has no __encoder")
    setattr(sender, _ENCODER_ATTR, SharedPacker())
    # RTCRtpSender._handle_rtcp_packet calls self._send_keyframe() on PLI/FIR: merge them upstream.
    sender._send_keyframe = on_keyframe_request  # type: ignore[method-assign]  # PLI/FIR merged upstream
