"""Ingest checks: tell the host at once when its encoder settings will hurt the viewers.

OBS's default x264 settings use B-frames and a long keyframe interval; a bitrate far above what
the fan-out is sized for costs every viewer packets (the cost is per packet). Each check looks at
the host's frames as they leave the jitter buffer (no decoding) and raises a warning code, listed
in `media.state.warnings` and shown in the studio:

- `B_FRAMES`: a video frame's RTP timestamp (its presentation time) is earlier than one already
  received. Frames travel in decode order, so presentation times going backwards means B-frames,
  which WebRTC players show jerkily and the HLS remux drops.
- `KEYFRAME_INTERVAL_LONG` (H.264): keyframes more than `keyframe_warn_s` apart in media time (or
  none in the first `keyframe_warn_s`). Viewers joining and HLS segments start on keyframes.
- `BITRATE_HIGH`: video above `bitrate_warn_kbps` over a 5 s window.

Warnings stay for the rest of the publish (they name encoder settings); publishing again with
fixed settings (a takeover) starts clean."""
from __future__ import annotations

from live.media.frames import VIDEO_CLOCK, EncodedFrame

B_FRAMES = "B_FRAMES"
KEYFRAME_INTERVAL_LONG = "KEYFRAME_INTERVAL_LONG"
BITRATE_HIGH = "BITRATE_HIGH"
BITRATE_WINDOW_S = 5.0
HALF = 1 << 31


class IngestCheck:
    """Feed it every frame of one publish; `feed()` returns True when a new warning appeared."""

    __slots__ = ("keyframe_warn_s", "bitrate_warn_kbps", "warnings", "_max_ts", "_first_ts", "_key_ts",
                 "_window_start", "_window_bytes", "reordered")

    def __init__(self, keyframe_warn_s: float = 4.0, bitrate_warn_kbps: int = 4000) -> None:
        self.keyframe_warn_s = keyframe_warn_s
        self.bitrate_warn_kbps = bitrate_warn_kbps
        self.warnings: list[str] = []
        self._max_ts: int | None = None  # highest presentation time seen (RTP, 90 kHz)
        self._first_ts: int | None = None
        self._key_ts: int | None = None
        self._window_start: float | None = None
        self._window_bytes = 0
        self.reordered = 0

    def _warn(self, code: str) -> bool:
        if code in self.warnings:
            return False
        self.warnings.append(code)
        return True

    def feed(self, frame: EncodedFrame) -> bool:
        if frame.kind != "video":
            return False
        new = False
        ts = frame.timestamp
        if self._max_ts is None:
            self._max_ts = self._first_ts = ts
        else:
            ahead = (ts - self._max_ts) & 0xFFFFFFFF
            if ahead >= HALF:  # earlier than a frame already received: decode order != presentation order
                self.reordered += 1
                new |= self._warn(B_FRAMES)
            else:
                self._max_ts = ts
        if frame.codec == "H264" and self.keyframe_warn_s > 0:
            limit = int(self.keyframe_warn_s * VIDEO_CLOCK)
            since = self._key_ts if self._key_ts is not None else self._first_ts
            if since is not None and ((ts - since) & 0xFFFFFFFF) < HALF and (ts - since) & 0xFFFFFFFF > limit:
                new |= self._warn(KEYFRAME_INTERVAL_LONG)
            if frame.keyframe:
                self._key_ts = ts
        if self.bitrate_warn_kbps > 0:
            if self._window_start is None:
                self._window_start = frame.arrival
            self._window_bytes += len(frame.data)
            span = frame.arrival - self._window_start
            if span >= BITRATE_WINDOW_S:
                if self._window_bytes * 8 / span / 1000 > self.bitrate_warn_kbps:
                    new |= self._warn(BITRATE_HIGH)
                self._window_start, self._window_bytes = frame.arrival, 0
        return new
