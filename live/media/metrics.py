"""Media metrics (merged across worker processes like the rest of /metrics). Nothing here is
touched per packet or per viewer-frame: the fan-out loop stays free of metric calls."""
from __future__ import annotations

from prometheus_client import Counter, Gauge

PUBLISHERS = Gauge("hawker_media_publishers", "Live WHIP publishers on this node", multiprocess_mode="livesum")
VIEWERS = Gauge("hawker_media_webrtc_viewers", "WebRTC viewer sessions on this node (WHEP + hub)",
                multiprocess_mode="livesum")
FRAMES_IN = Counter("hawker_media_frames_in_total", "Encoded frames received from hosts", ["kind"])
KEYFRAME_REQUESTS = Counter("hawker_media_keyframe_requests_total", "PLIs sent to hosts (merged, <= 1/s per stream)")
VIEWER_OVERFLOWS = Counter("hawker_media_viewer_overflows_total",
                           "Times a viewer's send backlog overflowed and it skipped to the next keyframe")
REFUSED = Counter("hawker_media_sessions_refused_total", "WHIP/WHEP/hub offers refused, by code", ["code"])
TAKEOVERS = Counter("hawker_media_takeovers_total", "Publishes replaced by a new WHIP session of the same host")
STALLS = Counter("hawker_media_stalls_total", "Times a live publish went stalled (no media, or its connection lost)")
EDGE_PULLS = Gauge("hawker_media_edge_pulls", "Broadcasts this node pulls from their origin process (cascade)",
                   multiprocess_mode="livesum")
