"""WHIP/WHEP clients on aiortc: a synthetic publisher and viewers, for tests and the media benchmark.

They talk to the server over HTTP + WebRTC only. ICE needs a non-loopback interface (aioice and
browsers skip 127.0.0.1); `lan_ip()` finds one."""
from __future__ import annotations

import asyncio
import fractions
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

VIDEO_TB = fractions.Fraction(1, 90000)


def lan_ip() -> str | None:
    """This machine's first non-loopback IPv4 address, or None on a loopback-only host."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.254", 9))  # no packet is sent; this only picks the route
            ip = s.getsockname()[0]
            if not ip.startswith("127."):
                return ip
        except OSError:
            pass
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            ip = parts[parts.index("inet") + 1].split("/")[0]
            if not ip.startswith("127."):
                return ip
    return None


class PatternVideoTrack(MediaStreamTrack):
    """Synthetic video: a moving gradient, optionally with noise so the encoder spends its bitrate."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 30, noise: float = 0.0) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.noise = noise
        self._start: float | None = None
        self._count = 0
        self._ramp = bytes(range(256)) * (width // 256 + 3)
        self._chroma = bytes([128]) * ((width // 2) * (height // 2))

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count / self.fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        offset = (self._count * 4) % 256
        row = self._ramp[offset:offset + self.width]
        luma = bytearray(row * self.height)
        if self.noise > 0:
            n = int(len(luma) * self.noise)
            start = (self._count * 7919) % max(1, len(luma) - n)
            luma[start:start + n] = os.urandom(n)
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        frame.planes[0].update(bytes(luma))
        frame.planes[1].update(self._chroma)
        frame.planes[2].update(self._chroma)
        frame.pts = int(self._count * 90000 / self.fps)
        frame.time_base = VIDEO_TB
        self._count += 1
        return frame


async def _wait_gathered(pc: RTCPeerConnection) -> None:
    offer = await pc.createOffer()
    await pc.setLocalDescription(offer)  # aiortc gathers every candidate here (no trickle)


async def post_sdp(session: aiohttp.ClientSession, url: str, sdp: str, token: str | None) -> tuple[int, dict[str, str], str]:
    headers = {"Content-Type": "application/sdp"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with session.post(url, data=sdp.encode(), headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.text()


@dataclass
class Publisher:
    """An aiortc WHIP publisher sending synthetic video (+ silence as Opus audio)."""

    base_url: str
    broadcast: str
    token: str
    width: int = 320
    height: int = 240
    fps: int = 30
    noise: float = 0.0
    audio: bool = True
    video_codec: str | None = None  # force "H264" or "VP8"
    pc: RTCPeerConnection | None = None
    location: str | None = None
    video_track: PatternVideoTrack | None = None

    async def start(self, session: aiohttp.ClientSession) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.video_track = PatternVideoTrack(self.width, self.height, self.fps, self.noise)
        video = self.pc.addTransceiver(self.video_track, direction="sendonly")
        if self.video_codec:
            from aiortc import RTCRtpSender

            caps = RTCRtpSender.getCapabilities("video").codecs
            video.setCodecPreferences([c for c in caps if c.name == self.video_codec])
        if self.audio:
            self.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        await _wait_gathered(self.pc)
        await self.offer(session)

    async def offer(self, session: aiohttp.ClientSession) -> None:
        """POST the local offer to WHIP and apply the answer; keeps the session's Location."""
        assert self.pc is not None
        status, headers, body = await post_sdp(
            session, f"{self.base_url}/whip/{self.broadcast}", self.pc.localDescription.sdp, self.token)
        if status != 201:
            raise RuntimeError(f"WHIP publish failed: {status} {body}")
        self.location = headers["Location"]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))

    async def stop(self, session: aiohttp.ClientSession) -> int:
        status = 0
        if self.location:
            async with session.delete(self.base_url + self.location,
                                      headers={"Authorization": f"Bearer {self.token}"}) as resp:
                status = resp.status
            self.location = None
        if self.pc is not None:
            await self.pc.close()
        return status


@dataclass
class Viewer:
    """An aiortc WHEP viewer. decode=True keeps aiortc's decoder and records frame sizes;
    decode=False only counts frames (the benchmark's light viewer)."""

    base_url: str
    broadcast: str
    token: str
    decode: bool = True
    pc: RTCPeerConnection | None = None
    location: str | None = None
    sizes: list[tuple[int, int]] = field(default_factory=list)
    audio_frames: int = 0
    video_frames: int = 0
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    status: int = 0
    error: dict[str, Any] | None = None
    role: str | None = None  # X-Hawker-Media-Role: "origin" or "edge" (cascade)

    async def start(self, session: aiohttp.ClientSession) -> bool:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        ended_kinds: set[str] = set()

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            self.tasks.append(asyncio.ensure_future(self._consume(track, ended_kinds)))

        await _wait_gathered(self.pc)
        self.status, headers, body = await post_sdp(
            session, f"{self.base_url}/whep/{self.broadcast}", self.pc.localDescription.sdp, self.token)
        if self.status != 201:
            import json

            self.error = json.loads(body).get("error") if body.startswith("{") else {"message": body}
            await self.pc.close()
            return False
        self.location = headers["Location"]
        self.role = headers.get("X-Hawker-Media-Role")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        return True

    async def _consume(self, track: MediaStreamTrack, ended_kinds: set[str]) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    self.video_frames += 1
                    self.sizes.append((frame.width, frame.height))  # type: ignore[union-attr]  # a video track yields VideoFrames
                else:
                    self.audio_frames += 1
        except MediaStreamError:
            pass
        ended_kinds.add(track.kind)
        if len(ended_kinds) == 2:
            self.ended.set()

    async def stop(self, session: aiohttp.ClientSession | None = None) -> None:
        if session is not None and self.location:
            async with session.delete(self.base_url + self.location,
                                      headers={"Authorization": f"Bearer {self.token}"}):
                pass
            self.location = None
        if self.pc is not None:
            await self.pc.close()
        for task in self.tasks:
            task.cancel()
