"""Cascade, the edge side: pull a broadcast once from its origin process and forward it locally.

A process that gets a WebRTC viewer for a broadcast published on another process (or node) opens
ONE pull: an aiortc peer connection that is a WHEP client of the origin's internal listener
(live/media/internal.py), authenticated with an internal token. Its receivers are tapped like a
host's (tap.py): the origin's forwarded frames arrive as `EncodedFrame`s and go into a local
`Stream`, which fans them out to the local viewers exactly as the origin does (one packetization,
keyframe gating, PLIs merged and sent upstream to the origin, which merges them again for the host).

The orchestration (first viewer opens, last viewer leaves -> linger -> drop, origin ends/dies ->
viewers end or follow a takeover) is in MediaService; this module only negotiates and closes."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription

from live.media import tap
from live.media.frames import EncodedFrame
from live.media.internal import PULL_PATH, mint_edge_token
from live.media.stream import Stream

log = logging.getLogger("hawker.media.edge")

HTTP_TIMEOUT_S = 10.0


class EdgeError(Exception):
    """The origin could not be pulled (unreachable, refused, not live any more)."""


@dataclass(eq=False)
class EdgePull:
    """This process's one pull of `broadcast` from `origin` (the Redis claim record it followed)."""

    broadcast: str
    origin: dict[str, Any]  # {"node", "session", "sub", "codec", "url"}
    pc: RTCPeerConnection
    stream: Stream
    receivers: dict[str, RTCRtpReceiver] = field(default_factory=dict)
    location: str | None = None  # the origin's resource URL (DELETE drops the pull there)
    closed: bool = False
    linger: Any = None  # asyncio.TimerHandle while no local viewer watches
    frames: int = 0

    @property
    def node(self) -> str | None:
        return self.origin.get("node")

    def send_pli(self) -> Any | None:
        """A coroutine sending one PLI to the origin (merged by the stream's KeyframeRequester), or None."""
        receiver = self.receivers.get("video")
        if self.closed or receiver is None:
            return None
        ssrc = tap.media_ssrc(receiver)
        return receiver._send_rtcp_pli(ssrc) if ssrc is not None else None


async def negotiate(pull: EdgePull, http: aiohttp.ClientSession, secret: str, node_id: str,
                    on_frame: Callable[[EncodedFrame], None], on_end: Callable[[str], None]) -> None:
    """Offer recvonly video + audio to the origin and set its answer. Taps are installed before the
    receivers start, so no decoder ever runs here either. Raises EdgeError."""
    pc = pull.pc
    for kind in ("video", "audio"):
        transceiver = pc.addTransceiver(kind, direction="recvonly")
        pull.receivers[kind] = transceiver.receiver
        tap.install(transceiver.receiver, kind, on_frame, on_end)
    await pc.setLocalDescription(await pc.createOffer())
    url = str(pull.origin.get("url") or "").rstrip("/")
    if not url.startswith("http"):
        raise EdgeError("the origin advertises no internal URL")
    token = mint_edge_token(secret, node_id, pull.broadcast)
    headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"}
    try:
        async with http.post(url + PULL_PATH.format(broadcast=pull.broadcast), data=pc.localDescription.sdp.encode(),
                             headers=headers, timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)) as resp:
            body = await resp.text()
            if resp.status != 201:
                raise EdgeError(f"the origin answered {resp.status}: {body[:200]}")
            pull.location = url + resp.headers.get("Location", "")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise EdgeError(f"the origin is unreachable: {exc!r}") from None
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    for t in pc.getTransceivers():
        main = next((c for c in getattr(t, "_codecs", []) if c.name.lower() != "rtx"), None)
        if main is not None and t.currentDirection != "inactive":
            if t.kind == "video":
                pull.stream.info.video_codec = main
            else:
                pull.stream.info.audio_codec = main
    if pull.stream.info.video_codec is None and pull.stream.info.audio_codec is None:
        raise EdgeError("the origin's answer carries no media")


async def release(pull: EdgePull, http: aiohttp.ClientSession | None, secret: str, node_id: str) -> None:
    """Close the pull here and tell the origin (best effort: its side also ends on the DTLS close)."""
    pull.closed = True
    if pull.linger is not None:
        pull.linger.cancel()
        pull.linger = None
    pull.stream.end()
    if http is not None and pull.location and not http.closed:
        token = mint_edge_token(secret, node_id, pull.broadcast)
        try:
            async with http.delete(pull.location, headers={"Authorization": f"Bearer {token}"},
                                   timeout=aiohttp.ClientTimeout(total=3)):
                pass
        except (aiohttp.ClientError, TimeoutError):
            pass
    await pull.pc.close()
