"""Settings: one frozen dataclass, read from HAWKER_* environment variables and mirrored by CLI flags."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

DEFAULT_SECRET = "hawker-demo-secret-not-for-production"  # >= 32 bytes: no PyJWT key warning


def setting(default: Any, help: str) -> Any:
    """A Config field and what it means: the one place a setting's help is written (live/cli.py makes
    the flag's help and the README's settings table from it)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Config:
    """Every setting Hawker reads. `Config.from_env()` fills it from HAWKER_<NAME>."""

    host: str = setting("127.0.0.1", "address to listen on")
    port: int = setting(8080, "port to listen on")
    redis_url: str = setting("redis://127.0.0.1:6379/0", "Redis URL (redis://host:port/db)")
    secret: str = setting(DEFAULT_SECRET, "HS256 secret for tokens (required outside demo mode)")
    public_url: str = setting("", "URL viewers reach this server at (for printed links)")
    workers: int = setting(1, "processes sharing the port (SO_REUSEPORT)")
    demo: bool = setting(False, "demo mode: allows the default secret (`hawker demo` sets it)")
    data_dir: str = setting(".hawker", "folder for the embedded Redis, media and other state")
    tick_ms: int = setting(100, "fan-out tick in milliseconds")
    max_message_bytes: int = setting(64 * 1024, "largest Socket.IO message accepted")
    max_request_bytes: int = setting(1024 * 1024, "largest HTTP request body accepted (else 413)")
    redis_timeout_s: float = setting(5.0, "Redis connect/command timeout in seconds (commands retry 3 times on connection errors)")
    log_level: str = setting("info", "debug, info, warning, error")
    ice_servers: str = setting("", "comma-separated STUN/TURN URLs handed to browsers and aiortc")
    webrtc_viewer_cap: int = setting(250, "WebRTC viewers per process before the player is sent to HLS")
    media_dir: str = setting("", "folder for HLS segments (default: DATA_DIR/media)")
    shutdown_grace_s: float = setting(5.0, "seconds a graceful shutdown waits for each step (hooks, in-flight requests)")
    # chat (chat/policy.py ChatPolicy; README "Chat settings")
    chat_max_len: int = setting(300, "longest chat message in characters")
    chat_rate: float = setting(1.0, "chat messages per second per user (token bucket refill, all nodes)")
    chat_burst: int = setting(5, "chat token bucket size per user")
    chat_dup_window_s: int = setting(30, "seconds in which the same chat text from one user is refused")
    chat_link_mode: str = setting("block", "chat links: block, allow (CHAT_ALLOWED_DOMAINS only) or open")
    chat_allowed_domains: str = setting("", "comma-separated domains chat may link to in allow mode")
    chat_word_lists: str = setting("en,ko", "bundled blocked-word lists to use (comma-separated: en,ko; empty for none)")
    chat_blocked_words: str = setting("", "comma-separated extra blocked chat words")
    chat_history_cap: int = setting(100_000, "chat messages kept per broadcast (replay timeline)")
    chat_join_history: int = setting(50, "chat messages in the join snapshot")
    chat_retention_s: int = setting(7 * 86400, "seconds chat is kept after a broadcast ends")
    chat_overload_rate: float = setting(50.0, "inbound chat messages/s per broadcast above which viewers get a sample")
    chat_overload_k: int = setting(10, "chat messages per tick a viewer gets while sampled")
    webhook_max_attempts: int = setting(8, "merchant webhook deliveries before a dead letter")
    webhook_base_delay_s: float = setting(2.0, "first webhook retry delay in seconds (doubles each attempt)")
    payment_provider: str = setting("",  # no default: `hawker serve` refuses to start until one is chosen
        "payment provider, required by serve: sandbox (offline test cards, orders say livemode=false) or package.module:factory "
        "(see docs/checkout.md); demo uses sandbox")
    # fan-out engine (live/fanout/; README "Fan-out settings")
    fanout_queue_kb: int = setting(512, "data queued per slow socket (KiB) before ticks are dropped; twice that closes it")
    fanout_stall_s: float = setting(10.0, "seconds a socket may stay backed up before it is closed as a slow consumer")
    fanout_close_grace_s: float = setting(5.0, "seconds a slow socket gets to read its close frame before the connection is cut")
    # Redis layer and admission control (redislayer/; docs/protocol.md "BUSY and UNAVAILABLE")
    redis_max_connections: int = setting(64, "Redis connections per process for plain commands (one bounded pool; a burst waits "
                                         "for a free one); each auto-pipeline (inventory, chat, orders, auctions) has 8 of its own")
    redis_wait_ms: int = setting(2000, "ms a Redis call waits for a free pooled connection before the command answers BUSY")
    command_deadline_ms: int = setting(5000, "ms a socket command may take before it is answered BUSY (retry with the same request_id)")
    join_deadline_ms: int = setting(3000, "ms a join snapshot may take (failed parts retried) before it is sent with `partial`")
    # egress, secrets and disclosure (checkout/egress.py, live/accesslog.py, live/headers.py; docs/security.md)
    webhook_allow_private: bool = setting(False,
        "let webhooks reach loopback/private/link-local addresses (local development and tests only)")
    webhook_http_hosts: str = setting("", "comma-separated webhook hosts allowed over plain http (development); all others need https")
    metrics_token: str = setting("", "if set, /metrics requires `Authorization: Bearer <token>` (it shows revenue and broadcast ids)")
    metrics_port: int = setting(0, "if set, /metrics is served only on this separate port (on METRICS_HOST), not the public one")
    metrics_host: str = setting("127.0.0.1", "address the separate metrics port listens on")
    embed_origins: str = setting("", "comma-separated origins allowed to frame the player and hand it a token (demo default: any)")
    # media (live/media/; docs/media.md "Settings")
    webrtc_sessions_per_user: int = setting(2, "WebRTC viewer sessions one user may hold per broadcast; a new one replaces the oldest")
    webrtc_offer_rate: float = setting(0.2, "WebRTC viewer offers per second per user (token bucket refill; 0 = no limit)")
    webrtc_offer_burst: int = setting(5, "WebRTC viewer offer bucket size per user")
    webrtc_offer_ip_rate: float = setting(5.0,
        "WebRTC viewer offers per second per client address (0 = no limit; behind a proxy all share one)")
    webrtc_offer_ip_burst: int = setting(60, "WebRTC viewer offer bucket size per client address")
    webrtc_connect_timeout_s: float = setting(10.0, "seconds a viewer's peer connection may take to connect before its slot is freed")
    media_stall_s: float = setting(5.0, "seconds without RTP from the host before media.state says stalled")
    media_stall_grace_s: float = setting(30.0, "seconds a stalled publish is held for the host to come back before it ends")
    # commerce privacy (checkout/ retention and erasure; docs/security.md "Commerce")
    pii_retention_days: int = setting(90, "days buyers' contact data stays on orders (then removed; totals stay for the audit)")
    dead_letter_retention_days: int = setting(30, "days a dead-letter webhook delivery (with its body) is kept")
    # Redis: retention (live/compactor.py, checkout/ledger.py) and mode (live/store.py); docs/scaling.md
    sale_compact_after_s: int = setting(3600,
        "seconds after a closed sale's last stock change before it is compacted to its "
        "audit summary and SOLD reservations (0: never compact)")
    order_retention_days: int = setting(90,
        "days an order is kept in Redis after it was made (0: for ever); the merchant "
        "keeps them from webhooks and the CSV export")
    redis_mode: str = setting("standalone",
        "standalone; cluster (REDIS_URL names any node of a Redis Cluster); sentinel (REDIS_URL is "
        "redis+sentinel://host:port[,host:port...]/<master name>[/db]: follows the master after a failover) (docs/scaling.md)")
    # merchant analytics and social proof (analytics/, live/analytics_feed.py)
    analytics_flush_ms: int = setting(1000,
        "ms between a node's analytics flushes (one Redis pipeline each; counting adds no round trip per event)")
    analytics_ttl_days: int = setting(90, "days a broadcast's analytics are kept after their last change")
    # live auctions, giveaways, quizzes (auctions/, live/sockets/auctions.py; docs/protocol.md "Auctions")
    auction_bid_rate: float = setting(5.0,
        "auction bids (and max bids) per second per user per auction, on Redis's clock (RATE_LIMITED past it)")
    auction_bid_burst: int = setting(10, "auction bids a user may send at once before the rate applies")
    auction_hold_s: int = setting(600, "seconds an auction winner (or the runner-up of an unpaid win) has to pay the hold")
    # media cascade and ingest checks (live/media/edge.py, live/media/ingest.py; docs/media.md)
    media_edge_listen: str = setting("127.0.0.1:0",
        "HOST:PORT of this process's internal listener for edge pulls (port 0: any free port per process; empty: no cascade)")
    media_edge_advertise: str = setting("", "host other processes/nodes use to reach the internal listener (default: the listen host)")
    media_edge_linger_s: float = setting(5.0, "seconds an edge keeps its pull from the origin after its last WebRTC viewer left")
    media_keyframe_warn_s: float = setting(4.0,
        "keyframes further apart than this (H.264 ingest) -> media.state warning KEYFRAME_INTERVAL_LONG")
    media_bitrate_warn_kbps: int = setting(4000, "host video above this bitrate (5 s average) -> media.state warning BITRATE_HIGH")
    # Redis failover: replica acknowledgement of stock and payment changes (redislayer); docs/scaling.md
    redis_replicas_ack: int = setting(0,
        "replicas that must confirm a stock or payment change before it is acknowledged (WAIT; 0: off); none in time answers "
        "UNAVAILABLE, safe to retry (docs/scaling.md)")
    redis_replicas_ack_timeout_ms: int = setting(100, "how long a change waits for its replica confirmations (WAIT timeout)")
    # join path under load (live/hub/registry.py shared snapshot parts; docs/loadtesting.md)
    snapshot_cache_ms: int = setting(200,
        "ms a join-snapshot value that is the same for the whole broadcast (broadcast, media, sale records, chat state) "
        "is reused; concurrent joins always share one fetch (0: no reuse after it)")
    join_max_inflight: int = setting(256,
        "joins a process has admitted and not yet sent their snapshot, at most; a connect past it waits up to 5 s for a "
        "slot, then is refused BUSY with retry_after (0: no bound)")
    fanout_max_writes_per_s: int = setting(50_000,
        "tick frames a process hands to its sockets per second at most: past it the tick period stretches beyond "
        "tick_ms (10,000 sockets at 50,000: 200 ms); 0: no limit")
    fanout_slice_sockets: int = setting(500,
        "sockets a process hands a tick to between two turns of its event loop, so commands and joins are not held "
        "up by a big room's tick (events produced meanwhile still follow the tick); 0: the whole tick at once")
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = env.get(f"HAWKER_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _coerce(f.type, raw, f.name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> Config:
        return replace(self, **changes)

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def uses_default_secret(self) -> bool:
        return self.secret == DEFAULT_SECRET


def env_names() -> list[str]:
    """Every HAWKER_* variable the server reads (used by docs and the Docker test)."""
    return [f"HAWKER_{f.name.upper()}" for f in fields(Config) if f.name != "extra"]


def _coerce(type_name: Any, raw: str, name: str) -> Any:
    t = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", str(type_name))
    try:
        if t == "int":
            return int(raw)
        if t == "float":
            return float(raw)
        if t == "bool":
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
    except ValueError as exc:
        raise ValueError(f"HAWKER_{name.upper()}={raw!r} is not a valid {t}") from exc
    return raw
