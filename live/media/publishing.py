"""Publishing (WHIP): a host's offer answered, the publish claimed across processes, a takeover
by the same host, stalls and the grace period, the host's frames into the stream, ending it."""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InternalError, InvalidStateError, OperationError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from domain import Code, DomainError
from live.media import edge, metrics, tap
from live.media.core import MediaCore, log
from live.media.ingest import IngestCheck
from live.media.negotiation import grow_receive_buffers, same_codecs, supported
from live.media.sdp import check_offer
from live.media.sessions import Answer, PublishSession, check_broadcast
from live.media.stream import KeyframeRequester, Stream


class Publishing(MediaCore):
    """The host's side of a node's media."""

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
            grow_receive_buffers(pc)
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
        if same_codecs(old.stream, new.stream):
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
            main = next((c for c in codecs if c.name.lower() != "rtx" and supported(c)), None)
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
