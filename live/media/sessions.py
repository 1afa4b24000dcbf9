"""What the media part keeps per connection: a host's publish session, a viewer's session, the
answer both doors (WHIP/WHEP routes, hub events) send back, and the broadcast-id check they share."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiortc import RTCPeerConnection, RTCRtpReceiver

from domain import Code, DomainError
from domain.validate import ID_RE, ID_RULE
from live.media import tap
from live.media.forward import ForwardTrack
from live.media.ingest import IngestCheck
from live.media.rtpout import RtpOutput
from live.media.stream import Stream

BROADCAST_RE = ID_RE  # the one id rule


def check_broadcast(broadcast: str) -> str:
    if not BROADCAST_RE.match(broadcast or ""):
        raise DomainError(Code.INVALID_BROADCAST, f"broadcast ids are {ID_RULE}")
    return broadcast


@dataclass(eq=False)
class PublishSession:
    id: str
    broadcast: str
    sub: str
    pc: RTCPeerConnection
    stream: Stream
    receivers: dict[str, RTCRtpReceiver] = field(default_factory=dict)
    taps: dict[str, tap.FrameTap] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    went_live: bool = False
    closed: bool = False
    last_frame: float = field(default_factory=time.monotonic)
    stalled_at: float | None = None  # monotonic time the host's media stopped (None: flowing)
    lost: bool = False  # the host's connection is gone: only a takeover or the grace end it
    ingest: IngestCheck = field(default_factory=IngestCheck)  # encoder-settings warnings (media.state)


@dataclass(eq=False)
class ViewerSession:
    id: str
    broadcast: str
    sub: str
    pc: RTCPeerConnection
    video: ForwardTrack | None
    audio: ForwardTrack | None
    via: str  # "whep" | "hub" | "edge" (another process pulling the broadcast: not a viewer slot)
    stream: Stream | None = None  # the publish it forwards (changes on a host takeover)
    outputs: list[RtpOutput] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    attached: bool = False
    closed: bool = False


@dataclass(frozen=True)
class Answer:
    session_id: str
    sdp: str
