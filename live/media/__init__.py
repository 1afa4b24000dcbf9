"""Video: WHIP ingest, WebRTC forwarding of the host's encoded frames, HLS for the mass audience.

`build(config, redis)` makes the node's `MediaService` (`Node.media`); its HTTP doors are
live/rest/media.py and its socket signalling live/sockets/media.py."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import redis.asyncio as aioredis

from live.config import Config
from live.media import ice
from live.media.claims import PublishClaims
from live.media.hls import HlsService
from live.media.internal import InternalListener
from live.media.limits import OfferLimits
from live.media.service import MediaService

__all__ = ["InternalListener", "MediaService", "build", "media_root"]


def media_root(config: Config) -> Path:
    return Path(config.media_dir) if config.media_dir else Path(config.data_dir) / "media"


def build(config: Config, redis: aioredis.Redis) -> tuple[MediaService, InternalListener | None]:
    """The node's MediaService and, with HAWKER_MEDIA_EDGE_LISTEN, its cascade listener (started
    and stopped with the node, live/node.py)."""
    hls = HlsService(media_root(config) / "hls")
    # HAWKER_MEDIA_FORWARD=sender switches to aiortc's per-viewer RTCRtpSender loop (for comparison)
    forward = os.environ.get("HAWKER_MEDIA_FORWARD", "direct")
    claims = PublishClaims(redis, node_id=secrets.token_hex(6))
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
    listener = InternalListener(media, config.secret, config.media_edge_listen, config.media_edge_advertise) \
        if config.media_edge_listen else None
    return media, listener
