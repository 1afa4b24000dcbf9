"""SDP and codec choices of the media part: we forward, never transcode, so a viewer must accept
exactly the host's codec; neither side gets feedback we would not act on; the host's socket buffers
are grown to survive the fan-out's busy stretches."""
from __future__ import annotations

import socket
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters

from domain import Code, DomainError
from live.media.stream import Stream

VIEWER_HEADER_EXTENSIONS = ("urn:ietf:params:rtp-hdrext:sdes:mid",)
INGEST_RCVBUF = 4 * 1024 * 1024


def grow_receive_buffers(pc: RTCPeerConnection) -> None:
    """The host's packets must survive the fan-out loop's busy stretches (one video frame to a few
    hundred viewers keeps the loop from reading for tens of ms): a lost ingest packet costs every
    viewer a frame. Ask for 4 MiB (the kernel caps it at net.core.rmem_max)."""
    for t in pc.getTransceivers():
        connection = getattr(t.receiver.transport.transport, "_connection", None)
        for protocol in getattr(connection, "_protocols", []):
            sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, INGEST_RCVBUF)
                except OSError:
                    pass


def replaced() -> DomainError:
    """A viewer's offer that a newer one of the same user took the place of."""
    return DomainError(Code.SESSION_REPLACED, "a newer offer from the same user replaced this one")


def same_codecs(old: Stream, new: Stream) -> bool:
    """Viewers negotiated the old publish's codecs; they can follow the new one only if it is the same."""
    def names(stream: Stream) -> tuple[str | None, str | None]:
        video, audio = stream.info.video_codec, stream.info.audio_codec
        return (video.name.lower() if video is not None else None, audio.name.lower() if audio is not None else None)
    return names(old) == names(new)


def supported(codec: RTCRtpCodecParameters) -> bool:
    """Codecs we forward as they are: VP8, packetization-mode=1 H264, Opus."""
    name = codec.name.lower()
    if name == "h264":
        return str(codec.parameters.get("packetization-mode", "0")) == "1"
    return name in ("vp8", "opus")


def capabilities_for(codec: Any, kind: str) -> list[RTCRtpCodecCapability]:
    """The viewer may only use the host's codec (we forward, we never transcode)."""
    capabilities = RTCRtpReceiver.getCapabilities(kind)  # None for a kind aiortc does not know
    caps = capabilities.codecs if capabilities is not None else []
    name = codec.name.lower()
    wanted = [c for c in caps if c.name.lower() == name]
    if name == "h264":
        # any packetization-mode=1 H264 entry works: the bitstream is forwarded as it is
        wanted = [c for c in wanted if str(c.parameters.get("packetization-mode")) == "1"]
    rtx = [c for c in caps if c.name.lower() == "rtx"]
    return wanted + (rtx if kind == "video" else [])


def trim_viewer_negotiation(pc: RTCPeerConnection) -> None:
    """Viewers get no REMB and no abs-send-time: we never adapt a forwarded stream's bitrate,
    so that feedback would only cost RTCP parsing and header bytes per packet."""
    for t in pc.getTransceivers():
        for codec in getattr(t, "_codecs", []):
            codec.rtcpFeedback = [fb for fb in codec.rtcpFeedback if fb.type != "goog-remb"]
        exts = getattr(t, "_headerExtensions", None)
        if exts is not None:
            t._headerExtensions = [e for e in exts if e.uri in VIEWER_HEADER_EXTENSIONS]
