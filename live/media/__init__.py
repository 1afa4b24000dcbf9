"""Video: WHIP ingest, WebRTC forwarding of the host's encoded frames, HLS for the mass audience.

`setup(app, services)` wires it into the app: routes, a `MediaService` at `app["media"]`
(also `services.parts["media"]`), hub signalling when the hub is present, and shutdown."""
from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from live.media import ice
from live.media.claims import PublishClaims
from live.media.hls import HlsService
from live.media.internal import InternalListener
from live.media.limits import OfferLimits
from live.media.service import MediaService
from live.rest.media import add_routes

log = logging.getLogger("hawker.media")

__all__ = ["MediaService", "setup", "media_root"]


def media_root(config: Any) -> Path:
    return Path(config.media_dir) if config.media_dir else Path(config.data_dir) / "media"


def setup(app: web.Application, services: Any) -> MediaService:
    config = services.config
    hls = HlsService(media_root(config) / "hls")
    # HAWKER_MEDIA_FORWARD=sender switches to aiortc's per-viewer RTCRtpSender loop (for comparison)
    forward = os.environ.get("HAWKER_MEDIA_FORWARD", "direct")
    claims = PublishClaims(services.redis, node_id=secrets.token_hex(6))
    limits = OfferLimits.of(config.webrtc_offer_rate, config.webrtc_offer_burst,
                            config.webrtc_offer_ip_rate, config.webrtc_offer_ip_burst)
    media = MediaService(ice_servers=ice.parse(config.ice_servers), viewer_cap=config.webrtc_viewer_cap,
                         hls=hls, forward=forward, claims=claims,
                         sessions_per_user=config.webrtc_sessions_per_user, offer_limits=limits,
                         viewer_connect_timeout_s=config.webrtc_connect_timeout_s,
                         stall_s=config.media_stall_s, stall_grace_s=config.media_stall_grace_s,
                         secret=config.secret, edge_linger_s=config.media_edge_linger_s,
                         keyframe_warn_s=config.media_keyframe_warn_s,
                         bitrate_warn_kbps=config.media_bitrate_warn_kbps)
    app["media"] = media
    services.parts["media"] = media
    add_routes(app)
    from live.sockets import media as signalling

    signalling.setup(app, services, media)

    listener = InternalListener(media, config.secret, config.media_edge_listen, config.media_edge_advertise) \
        if config.media_edge_listen else None

    async def _listen(_app: web.Application) -> None:
        """The internal listener for edge pulls (cascade); its URL goes into the publish claim."""
        if listener is not None:
            url = await listener.start()
            media.edge_url = claims.url = url

    async def _close(_app: web.Application) -> None:
        await media.close()
        if listener is not None:
            await listener.stop()

    app.on_startup.append(_listen)
    app.on_shutdown.append(_close)
    return media
