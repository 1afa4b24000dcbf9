"""An OBS-like WHIP publisher built from aiortc and PyAV (none of the server's code; the WHIP calls are the
load test's publisher's): H.264 from libx264 with the encoder settings we choose (B-frames, keyframe interval) and Opus audio.

aiortc's own H.264 encoder is x264 with `tune=zerolatency` (no B-frames, keyframes on request).
OBS's defaults are not: so this track encodes with libx264 itself and hands aiortc the encoded
`av.Packet`s, which aiortc's sender packetizes as they are (`H264Encoder.pack`), in decode order
with their presentation times as RTP timestamps - exactly what OBS's WHIP output does."""
from __future__ import annotations

import asyncio
import fractions
import time
from collections import deque
from dataclasses import dataclass

import aiohttp
import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

from loadtest.media_clients import Publisher

TB = fractions.Fraction(1, 90000)


class X264PacketTrack(MediaStreamTrack):
    """Synthetic picture -> libx264 (`bframes`, `keyint` frames between keyframes) -> av.Packet."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 30, bframes: int = 0, keyint: int = 30) -> None:
        super().__init__()
        self.fps = fps
        self.codec = av.CodecContext.create("libx264", "w")
        self.codec.width, self.codec.height, self.codec.pix_fmt = width, height, "yuv420p"
        self.codec.time_base = TB
        self.codec.framerate = fractions.Fraction(fps, 1)
        self.codec.options = {
            "preset": "veryfast", "profile": "main" if bframes else "baseline",
            "x264-params": f"bframes={bframes}:b-adapt=0:keyint={keyint}:min-keyint={keyint}:scenecut=0"
                           f":rc-lookahead={max(bframes, 1)}:sync-lookahead=0:bitrate=600:vbv-maxrate=800"
                           f":vbv-bufsize=800:repeat-headers=1:annexb=1",
        }
        self._pending: deque[av.Packet] = deque()
        self._count = 0
        self._start: float | None = None
        self.sent_pts: list[int] = []

    def _picture(self) -> av.VideoFrame:
        frame = av.VideoFrame(self.codec.width, self.codec.height, "yuv420p")
        shift = (self._count * 4) % 256
        row = bytes((x + shift) % 256 for x in range(self.codec.width))
        frame.planes[0].update(row * self.codec.height)
        chroma = bytes([128]) * ((self.codec.width // 2) * (self.codec.height // 2))
        frame.planes[1].update(chroma)
        frame.planes[2].update(chroma)
        frame.pts = self._count * 90000 // self.fps
        frame.time_base = TB
        self._count += 1
        return frame

    async def recv(self) -> av.Packet:
        while not self._pending:
            if self.readyState != "live":
                raise MediaStreamError
            if self._start is None:
                self._start = time.monotonic()
            delay = self._start + self._count / self.fps - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            for packet in self.codec.encode(self._picture()):
                packet.time_base = TB
                self._pending.append(packet)
        packet = self._pending.popleft()
        self.sent_pts.append(int(packet.pts))
        return packet


@dataclass
class ObsLikePublisher(Publisher):
    """The load test's WHIP publisher (its offer and stop) with an x264 track of chosen settings."""

    bframes: int = 0
    keyint: int = 30
    track: X264PacketTrack | None = None

    async def start(self, session: aiohttp.ClientSession) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.track = X264PacketTrack(bframes=self.bframes, keyint=self.keyint)
        video = self.pc.addTransceiver(self.track, direction="sendonly")
        h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs
                if c.name == "H264" and c.parameters.get("packetization-mode") == "1"]
        video.setCodecPreferences(h264)
        self.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")  # aiortc sends it as Opus
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.offer(session)
