"""Settings: one frozen dataclass, read from HAWKER_* environment variables and mirrored by CLI flags."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

DEFAULT_SECRET = "hawker-demo-secret-not-for-production"  # >= 32 bytes: no PyJWT key warning


@dataclass(frozen=True)
class Config:
    """Every setting Hawker reads. `Config.from_env()` fills it from HAWKER_<NAME>."""

    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str = "redis://127.0.0.1:6379/0"
    secret: str = DEFAULT_SECRET
    public_url: str = ""
    workers: int = 1
    demo: bool = False
    data_dir: str = ".hawker"
    tick_ms: int = 100
    max_message_bytes: int = 64 * 1024
    max_request_bytes: int = 1024 * 1024
    redis_timeout_s: float = 5.0
    log_level: str = "info"
    ice_servers: str = ""
    webrtc_viewer_cap: int = 250
    media_dir: str = ""
    shutdown_grace_s: float = 5.0
    # chat (chat/policy.py ChatPolicy; README "Chat settings")
    chat_max_len: int = 300
    chat_rate: float = 1.0
    chat_burst: int = 5
    chat_dup_window_s: int = 30
    chat_link_mode: str = "block"
    chat_allowed_domains: str = ""
    chat_word_lists: str = "en,ko"
    chat_blocked_words: str = ""
    chat_history_cap: int = 100_000
    chat_join_history: int = 50
    chat_retention_s: int = 7 * 86400
    chat_overload_rate: float = 50.0
    chat_overload_k: int = 10
    webhook_max_attempts: int = 8
    webhook_base_delay_s: float = 2.0
    payment_provider: str = ""  # no default: `hawker serve` refuses to start until one is chosen
    # fan-out engine (live/fanout/; README "Fan-out settings")
    fanout_queue_kb: int = 512
    fanout_stall_s: float = 10.0
    fanout_close_grace_s: float = 5.0
    # Redis layer and admission control (redislayer/; docs/protocol.md "BUSY and UNAVAILABLE")
    redis_max_connections: int = 64
    redis_wait_ms: int = 2000
    command_deadline_ms: int = 5000
    join_deadline_ms: int = 3000
    # egress, secrets and disclosure (checkout/egress.py, live/accesslog.py, live/headers.py; docs/security.md)
    webhook_allow_private: bool = False
    webhook_http_hosts: str = ""
    metrics_token: str = ""
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    embed_origins: str = ""
    # media (live/media/; docs/media.md "Settings")
    webrtc_sessions_per_user: int = 2
    webrtc_offer_rate: float = 0.2
    webrtc_offer_burst: int = 5
    webrtc_offer_ip_rate: float = 5.0
    webrtc_offer_ip_burst: int = 60
    webrtc_connect_timeout_s: float = 10.0
    media_stall_s: float = 5.0
    media_stall_grace_s: float = 30.0
    # commerce privacy (checkout/ retention and erasure; docs/security.md "Commerce")
    pii_retention_days: int = 90
    dead_letter_retention_days: int = 30
    # Redis: retention (live/compactor.py, checkout/ledger.py) and mode (live/store.py); docs/scaling.md
    sale_compact_after_s: int = 3600
    order_retention_days: int = 90
    redis_mode: str = "standalone"
    # merchant analytics and social proof (analytics/, live/analytics_feed.py)
    analytics_flush_ms: int = 1000
    analytics_ttl_days: int = 90
    # live auctions, giveaways, quizzes (auctions/, live/hub/cmd_auctions.py; docs/protocol.md "Auctions")
    auction_bid_rate: float = 5.0
    auction_bid_burst: int = 10
    auction_hold_s: int = 600
    # media cascade and ingest checks (live/media/edge.py, live/media/ingest.py; docs/media.md)
    media_edge_listen: str = "127.0.0.1:0"
    media_edge_advertise: str = ""
    media_edge_linger_s: float = 5.0
    media_keyframe_warn_s: float = 4.0
    media_bitrate_warn_kbps: int = 4000
    # Redis failover: replica acknowledgement of stock and payment changes (redislayer); docs/scaling.md
    redis_replicas_ack: int = 0
    redis_replicas_ack_timeout_ms: int = 100
    # join path under load (live/hub/registry.py shared snapshot parts; docs/loadtesting.md)
    snapshot_cache_ms: int = 200
    join_max_inflight: int = 256
    fanout_max_writes_per_s: int = 50_000
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
