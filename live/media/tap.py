"""Hook into aiortc's RTCRtpReceiver (pinned 1.16.0) so the ingest hands out ENCODED frames.

aiortc's receiver reassembles frames in its jitter buffer and then puts `(codec, JitterFrame)`
on a `queue.Queue` read by a decoder thread. We swap that queue, before `receive()` starts the
thread, for a `FrameTap`: `put()` is called on the event loop with each assembled frame, and we
pass it on as an `EncodedFrame` (with a keyframe flag) instead of decoding it. The decoder thread
starts, finds the tap already closed from its side and exits at once; no decoding ever happens.

We also remove the receiver's RemoteBitrateEstimator: its REMB feedback throttled hosts from about
1.2 Mbps to 265 kbps when the server's loop was busy fanning out, which every viewer then saw."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver

from live.media.frames import EncodedFrame, is_keyframe

log = logging.getLogger("hawker.media.tap")

FrameSink = Callable[[EncodedFrame], None]
EndSink = Callable[[str], None]

_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"
_REMB_ATTR = "_RTCRtpReceiver__remote_bitrate_estimator"
_ACTIVE_SSRC_ATTR = "_RTCRtpReceiver__active_ssrc"
_RTX_SSRC_ATTR = "_RTCRtpReceiver__rtx_ssrc"


class FrameTap:
    """Duck-types the decoder `queue.Queue`: `put()` from the loop, `get()` from the idle thread."""

    def __init__(self, kind: str, on_frame: FrameSink, on_end: EndSink) -> None:
        self.kind = kind
        self._on_frame = on_frame
        self._on_end = on_end
        self._ended = False
        self._picture_id = 0
        self.frames = 0
        self.keyframes = 0
        self._lock = threading.Lock()

    # called by RTCRtpReceiver._handle_rtp_packet (event loop) and __stop_decoder
    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            with self._lock:
                if self._ended:
                    return
                self._ended = True
            self._on_end(self.kind)
            return
        if self._ended:
            return
        codec, jitter_frame = item
        name = "opus" if codec.name.lower() == "opus" else codec.name
        key = is_keyframe(name, jitter_frame.data)
        frame = EncodedFrame(
            kind=self.kind,
            codec=name,
            data=jitter_frame.data,
            timestamp=jitter_frame.timestamp,
            keyframe=key,
            picture_id=self._picture_id,
        )
        if self.kind == "video":
            self._picture_id = (self._picture_id + 1) & 0x7FFF
        self.frames += 1
        self.keyframes += key and self.kind == "video"
        try:
            self._on_frame(frame)
        except Exception:  # noqa: BLE001 - a fan-out bug must not kill the ingest
            log.exception("forwarding a %s frame failed", self.kind)

    # called once by aiortc's decoder thread: there is nothing to decode, so tell it to stop
    def get(self, block: bool = True, timeout: float | None = None) -> None:
        return None


def install(receiver: RTCRtpReceiver, kind: str, on_frame: FrameSink, on_end: EndSink) -> FrameTap:
    """Swap the receiver's decoder queue for a tap and disable its REMB. Call before receive()."""
    for attr in (_QUEUE_ATTR, _REMB_ATTR):
        if not hasattr(receiver, attr):  # pragma: no cover - guards an aiortc upgrade
            raise RuntimeError(f"aiortc internals changed: RTCRtpReceiver has no {attr}")
    tap = FrameTap(kind, on_frame, on_end)
    setattr(receiver, _QUEUE_ATTR, tap)
    setattr(receiver, _REMB_ATTR, None)
    return tap


def media_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC the host sends media on (not its RTX retransmission SSRC), for PLIs."""
    active: dict[int, Any] = getattr(receiver, _ACTIVE_SSRC_ATTR, {})
    rtx: dict[int, int] = getattr(receiver, _RTX_SSRC_ATTR, {})
    if rtx:
        originals = set(rtx.values())
        for ssrc in originals:
            if ssrc in active:
                return ssrc
    candidates = [(ts, ssrc) for ssrc, ts in active.items() if ssrc not in rtx]
    return max(candidates)[1] if candidates else None
