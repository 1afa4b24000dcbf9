"""The media part of a node: publish sessions (WHIP), viewer sessions (WHEP / hub), state events.

HTTP routes and hub events are thin doors onto `MediaService.publish()` / `play()`, so both doors
share one code path, one viewer cap and one set of errors. The parts: core.py (shared state, the
cap, ending a viewer), publishing.py (the host), cascade.py (edge pulls), negotiation.py (codecs),
sessions.py (what is kept per connection); playback is here."""
from __future__ import annotations

import asyncio
import secrets
from typing import Any

from aiortc import RTCSessionDescription
from aiortc.exceptions import InternalError, InvalidStateError, OperationError

from domain import Code, DomainError
from live.media import metrics
from live.media.cascade import Cascade
from live.media.core import AUDIO_QUEUE_FRAMES, MAX_EDGES, VIDEO_QUEUE_FRAMES, StateListener
from live.media.forward import ForwardTrack, prepare_sender
from live.media.negotiation import capabilities_for, replaced, trim_viewer_negotiation
from live.media.publishing import Publishing
from live.media.rtpout import RtpOutput
from live.media.sdp import check_offer
from live.media.sessions import Answer, PublishSession, ViewerSession, check_broadcast

__all__ = ["Answer", "MediaService", "PublishSession", "StateListener", "ViewerSession", "check_broadcast"]


class MediaService(Publishing, Cascade):
    """Owns every peer connection of this process. One instance per app (`app["node"].media`)."""

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
            tr.setCodecPreferences(capabilities_for(stream.info.video_codec, "video"))
            prepare_sender(tr.sender, want_keyframe)
        if stream.info.audio_codec is not None:
            audio = ForwardTrack("audio", AUDIO_QUEUE_FRAMES, lambda: None)
            tr = pc.addTransceiver(audio, direction="sendonly")
            tr.setCodecPreferences(capabilities_for(stream.info.audio_codec, "audio"))
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
            trim_viewer_negotiation(pc)
            await pc.setLocalDescription(await pc.createAnswer())
        except (OperationError, InternalError, InvalidStateError, ValueError) as exc:
            if session.closed:
                raise replaced() from None
            self._detach_viewer(session)
            await pc.close()
            raise DomainError(Code.UNSUPPORTED_CODEC,
                              f"the viewer must accept {getattr(stream.info.video_codec, 'name', 'Opus')}: {exc}") from None
        if session.closed:  # a newer offer of the same user took this one's place while we negotiated
            raise replaced()
        if self._source(broadcast) is not session.stream:  # the host left while we negotiated
            await self.end_play(broadcast, session_id)
            raise DomainError(Code.NOT_LIVE, "the broadcast ended", hls_url=self._replay_url(broadcast))
        self._check_cap_flip()
        self._spawn(self._connect_watchdog(pc, lambda: self.end_play(broadcast, session_id),
                                           self.viewer_connect_timeout_s))
        return Answer(session_id, pc.localDescription.sdp)

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
