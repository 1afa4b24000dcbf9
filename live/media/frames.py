"""Encoded media frames as they leave the host's jitter buffer, packetized once for every viewer.

The server never decodes for a viewer: a frame arrives from the ingest, its RTP payloads are cut
once (lazily, by the first viewer that needs them) and the same byte strings go to every viewer's
sender, which only adds its own RTP header and SRTP."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction

from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder

VIDEO_CLOCK = 90000
AUDIO_CLOCK = 48000
CODECS = ("VP8", "H264", "opus")


@dataclass(slots=True, eq=False)
class EncodedFrame:
    """One encoded frame of the host's stream (a VP8/H264 picture or an Opus packet)."""

    kind: str  # "video" | "audio"
    codec: str  # "VP8" | "H264" | "opus"
    data: bytes
    timestamp: int  # clock units (90 kHz video, 48 kHz audio) counted from the publish start
    keyframe: bool
    picture_id: int = 0  # VP8 picture id, shared by all viewers (one packetization)
    arrival: float = field(default_factory=time.monotonic)
    _payloads: list[bytes] | None = None
    _runs: list[tuple[int, int]] | None = None

    @property
    def time_base(self) -> Fraction:
        return Fraction(1, VIDEO_CLOCK if self.kind == "video" else AUDIO_CLOCK)

    @property
    def pts(self) -> int:
        return self.timestamp

    def payloads(self) -> list[bytes]:
        """RTP payloads for this frame, computed once and shared by every viewer."""
        if self._payloads is None:
            self._payloads = packetize(self)
        return self._payloads

    def runs(self) -> list[tuple[int, int]]:
        """`payloads()` cut into runs one UDP GSO send can carry (computed once, shared)."""
        if self._runs is None:
            self._runs = gso_runs([len(p) for p in self.payloads()])
        return self._runs


MAX_SEGMENTS = 40  # packets per GSO send (<= 64 by the kernel, and <= 64 KiB in all)


def gso_runs(sizes: list[int], max_segments: int = MAX_SEGMENTS) -> list[tuple[int, int]]:
    """[start, end) index runs of equal sizes, each closed by at most one smaller packet: the shape
    a UDP_SEGMENT send needs (every segment the same size but the last). The RTP header and SRTP
    trailer are the same for every packet of a viewer, so equal payloads make equal datagrams."""
    runs: list[tuple[int, int]] = []
    i, n = 0, len(sizes)
    while i < n:
        size, j = sizes[i], i + 1
        while j < n and j - i < max_segments and sizes[j] == size:
            j += 1
        if j < n and j - i < max_segments and sizes[j] < size:
            j += 1
        runs.append((i, j))
        i = j
    return runs


def packetize(frame: EncodedFrame) -> list[bytes]:
    if frame.codec == "VP8":
        return Vp8Encoder._packetize(frame.data, frame.picture_id)
    if frame.codec == "H264":
        return H264Encoder._packetize(H264Encoder._split_bitstream(frame.data))
    return [frame.data]


def is_keyframe(codec: str, data: bytes) -> bool:
    """Does this assembled frame start a new picture sequence (VP8 key frame, H264 IDR)?"""
    if not data:
        return False
    if codec == "VP8":
        return (data[0] & 0x01) == 0  # frame tag P bit: 0 = key frame (RFC 6386 9.1)
    if codec == "H264":
        return 5 in h264_nal_types(data)
    return True  # audio: every packet decodes on its own


def h264_nal_types(data: bytes) -> set[int]:
    """NAL unit types in an Annex-B buffer (what aiortc's H264 depayloader produces)."""
    types: set[int] = set()
    i = data.find(b"\x00\x00\x01")
    while i != -1 and i + 3 < len(data):
        types.add(data[i + 3] & 0x1F)
        i = data.find(b"\x00\x00\x01", i + 3)
    return types


class SharedPacker:
    """Stands in for aiortc's per-sender encoder: `pack()` hands back the shared payloads.

    RTCRtpSender calls `encoder.pack(data)` for anything its track returns that is not an
    `av.Frame`; returning the frame's precomputed payloads keeps per-viewer work to the RTP
    header, SRTP and the send itself."""

    def pack(self, frame: EncodedFrame) -> tuple[list[bytes], int]:
        return frame.payloads(), frame.timestamp

    def encode(self, frame: object, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        raise TypeError("the forwarding sender never encodes")


class KeyframeWait:
    """Frames for a receiver that must start or restart on a keyframe (a new viewer, one that fell
    behind, the HLS encoder after an overflow): while `waiting`, frames are dropped (counted in
    `dropped`) until the next keyframe. A subclass sets both attributes."""

    waiting: bool
    dropped: int

    def _resumes_at(self, frame: EncodedFrame) -> bool:
        """While waiting: whether `frame` ends the wait (a keyframe); else it is counted dropped."""
        if frame.keyframe:
            self.waiting = False
            return True
        self.dropped += 1
        return False
