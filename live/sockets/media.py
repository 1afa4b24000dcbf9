"""Video signalling over the hub (docs/media.md; docs/protocol.md lists the events).

- `webrtc.offer {sdp}` -> ack `{ok, sdp, session_id}`: the same `MediaService.play()` as
  `POST /whep/<broadcast>`, so the cap, codes (`USE_HLS` + `hls_url`, `NOT_LIVE`, `INVALID_SDP`,
  `UNSUPPORTED_CODEC`, `RATE_LIMITED` + `retry_after` ms) and behaviour are identical: one rate
  bucket per user and per client address for both doors, at most `webrtc_sessions_per_user`
  sessions per user (a new one replaces the oldest). One WebRTC session per socket: a new offer
  replaces the previous one; leaving the hub (disconnect) ends it.
- `webrtc.close {}` -> ack `{ok, closed}`: stop watching over WebRTC (e.g. switching to HLS).
- `webrtc.ice {}` -> ack `{ok, ice_servers}`: the STUN/TURN list, as `GET /api/ice` gives it.
- urgent `media.state` to the broadcast whenever the host's stream goes up or down, and when the
  node's WebRTC capacity flips the playback mode (webrtc <-> hls). Same shape as
  `GET /api/media/<broadcast>` and the join snapshot's `media` part.

`register(node)` plugs this into the hub's command registry."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from domain import Code, DomainError
from live.hub.hub import Hub
from live.hub.registry import EVERYONE, Caller
from live.media import metrics
from live.media.ice import browser_config

if TYPE_CHECKING:
    from live.node import Node

OFFER_MAX_BYTES = 64 * 1024


def register(node: Node) -> None:
    """Register media commands, the snapshot part and the state -> urgent event bridge on the hub."""
    hub, media = node.hub, node.media
    sessions: dict[str, str] = {}  # socket sid -> its viewer session id

    @hub.command("webrtc.offer", roles=EVERYONE, max_bytes=OFFER_MAX_BYTES, cost=5.0, timeout_s=20.0)
    async def webrtc_offer(caller: Caller, payload: dict) -> dict:
        sdp = payload.get("sdp")
        if not isinstance(sdp, str) or not sdp:
            raise DomainError(Code.VALIDATION, "sdp (the offer, a string) is required", field="sdp")
        previous = sessions.pop(caller.sid, None)
        if previous is not None:
            await media.end_play(caller.broadcast, previous)
        try:
            answer = await media.play(caller.broadcast, sdp, caller.user, via="hub", address=_address(hub, caller.sid))
        except DomainError as exc:
            metrics.REFUSED.labels(exc.code).inc()
            raise
        if hub.caller(caller.sid) is None:  # the socket left while we negotiated
            await media.end_play(caller.broadcast, answer.session_id)
            raise DomainError(Code.NOT_JOINED, "the socket disconnected")
        sessions[caller.sid] = answer.session_id
        return {"sdp": answer.sdp, "session_id": answer.session_id}

    @hub.command("webrtc.ice", roles=EVERYONE)
    async def webrtc_ice(caller: Caller, payload: dict) -> dict:
        """STUN/TURN servers for `new RTCPeerConnection({iceServers})`, so a page needs only its socket."""
        return {"ice_servers": browser_config(media.ice_servers)}

    @hub.command("webrtc.close", roles=EVERYONE)
    async def webrtc_close(caller: Caller, payload: dict) -> dict:
        session_id = sessions.pop(caller.sid, None)
        closed = await media.end_play(caller.broadcast, session_id) if session_id else False
        return {"closed": closed}

    @hub.on_leave
    async def _left(caller: Caller) -> None:
        session_id = sessions.pop(caller.sid, None)
        if session_id is not None:
            await media.end_play(caller.broadcast, session_id)

    @hub.snapshot_part("media", shared=True)
    async def _snapshot(caller: Caller) -> dict:
        return await media.current_state(caller.broadcast)

    async def _on_state(broadcast: str, state: dict[str, Any]) -> None:
        node.fanout.urgent(broadcast, "media.state", state)

    media.on_state(_on_state)


def _address(hub: Hub, sid: str) -> str | None:
    """The socket's client address (the per-address offer limit), as aiohttp saw it."""
    try:
        environ = hub.sio.get_environ(sid) or {}
    except Exception:  # noqa: BLE001 - no environ: the per-user limit still applies
        return None
    request = environ.get("aiohttp.request")
    return getattr(request, "remote", None)
