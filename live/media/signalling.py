"""Video signalling over the hub (DESIGN.md "Video signalling rides the hub too").

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

`register(hub, services)` plugs this into the hub's command registry; `setup()` (called by
`live.media.setup`) registers at app start-up if a hub is present, so the media package works
with or without the hub."""
from __future__ import annotations

import inspect
import logging
from typing import Any

from aiohttp import web

from live.errors import ApiError
from live.media import metrics
from live.media.ice import browser_config
from live.media.service import MediaService

log = logging.getLogger("hawker.media.signalling")

OFFER_MAX_BYTES = 64 * 1024


def register(hub: Any, services: Any, media: MediaService | None = None) -> None:
    """Register media commands, the snapshot part and the state -> urgent event bridge on `hub`."""
    from live.hub import EVERYONE, Caller, HubError

    media = media or services.parts["media"]
    if getattr(hub, "_media_registered", False):
        return
    hub._media_registered = True
    sessions: dict[str, str] = {}  # socket sid -> its viewer session id

    @hub.command("webrtc.offer", roles=EVERYONE, max_bytes=OFFER_MAX_BYTES, cost=5.0, timeout_s=20.0)
    async def webrtc_offer(caller: Caller, payload: dict) -> dict:
        sdp = payload.get("sdp")
        if not isinstance(sdp, str) or not sdp:
            raise HubError("VALIDATION", "sdp (the offer, a string) is required", field="sdp")
        previous = sessions.pop(caller.sid, None)
        if previous is not None:
            await media.end_play(caller.broadcast, previous)
        try:
            answer = await media.play(caller.broadcast, sdp, caller.user, via="hub", address=_address(hub, caller.sid))
        except ApiError as exc:
            metrics.REFUSED.labels(exc.code).inc()
            raise HubError(exc.code, exc.message, **exc.details) from None
        if hub.caller(caller.sid) is None:  # the socket left while we negotiated
            await media.end_play(caller.broadcast, answer.session_id)
            raise HubError("NOT_JOINED", "the socket disconnected")
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
        fanout = getattr(hub, "fanout", None)
        urgent = getattr(fanout, "urgent", None)
        if urgent is None:
            log.debug("no fanout.urgent: media.state for %s not sent", broadcast)
            return
        result = urgent(broadcast, "media.state", state)
        if inspect.isawaitable(result):
            await result

    media.on_state(_on_state)


def _address(hub: Any, sid: str) -> str | None:
    """The socket's client address (the per-address offer limit), as aiohttp saw it."""
    try:
        environ = hub.sio.get_environ(sid) or {}
    except Exception:  # noqa: BLE001 - no environ: the per-user limit still applies
        return None
    request = environ.get("aiohttp.request")
    return getattr(request, "remote", None)


def setup(app: web.Application, services: Any, media: MediaService) -> None:
    """Register with the hub now if create_app built it already, else when the app starts."""
    hub = services.parts.get("hub") or app.get("hub")
    if hub is not None:
        register(hub, services, media)
        return

    async def _register(_app: web.Application) -> None:
        hub = services.parts.get("hub") or _app.get("hub")
        if hub is None:
            log.info("no hub in this app: media signalling over Socket.IO is off (WHIP/WHEP still work)")
            return
        register(hub, services, media)

    app.on_startup.insert(0, _register)
