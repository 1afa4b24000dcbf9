"""The media part of a node: publish sessions (WHIP), viewer sessions (WHEP / hub), state events.

HTTP routes and hub events are thin doors onto `MediaService.publish()` / `play()`, so both doors
share one code path, one viewer cap and one set of errors."""
from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.exceptions import InternalError, InvalidStateError, OperationError
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters

from domain import Code, DomainError
from domain.validate import ID_RE, ID_RULE
from live.media import edge, ice, metrics, tap
from live.media.claims import PublishClaims
from live.media.edge import EdgeError, EdgePull
from live.media.forward import ForwardTrack, prepare_sender
from live.media.ingest import IngestCheck
from live.media.limits import OfferLimits
from live.media.rtpout import RtpOutput
from live.media.sdp import check_offer
from live.media.stream import KeyframeRequester, LoopLoad, Stream

log = logging.getLogger("hawker.media")

BROADCAST_RE = ID_RE  # the one id rule
VIDEO_QUEUE_FRAMES = 60  # ~2 s at 30 fps, then drop to the next keyframe
AUDIO_QUEUE_FRAMES = 100  # ~2 s of 20 ms Opus packets
VIEWER_HEADER_EXTENSIONS = ("urn:ietf:params:rtp-hdrext:sdes:mid",)
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


class MediaService:
    """Owns every peer connection of this process. One instance per app (`app["media"]`)."""

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

    # ---- publishing (WHIP) -------------------------------------------------------------------

    async def publish(self, broadcast: str, sdp: str, sub: str) -> Answer:
        """Accept the host's offer. The same host (`sub`) publishing again while a publish is live
        or stalled takes over at once (a studio reload, a new device): the old session is closed
        and its viewers continue on the new one. Another host gets `409 PUBLISH_CONFLICT`."""
        check_broadcast(broadcast)
        check_offer(sdp, publishing=True)
        if self.closing:
            raise DomainError(Code.SHUTTING_DOWN, "this node is shutting down")
        current = self.publishers.get(broadcast)
        if (current is not None and current.sub != sub) or broadcast in self._pending_publish:
            raise DomainError(Code.PUBLISH_CONFLICT, "this broadcast is being published by another host or device")
        self._pending_publish.add(broadcast)
        session_id = secrets.token_urlsafe(16)
        try:
            elsewhere = await self.claims.holder(broadcast)
            if elsewhere is not None and elsewhere.get("sub") != sub:  # cheap early answer; claim() decides
                raise DomainError(Code.PUBLISH_CONFLICT, "this broadcast is live from another host")
            session = await self._negotiate(broadcast, sdp, sub, session_id)
            if self.closing:
                await session.pc.close()
                raise DomainError(Code.SHUTTING_DOWN, "this node is shutting down")
            if not await self.claims.claim(broadcast, session_id, sub):
                await session.pc.close()
                raise DomainError(Code.PUBLISH_CONFLICT, "this broadcast is live from another host")
            await self._start(session)
            return Answer(session_id, session.pc.localDescription.sdp)
        finally:
            self._pending_publish.discard(broadcast)

    async def _negotiate(self, broadcast: str, sdp: str, sub: str, session_id: str) -> PublishSession:
        """The host's peer connection with its answer ready; nothing is published yet."""
        pc = self._pc()
        session: PublishSession | None = None
        requester = KeyframeRequester(lambda: self._send_pli(session))
        stream = Stream(broadcast=broadcast, session_id=session_id, keyframes=requester, load=self.load)
        session = PublishSession(id=session_id, broadcast=broadcast, sub=sub, pc=pc, stream=stream,
                                 ingest=IngestCheck(self.keyframe_warn_s, self.bitrate_warn_kbps))

        @pc.on("track")
        def _on_track(track: Any) -> None:
            receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
            session.receivers[track.kind] = receiver
            session.taps[track.kind] = tap.install(
                receiver, track.kind, lambda f: self._on_publisher_frame(session, f),
                lambda kind: self._on_tap_end(session, kind),
            )

        @pc.on("connectionstatechange")
        async def _on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self._lost(session, f"connection {pc.connectionState}")

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            self._pick_publisher_codecs(pc, stream)
            if stream.info.video_codec is None and stream.info.audio_codec is None:
                raise DomainError(Code.UNSUPPORTED_CODEC, "send VP8 or H264 video and/or Opus audio")
            await pc.setLocalDescription(await pc.createAnswer())
            _grow_receive_buffers(pc)
        except DomainError:
            await pc.close()
            raise
        except (OperationError, InternalError, InvalidStateError, ValueError) as exc:
            await pc.close()
            raise DomainError(Code.UNSUPPORTED_CODEC, f"cannot answer this offer: {exc}") from None
        return session

    async def _start(self, session: PublishSession) -> None:
        """Make `session` the broadcast's publish, taking over from the host's previous one."""
        broadcast, stream = session.broadcast, session.stream
        previous = self.publishers.get(broadcast)
        self.publishers[broadcast] = session
        self.publish_sessions[session.id] = session
        metrics.PUBLISHERS.inc()
        self._spawn(self._connect_watchdog(
            session.pc, lambda: self.end_publish(broadcast, session.id, reason="never connected")))
        self._spawn(self._watch_stall(session))
        if self.hls is not None:
            self.hls.attach(stream)
        if previous is not None and not previous.closed:
            await self._hand_over(previous, session)
        pull = self.pulls.get(broadcast)
        if pull is not None:  # the host moved here while this process was an edge: its viewers follow
            self._move_viewers(pull.stream, stream)
            self.pulls.pop(broadcast, None)
            self._spawn(edge.release(pull, self._http, self.secret, self.claims.node_id))
        log.info("publish %s started (session %s, video %s%s)", broadcast, session.id,
                 getattr(stream.info.video_codec, "name", None), ", took over" if previous else "")

    async def _hand_over(self, old: PublishSession, new: PublishSession) -> None:
        """The same host published again: the old session ends and, when the codecs match, its
        viewers move to the new stream (they resume at its first keyframe); else they are ended
        and reconnect."""
        old.closed = True
        metrics.PUBLISHERS.dec()
        metrics.TAKEOVERS.inc()
        self.publish_sessions.pop(old.id, None)
        viewers = [v for v in self.viewers.values() if v.stream is old.stream]
        if _same_codecs(old.stream, new.stream):
            new.stream.adopt(old.stream)
            for viewer in viewers:
                viewer.stream = new.stream
        else:
            for viewer in viewers:
                self._detach_viewer(viewer)
                self._spawn(viewer.pc.close())
        old.stream.end()
        if self.hls is not None:
            self.hls.detach(old.stream)
            self._spawn(self.hls.wait_finished(old.stream))
        self._spawn(old.pc.close())
        log.info("publish %s: session %s replaced by %s of the same host (%d viewers kept)", old.broadcast,
                 old.id, new.id, len([v for v in viewers if v.stream is new.stream]))
        self._emit(new.broadcast)

    def _claim_lost(self, broadcast: str, session_id: str) -> None:
        """The same host published on another process, which took the shared claim: end ours."""
        self._spawn(self.end_publish(broadcast, session_id, reason="taken over on another process"))

    # ---- stalls: no RTP from the host -----------------------------------------------------------

    async def _lost(self, session: PublishSession, why: str) -> None:
        """The host's connection died without a DELETE (tab closed or crashed, network gone): a
        publish that was live is held as stalled for the grace period, for the host to come back."""
        if session.closed:
            return
        if not session.went_live or self.stall_grace_s <= 0:
            await self.end_publish(session.broadcast, session.id, reason=why)
            return
        if not session.lost:
            session.lost = True
            log.warning("publish %s lost (%s): held %.0fs for the host to come back", session.broadcast, why,
                        self.stall_grace_s)
        self._stall(session)

    def _stall(self, session: PublishSession) -> None:
        if session.stalled_at is None and not session.closed:
            session.stalled_at = time.monotonic()
            metrics.STALLS.inc()
            self._emit(session.broadcast)

    async def _watch_stall(self, session: PublishSession) -> None:
        """`stall_s` without a frame from a live publish -> `stalled`; `stall_grace_s` stalled -> ended."""
        while not session.closed:
            await asyncio.sleep(min(1.0, max(0.05, self.stall_s / 4)))
            now = time.monotonic()
            if session.closed:
                return
            if session.stalled_at is None:
                if session.went_live and now - session.last_frame >= self.stall_s:
                    log.warning("publish %s stalled: no media for %.1fs", session.broadcast, now - session.last_frame)
                    self._stall(session)
            elif now - session.stalled_at >= self.stall_grace_s:
                await self.end_publish(session.broadcast, session.id, reason="stalled")
                return

    def _pick_publisher_codecs(self, pc: RTCPeerConnection, stream: Stream) -> None:
        """Keep the publisher's first supported codec (plus its RTX) and drop goog-remb: the
        answer then names exactly the codec every viewer must accept, and the host never waits
        for REMB feedback we do not send."""
        for t in pc.getTransceivers():
            codecs: list[RTCRtpCodecParameters] = list(getattr(t, "_codecs", []))
            main = next((c for c in codecs if c.name.lower() != "rtx" and _supported(c)), None)
            if main is None:
                t._codecs = []
                t.direction = "inactive"
                continue
            rtx = [c for c in codecs if c.name.lower() == "rtx" and c.parameters.get("apt") == main.payloadType]
            main.rtcpFeedback = [fb for fb in main.rtcpFeedback if fb.type != "goog-remb"]
            t._codecs = [main, *rtx]
            if t.kind == "video":
                stream.info.video_codec = main
            elif t.kind == "audio":
                stream.info.audio_codec = main

    def _on_publisher_frame(self, session: PublishSession, frame: Any) -> None:
        metrics.FRAMES_IN.labels(frame.kind).inc()
        session.last_frame = time.monotonic()
        if session.stalled_at is not None and not session.lost and not session.closed:
            session.stalled_at = None  # the host's media is back
            log.info("publish %s recovered from a stall", session.broadcast)
            self._emit(session.broadcast)
        if frame.keyframe and frame.kind == "video" or session.stream.frames_in % 100 == 0:
            self._check_cap_flip()  # the load guard can flip the mode without anyone joining
        if not session.went_live:
            session.went_live = True
            self._emit(session.broadcast)
        if session.ingest.feed(frame) and not session.closed:  # tell the host at once (media.state)
            log.warning("publish %s: ingest warnings %s", session.broadcast, session.ingest.warnings)
            self._emit(session.broadcast)
        session.stream.on_frame(frame)

    def _on_tap_end(self, session: PublishSession, kind: str) -> None:
        # The host's receiver stopped (RTCP BYE, DTLS close, pc closed): the publish is over.
        if not session.closed and (kind == "video" or session.stream.info.video_codec is None):
            self._spawn(self._lost(session, f"{kind} ended"))

    def _send_pli(self, session: PublishSession | None) -> None:
        if session is None or session.closed:
            return
        receiver = session.receivers.get("video")
        if receiver is None:
            return
        ssrc = tap.media_ssrc(receiver)
        if ssrc is not None:
            metrics.KEYFRAME_REQUESTS.inc()
            self._spawn(receiver._send_rtcp_pli(ssrc))

    async def end_publish(self, broadcast: str, session_id: str, reason: str = "deleted") -> bool:
        """End a publish: viewers are closed, the HLS run is finalized as the replay."""
        session = self.publish_sessions.get(session_id)
        if session is None or session.broadcast != broadcast or session.closed:
            return False
        session.closed = True
        metrics.PUBLISHERS.dec()
        self.publish_sessions.pop(session_id, None)
        if self.publishers.get(broadcast) is session:
            del self.publishers[broadcast]
        viewers = [v for v in self.viewers.values() if v.stream is session.stream]
        session.stream.end()
        await self.claims.release(broadcast, session_id)
        log.log(logging.INFO if reason in ("deleted", "shutdown") else logging.WARNING,
                "publish %s ended (%s) after %.0fs, %d frames in", broadcast, reason,
                time.time() - session.created, session.stream.frames_in)
        if self.hls is not None:
            self.hls.detach(session.stream)
        await asyncio.gather(*(self.end_play(broadcast, v.id) for v in viewers), return_exceptions=True)
        await session.pc.close()
        if self.hls is not None:
            await self.hls.wait_finished(session.stream)
        self._emit(broadcast)
        return True

    async def end_publish_anywhere(self, broadcast: str, session_id: str) -> bool:
        """`end_publish`, also when the session is held by another process: with workers sharing
        the port, OBS's DELETE lands on any of them; the one it reached forwards it to the origin
        (internal listener, internal token). False if no process holds that session."""
        if await self.end_publish(broadcast, session_id):
            return True
        holder = await self.claims.holder(broadcast)
        if holder is None or holder.get("session") != session_id or not holder.get("url") or not self.secret:
            return False
        import aiohttp

        from live.media.internal import PUBLISH_PATH, mint_edge_token

        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        url = str(holder["url"]).rstrip("/") + PUBLISH_PATH.format(broadcast=broadcast, session=session_id)
        token = mint_edge_token(self.secret, self.claims.node_id, broadcast)
        try:
            async with self._http.delete(url, headers={"Authorization": f"Bearer {token}"},
                                         timeout=aiohttp.ClientTimeout(total=10)) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            log.warning("forwarding the end of publish %s to %s failed", broadcast, holder.get("node"))
            raise DomainError(Code.UNAVAILABLE, "the process holding this publish cannot be reached; retry",
                              retry_after=1000) from None

    # ---- cascade: this process as an edge of the origin that holds the publish ------------------

    async def _edge_stream(self, broadcast: str, holder: dict[str, Any]) -> Stream:
        """The local stream of `broadcast` pulled from its origin: the open pull, or a new one
        (concurrent first viewers share one). `503 USE_HLS` (reason `origin_unreachable`) if it fails."""
        pull = self.pulls.get(broadcast)
        if pull is not None and not pull.closed:
            if pull.linger is not None:
                pull.linger.cancel()
                pull.linger = None
            return pull.stream
        future = self._pulling.get(broadcast)
        if future is None:
            future = asyncio.ensure_future(self._open_pull(broadcast, holder))
            self._pulling[broadcast] = future
            future.add_done_callback(lambda _f: self._pulling.pop(broadcast, None))
        try:
            pull = await asyncio.shield(future)
        except EdgeError as exc:
            log.warning("edge pull of %s from %s failed: %s", broadcast, holder.get("node"), exc)
            raise DomainError(Code.USE_HLS, "the broadcast's origin cannot be reached; play the HLS stream",
                              hls_url=self.hls_url(broadcast), reason="origin_unreachable") from None
        return pull.stream

    async def _open_pull(self, broadcast: str, holder: dict[str, Any]) -> EdgePull:
        import aiohttp

        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        pull: EdgePull | None = None

        def send_pli() -> None:
            coro = pull.send_pli() if pull is not None else None
            if coro is not None:
                metrics.KEYFRAME_REQUESTS.inc()
                self._spawn(coro)

        stream = Stream(broadcast=broadcast, session_id=f"edge:{holder.get('session')}",
                        keyframes=KeyframeRequester(send_pli), load=self.load)
        pull = EdgePull(broadcast=broadcast, origin=holder, pc=self._pc(), stream=stream)

        def on_frame(frame: Any) -> None:
            pull.frames += 1
            pull.stream.on_frame(frame)

        def on_end(kind: str) -> None:
            if kind == "video" or pull.stream.info.video_codec is None:
                self._spawn(self._end_pull(pull, f"origin {kind} ended"))

        @pull.pc.on("connectionstatechange")
        async def _on_state() -> None:
            if pull.pc.connectionState in ("failed", "closed") and not pull.closed:
                await self._end_pull(pull, f"connection {pull.pc.connectionState}")

        try:
            await edge.negotiate(pull, self._http, self.secret, self.claims.node_id, on_frame, on_end)
        except BaseException:
            pull.closed = True
            stream.end()
            await pull.pc.close()
            raise
        if self.closing or self.publishers.get(broadcast) is not None:
            await edge.release(pull, self._http, self.secret, self.claims.node_id)
            raise EdgeError("the publish moved here or this process is shutting down")
        self.pulls[broadcast] = pull
        metrics.EDGE_PULLS.inc()
        self._spawn(self._watch_origin(pull))
        log.info("edge: pulling %s from %s (%s)", broadcast, holder.get("node"), holder.get("url"))
        return pull

    async def _watch_origin(self, pull: EdgePull) -> None:
        """The origin dies without a goodbye: its Redis claim expires (or names another process
        after a takeover there). Either way this pull is over; `_end_pull` decides what follows."""
        while not pull.closed:
            await asyncio.sleep(EDGE_WATCH_S)
            if pull.closed:
                return
            holder = await self.claims.holder(pull.broadcast)
            if holder is None or holder.get("node") != pull.node:
                if holder is None and self.publishers.get(pull.broadcast) is not None:
                    return  # the publish is ours now (_start moved the viewers)
                await self._end_pull(pull, "the origin gave up the publish")
                return

    async def _end_pull(self, pull: EdgePull, why: str, follow: bool = True) -> None:
        """The pull ended. If another process holds the publish now (a takeover there) the local
        viewers follow it on a new pull; else they are ended cleanly, like the origin's own."""
        if pull.closed:
            return
        pull.closed = True
        if self.pulls.get(pull.broadcast) is pull:
            del self.pulls[pull.broadcast]
        metrics.EDGE_PULLS.dec()
        viewers = [v for v in self.viewers.values() if v.stream is pull.stream]
        moved = False
        if follow and viewers and not self.closing:
            holder = await self.claims.holder(pull.broadcast)
            if holder is not None and holder.get("session") != pull.origin.get("session"):
                try:
                    new = await self._edge_stream(pull.broadcast, holder)
                    moved = self._move_viewers(pull.stream, new) > 0 or not viewers
                except DomainError:
                    moved = False
        log.info("edge: pull of %s from %s ended (%s); %d viewers %s", pull.broadcast, pull.node, why,
                 len(viewers), "follow the new origin" if moved else "ended")
        if not moved:
            await asyncio.gather(*(self.end_play(pull.broadcast, v.id) for v in viewers), return_exceptions=True)
        await edge.release(pull, self._http, self.secret, self.claims.node_id)

    def _move_viewers(self, old: Stream, new: Stream) -> int:
        """Re-point the viewers of `old` to `new` (same codecs: they resume at its next keyframe);
        with other codecs they are ended and negotiate again. Returns how many moved."""
        viewers = [v for v in self.viewers.values() if v.stream is old]
        if not viewers:
            return 0
        if not _same_codecs(old, new):
            for viewer in viewers:
                self._detach_viewer(viewer)
                self._spawn(viewer.pc.close())
            return 0
        new.adopt(old)
        for viewer in viewers:
            viewer.stream = new
        return len(viewers)

    def _linger_if_unwatched(self, broadcast: str) -> None:
        """The last local viewer of a pulled broadcast left: drop the pull after the linger."""
        pull = self.pulls.get(broadcast)
        if pull is None or pull.closed or pull.linger is not None:
            return
        if any(v.stream is pull.stream for v in self.viewers.values()):
            return

        def drop() -> None:
            pull.linger = None
            if pull.closed or any(v.stream is pull.stream for v in self.viewers.values()):
                return
            self._spawn(self._end_pull(pull, "no viewers left", follow=False))

        pull.linger = asyncio.get_running_loop().call_later(self.edge_linger_s, drop)

    # ---- playback (WHEP and hub) -------------------------------------------------------------

    async def play(self, broadcast: str, sdp: str, sub: str, via: str = "whep", address: str | None = None) -> Answer:
        """Answer a viewer's offer with a sendonly connection forwarding the host's frames.

        Every offer first passes the per-user and per-address rate limits (`429 RATE_LIMITED`);
        a user holds at most `sessions_per_user` sessions per broadcast: a new one replaces the
        user's oldest, so one viewer can never take every WebRTC slot."""
        check_broadcast(broadcast)
        is_edge = via == "edge"  # another Hawker process pulling (internal listener, internal token)
        if not is_edge:
            self.offer_limits.check(sub, address)
        check_offer(sdp, publishing=False)
        pub = self.publishers.get(broadcast)
        holder: dict[str, Any] | None = None
        if pub is None or pub.closed:
            holder = None if is_edge else await self.claims.holder(broadcast)
            if holder is None:
                raise DomainError(Code.NOT_LIVE, "this broadcast has no live publisher",
                                  hls_url=self._replay_url(broadcast))
            if not (self.edge_url and holder.get("url")):
                raise DomainError(Code.USE_HLS, "the broadcast is live on another Hawker process; play the HLS stream",
                                  hls_url=self.hls_url(broadcast), reason="other_process")
        if is_edge:
            if self.edge_count(broadcast) >= MAX_EDGES:
                raise DomainError(Code.EDGE_LIMIT, "this origin serves no more edges for this broadcast")
        else:
            own = [v for v in self.viewers.values() if v.broadcast == broadcast and v.sub == sub]
            for old in sorted(own, key=lambda v: v.created)[:max(0, len(own) - self.sessions_per_user + 1)]:
                self._detach_viewer(old)  # synchronous: the slot is free before the cap check below
                self._spawn(old.pc.close())
            if self.viewer_count() >= self.viewer_cap:
                raise DomainError(Code.USE_HLS, "WebRTC viewer capacity reached; play the HLS stream",
                                  hls_url=self.hls_url(broadcast), reason="cap")
            if self.load.fraction() > self.max_fanout_busy:
                raise DomainError(Code.USE_HLS, "this media process is busy; play the HLS stream",
                                  hls_url=self.hls_url(broadcast), reason="load")
        if holder is not None:
            stream = await self._edge_stream(broadcast, holder)  # one pull per broadcast, shared
        else:
            assert pub is not None
            stream = pub.stream
        pc = self._pc()
        session_id = secrets.token_urlsafe(16)
        video = audio = None
        box: list[ViewerSession] = []  # the session, once made (the keyframe callback needs it)

        def want_keyframe() -> None:  # to whichever publish the viewer forwards now (takeovers move it)
            if box and box[0].stream is not None:
                box[0].stream.keyframes.request()

        if stream.info.video_codec is not None:
            video = ForwardTrack("video", VIDEO_QUEUE_FRAMES, want_keyframe)
            tr = pc.addTransceiver(video, direction="sendonly")
            tr.setCodecPreferences(_capabilities_for(stream.info.video_codec, "video"))
            prepare_sender(tr.sender, want_keyframe)
        if stream.info.audio_codec is not None:
            audio = ForwardTrack("audio", AUDIO_QUEUE_FRAMES, lambda: None)
            tr = pc.addTransceiver(audio, direction="sendonly")
            tr.setCodecPreferences(_capabilities_for(stream.info.audio_codec, "audio"))
            prepare_sender(tr.sender, lambda: None)
        session = ViewerSession(id=session_id, broadcast=broadcast, sub=sub, pc=pc, video=video, audio=audio, via=via,
                                stream=stream)
        box.append(session)
        self.viewers[session_id] = session  # counts against the cap from now on (an edge pull does not)
        if is_edge:
            self._edge_sessions += 1
        else:
            metrics.VIEWERS.inc()

        @pc.on("connectionstatechange")
        async def _on_state() -> None:
            if pc.connectionState == "connected" and not session.attached and not session.closed:
                live = session.stream
                if live is None or self._source(broadcast) is not live:
                    await self.end_play(broadcast, session_id)
                    return
                session.attached = True
                if self.forward != "sender":
                    session.outputs = [
                        RtpOutput(t.sender.track.kind, t, want_keyframe, batch=self.forward == "direct")
                        for t in pc.getTransceivers() if isinstance(t.sender.track, ForwardTrack)
                    ]
                    live.add_outputs(session.outputs)
                else:
                    live.add_tracks(video, audio)
            elif pc.connectionState in ("failed", "closed"):
                await self.end_play(broadcast, session_id)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            _trim_viewer_negotiation(pc)
            await pc.setLocalDescription(await pc.createAnswer())
        except (OperationError, InternalError, InvalidStateError, ValueError) as exc:
            if session.closed:
                raise _replaced() from None
            self._detach_viewer(session)
            await pc.close()
            raise DomainError(Code.UNSUPPORTED_CODEC,
                              f"the viewer must accept {getattr(stream.info.video_codec, 'name', 'Opus')}: {exc}") from None
        if session.closed:  # a newer offer of the same user took this one's place while we negotiated
            raise _replaced()
        if self._source(broadcast) is not session.stream:  # the host left while we negotiated
            await self.end_play(broadcast, session_id)
            raise DomainError(Code.NOT_LIVE, "the broadcast ended", hls_url=self._replay_url(broadcast))
        self._check_cap_flip()
        self._spawn(self._connect_watchdog(pc, lambda: self.end_play(broadcast, session_id),
                                           self.viewer_connect_timeout_s))
        return Answer(session_id, pc.localDescription.sdp)

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

    async def close(self) -> None:
        """Shut down: end every publish (finalizing replays) and every viewer."""
        self.closing = True
        for pub in list(self.publishers.values()):
            await self.end_publish(pub.broadcast, pub.id, reason="shutdown")
        for pull in list(self.pulls.values()):
            await self._end_pull(pull, "shutdown", follow=False)
        await asyncio.gather(*(self.end_play(v.broadcast, v.id) for v in list(self.viewers.values())),
                             return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        await self.claims.close()
        for task in list(self._tasks):
            task.cancel()


INGEST_RCVBUF = 4 * 1024 * 1024


def _grow_receive_buffers(pc: RTCPeerConnection) -> None:
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


def _replaced() -> DomainError:
    return DomainError(Code.SESSION_REPLACED, "a newer offer from the same user replaced this one")


def _same_codecs(old: Stream, new: Stream) -> bool:
    """Viewers negotiated the old publish's codecs; they can follow the new one only if it is the same."""
    def names(stream: Stream) -> tuple[str | None, str | None]:
        video, audio = stream.info.video_codec, stream.info.audio_codec
        return (video.name.lower() if video is not None else None, audio.name.lower() if audio is not None else None)
    return names(old) == names(new)


def _supported(codec: RTCRtpCodecParameters) -> bool:
    name = codec.name.lower()
    if name == "h264":
        return str(codec.parameters.get("packetization-mode", "0")) == "1"
    return name in ("vp8", "opus")


def _capabilities_for(codec: Any, kind: str) -> list[RTCRtpCodecCapability]:
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


def _trim_viewer_negotiation(pc: RTCPeerConnection) -> None:
    """Viewers get no REMB and no abs-send-time: we never adapt a forwarded stream's bitrate,
    so that feedback would only cost RTCP parsing and header bytes per packet."""
    for t in pc.getTransceivers():
        for codec in getattr(t, "_codecs", []):
            codec.rtcpFeedback = [fb for fb in codec.rtcpFeedback if fb.type != "goog-remb"]
        exts = getattr(t, "_headerExtensions", None)
        if exts is not None:
            t._headerExtensions = [e for e in exts if e.uri in VIEWER_HEADER_EXTENSIONS]
