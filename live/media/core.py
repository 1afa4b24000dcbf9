"""The state every part of a node's media shares: its sessions, the viewer cap and the playback
mode, state events to listeners, ending a viewer. Publishing (publishing.py), the cascade
(cascade.py) and playback (service.py) build on it; MediaService puts them together."""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCPeerConnection

from live.media import ice, metrics
from live.media.claims import PublishClaims
from live.media.edge import EdgePull
from live.media.limits import OfferLimits
from live.media.negotiation import same_codecs
from live.media.sessions import PublishSession, ViewerSession
from live.media.stream import LoopLoad, Stream

log = logging.getLogger("hawker.media")

VIDEO_QUEUE_FRAMES = 60  # ~2 s at 30 fps, then drop to the next keyframe
AUDIO_QUEUE_FRAMES = 100  # ~2 s of 20 ms Opus packets
MAX_FANOUT_BUSY = 0.75  # share of the event loop the fan-out may take before new viewers go to HLS
CONNECT_TIMEOUT_S = 30.0  # a publisher that never completes ICE+DTLS must not hold the broadcast
VIEWER_CONNECT_TIMEOUT_S = 10.0  # ...nor a viewer a WebRTC slot (Config.webrtc_connect_timeout_s)
SESSIONS_PER_USER = 2  # viewer sessions per user and broadcast (Config.webrtc_sessions_per_user)
STALL_S = 5.0  # no media from a live host for this long -> "stalled" (Config.media_stall_s)
STALL_GRACE_S = 30.0  # a stalled publish ends after this unless the host comes back (Config.media_stall_grace_s)
EDGE_LINGER_S = 5.0  # an edge keeps its pull this long after its last viewer left (Config.media_edge_linger_s)
EDGE_WATCH_S = 2.0  # how often an edge checks in Redis that its origin still holds the publish
FORWARD_MODES = ("direct", "direct-unbatched", "sender")  # HAWKER_MEDIA_FORWARD; the last two for comparison
MAX_EDGES = 64  # edge pulls one origin serves per broadcast (they take no viewer slot)

StateListener = Callable[[str, dict[str, Any]], Awaitable[None]]


class MediaCore(ABC):
    """Owns every peer connection of this process; the parts below add what they do with them."""

    def __init__(self, *, ice_servers: list[ice.IceServer], viewer_cap: int, hls: Any | None = None,
                 forward: str = "direct", claims: PublishClaims | None = None,
                 sessions_per_user: int = SESSIONS_PER_USER, offer_limits: OfferLimits | None = None,
                 viewer_connect_timeout_s: float = VIEWER_CONNECT_TIMEOUT_S,
                 stall_s: float = STALL_S, stall_grace_s: float = STALL_GRACE_S,
                 secret: str = "", edge_linger_s: float = EDGE_LINGER_S,
                 keyframe_warn_s: float = 4.0, bitrate_warn_kbps: int = 4000) -> None:
        if forward not in FORWARD_MODES:
            raise ValueError("forward must be 'direct' (fan-out loop, GSO batches), 'direct-unbatched' (one "
                             "sendto per packet) or 'sender' (aiortc RTCRtpSender per viewer)")
        self.forward = forward
        self.claims = claims or PublishClaims(None, secrets.token_hex(6))
        self.ice_servers = ice_servers
        self.viewer_cap = viewer_cap
        self.hls = hls  # live.media.hls.HlsService or None
        self.publishers: dict[str, PublishSession] = {}  # by broadcast
        self.publish_sessions: dict[str, PublishSession] = {}  # by session id
        self.viewers: dict[str, ViewerSession] = {}  # by session id
        self.listeners: list[StateListener] = []
        self._pending_publish: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._over_cap = False
        self.closing = False
        self.connect_timeout_s = CONNECT_TIMEOUT_S
        self.viewer_connect_timeout_s = viewer_connect_timeout_s
        self.sessions_per_user = max(1, sessions_per_user)
        self.offer_limits = offer_limits or OfferLimits.of(0, 0, 0, 0)
        self.stall_s = stall_s
        self.stall_grace_s = stall_grace_s
        self.claims.on_lost = self._claim_lost
        self.load = LoopLoad()
        self.max_fanout_busy = MAX_FANOUT_BUSY
        # cascade: the internal listener's URL (None: this process pulls from nobody and serves no edge)
        self.secret = secret
        self.edge_url: str | None = None
        self.edge_linger_s = edge_linger_s
        self.pulls: dict[str, EdgePull] = {}  # by broadcast: this process as an edge
        self._pulling: dict[str, asyncio.Future[EdgePull]] = {}
        self._edge_sessions = 0  # entries of self.viewers that are other processes' pulls
        self._http: Any = None  # aiohttp.ClientSession for pulls, made on first use
        self.keyframe_warn_s = keyframe_warn_s
        self.bitrate_warn_kbps = bitrate_warn_kbps

    # ---- what the parts provide ------------------------------------------------------------------

    @abstractmethod
    async def end_publish(self, broadcast: str, session_id: str, reason: str = "deleted") -> bool:
        """End a publish (publishing.py)."""

    @abstractmethod
    def _linger_if_unwatched(self, broadcast: str) -> None:
        """The last local viewer of `broadcast` left: let an edge pull go (cascade.py)."""

    def _claim_lost(self, broadcast: str, session_id: str) -> None:
        """The same host published on another process, which took the shared claim: end ours."""
        self._spawn(self.end_publish(broadcast, session_id, reason="taken over on another process"))

    # ---- state -------------------------------------------------------------------------------

    def viewer_count(self, broadcast: str | None = None) -> int:
        """WebRTC viewers (edge pulls of other processes are not viewers)."""
        if broadcast is None:
            return len(self.viewers) - self._edge_sessions
        return sum(1 for v in self.viewers.values() if v.broadcast == broadcast and v.via != "edge")

    def edge_count(self, broadcast: str) -> int:
        """Other processes pulling `broadcast` from this one (cascade)."""
        return sum(1 for v in self.viewers.values() if v.broadcast == broadcast and v.via == "edge")

    def _source(self, broadcast: str) -> Stream | None:
        """The stream local viewers of `broadcast` forward: the local publish or this edge's pull."""
        pub = self.publishers.get(broadcast)
        if pub is not None and not pub.closed:
            return pub.stream
        pull = self.pulls.get(broadcast)
        return pull.stream if pull is not None and not pull.closed else None

    def hls_url(self, broadcast: str) -> str:
        return f"/hls/{broadcast}/index.m3u8"

    def mode(self) -> str:
        full = self.viewer_count() >= self.viewer_cap or self.load.fraction() > self.max_fanout_busy
        return "hls" if full else "webrtc"

    def state(self, broadcast: str) -> dict[str, Any]:
        """What a player needs to pick its playback: is the host live, WebRTC or HLS, where."""
        pub = self.publishers.get(broadcast)
        live = bool(pub and not pub.closed)
        hls_ready = bool(self.hls and self.hls.has_playlist(broadcast))
        codec = None
        if pub and pub.stream.info.video_codec is not None:
            codec = pub.stream.info.video_codec.name
        stalled_at = pub.stalled_at if live and pub else None
        return {
            "broadcast": broadcast,
            "live": live,
            "state": "offline" if not live else "stalled" if stalled_at is not None else "live",
            "stalled_until": None if stalled_at is None else
            int((time.time() + stalled_at + self.stall_grace_s - time.monotonic()) * 1000),
            "mode": self.mode() if live else "hls",
            "codec": codec,
            "whep_url": f"/whep/{broadcast}",
            "hls_url": self.hls_url(broadcast) if (hls_ready or live) and self.hls else None,
            "webrtc_viewers": self.viewer_count(broadcast),
            "webrtc_cap": self.viewer_cap,
            "fanout_busy": round(self.load.fraction(), 3),
            "warnings": list(pub.ingest.warnings) if live and pub else [],
            "ts": int(time.time() * 1000),
        }

    async def current_state(self, broadcast: str) -> dict[str, Any]:
        """`state()`, also right on a process that does not hold the publish: with the cascade on it
        serves WebRTC too (`cascade: true`, its own capacity decides `mode`), else HLS only."""
        state = self.state(broadcast)
        if not state["live"]:
            holder = await self.claims.holder(broadcast)
            if holder is not None:
                cascade = bool(self.edge_url and holder.get("url"))
                state.update(live=True, state="live", mode=self.mode() if cascade else "hls",
                             hls_url=self.hls_url(broadcast), elsewhere=True, cascade=cascade,
                             codec=holder.get("codec"))
        return state

    def on_state(self, listener: StateListener) -> None:
        """Register `await listener(broadcast, state)` for stream up/down and playback-mode flips."""
        self.listeners.append(listener)

    def _emit(self, broadcast: str) -> None:
        state = self.state(broadcast)
        for listener in self.listeners:
            self._spawn(listener(broadcast, state))

    def _check_cap_flip(self) -> None:
        over = self.mode() == "hls"
        if over != self._over_cap:
            self._over_cap = over
            for broadcast in list(self.publishers):
                self._emit(broadcast)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _pc(self) -> RTCPeerConnection:
        return RTCPeerConnection(ice.rtc_configuration(self.ice_servers))

    # ---- viewers ---------------------------------------------------------------------------------

    def _move_viewers(self, old: Stream, new: Stream) -> int:
        """Re-point the viewers of `old` to `new` (same codecs: they resume at its next keyframe);
        with other codecs they are ended and negotiate again. Returns how many moved."""
        viewers = [v for v in self.viewers.values() if v.stream is old]
        if not viewers:
            return 0
        if not same_codecs(old, new):
            for viewer in viewers:
                self._detach_viewer(viewer)
                self._spawn(viewer.pc.close())
            return 0
        new.adopt(old)
        for viewer in viewers:
            viewer.stream = new
        return len(viewers)

    async def _connect_watchdog(self, pc: RTCPeerConnection, end: Callable[[], Awaitable[Any]],
                                timeout_s: float | None = None) -> None:
        timeout_s = self.connect_timeout_s if timeout_s is None else timeout_s
        await asyncio.sleep(timeout_s)
        if pc.connectionState not in ("connected", "closed"):
            log.info("peer connection still %s after %.0fs: closing it", pc.connectionState, timeout_s)
            await end()

    async def end_play(self, broadcast: str, session_id: str) -> bool:
        session = self.viewers.get(session_id)
        if session is None or session.broadcast != broadcast or session.closed:
            return False
        self._detach_viewer(session)
        await session.pc.close()
        return True

    def _detach_viewer(self, session: ViewerSession) -> None:
        """The synchronous half of ending a viewer: out of the fan-out and the cap at once."""
        session.closed = True
        self.viewers.pop(session.id, None)
        if session.via == "edge":
            self._edge_sessions -= 1
        else:
            metrics.VIEWERS.dec()
        if session.stream is not None:
            session.stream.remove_outputs(session.outputs)
            session.stream.remove_tracks(session.video, session.audio)
            self._linger_if_unwatched(session.broadcast)
        for track in (session.video, session.audio):
            if track is not None:
                track.stop()
        self._check_cap_flip()

    def _replay_url(self, broadcast: str) -> str | None:
        if self.hls is not None and self.hls.has_playlist(broadcast):
            return self.hls_url(broadcast)
        return None
