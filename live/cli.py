"""The `hawker` command: serve, demo, token, giveaway verify."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import fields

from live.config import Config

# Config field -> flag help. Every Config field has a flag here (a test checks it), and the
# README's settings table is generated from this (settings_markdown; a test keeps them equal).
_FLAG_HELP = {
    "host": "address to listen on",
    "port": "port to listen on",
    "redis_url": "Redis URL (redis://host:port/db)",
    "secret": "HS256 secret for tokens (required outside demo mode)",
    "public_url": "URL viewers reach this server at (for printed links)",
    "workers": "processes sharing the port (SO_REUSEPORT)",
    "demo": "demo mode: allows the default secret (`hawker demo` sets it)",
    "data_dir": "folder for the embedded Redis, media and other state",
    "tick_ms": "fan-out tick in milliseconds",
    "max_message_bytes": "largest Socket.IO message accepted",
    "max_request_bytes": "largest HTTP request body accepted (else 413)",
    "redis_timeout_s": "Redis connect/command timeout in seconds (commands retry 3 times on connection errors)",
    "log_level": "debug, info, warning, error",
    "ice_servers": "comma-separated STUN/TURN URLs handed to browsers and aiortc",
    "webrtc_viewer_cap": "WebRTC viewers per process before the player is sent to HLS",
    "media_dir": "folder for HLS segments (default: DATA_DIR/media)",
    "shutdown_grace_s": "seconds a graceful shutdown waits for each step (hooks, in-flight requests)",
    "chat_max_len": "longest chat message in characters",
    "chat_rate": "chat messages per second per user (token bucket refill, all nodes)",
    "chat_burst": "chat token bucket size per user",
    "chat_link_mode": "chat links: block, allow (CHAT_ALLOWED_DOMAINS only) or open",
    "chat_allowed_domains": "comma-separated domains chat may link to in allow mode",
    "chat_blocked_words": "comma-separated extra blocked chat words",
    "chat_overload_rate": "inbound chat messages/s per broadcast above which viewers get a sample",
    "chat_overload_k": "chat messages per tick a viewer gets while sampled",
    "chat_dup_window_s": "seconds in which the same chat text from one user is refused",
    "chat_word_lists": "bundled blocked-word lists to use (comma-separated: en,ko; empty for none)",
    "chat_history_cap": "chat messages kept per broadcast (replay timeline)",
    "chat_join_history": "chat messages in the join snapshot",
    "chat_retention_s": "seconds chat is kept after a broadcast ends",
    "webhook_max_attempts": "merchant webhook deliveries before a dead letter",
    "webhook_base_delay_s": "first webhook retry delay in seconds (doubles each attempt)",
    "payment_provider": "payment provider, required by serve: sandbox (offline test cards, orders say livemode=false) "
                        "or package.module:factory (see docs/checkout.md); demo uses sandbox",
    "fanout_queue_kb": "data queued per slow socket (KiB) before ticks are dropped; twice that closes it",
    "fanout_stall_s": "seconds a socket may stay backed up before it is closed as a slow consumer",
    "fanout_close_grace_s": "seconds a slow socket gets to read its close frame before the connection is cut",
    "redis_max_connections": "Redis connections per process (one bounded pool; a burst waits for a free one)",
    "redis_wait_ms": "ms a Redis call waits for a free pooled connection before the command answers BUSY",
    "command_deadline_ms": "ms a socket command may take before it is answered BUSY (retry with the same request_id)",
    "join_deadline_ms": "ms a join snapshot may take (failed parts retried) before it is sent with `partial`",
    "fanout_max_writes_per_s": "tick frames a process hands to its sockets per second at most: past it the tick period stretches beyond tick_ms (10,000 sockets at 50,000: 200 ms); 0: no limit",
    "join_max_inflight": "joins a process has admitted and not yet sent their snapshot, at most; a connect past it waits up to 5 s for a slot, then is refused BUSY with retry_after (0: no bound)",
    "snapshot_cache_ms": "ms a join-snapshot value that is the same for the whole broadcast (broadcast, media, sale records, chat state) is reused; concurrent joins always share one fetch (0: no reuse after it)",
    "webhook_allow_private": "let webhooks reach loopback/private/link-local addresses (local development and tests only)",
    "webhook_http_hosts": "comma-separated webhook hosts allowed over plain http (development); all others need https",
    "metrics_token": "if set, /metrics requires `Authorization: Bearer <token>` (it shows revenue and broadcast ids)",
    "metrics_port": "if set, /metrics is served only on this separate port (on METRICS_HOST), not the public one",
    "metrics_host": "address the separate metrics port listens on",
    "embed_origins": "comma-separated origins allowed to frame the player and hand it a token (demo default: any)",
    "webrtc_sessions_per_user": "WebRTC viewer sessions one user may hold per broadcast; a new one replaces the oldest",
    "webrtc_offer_rate": "WebRTC viewer offers per second per user (token bucket refill; 0 = no limit)",
    "webrtc_offer_burst": "WebRTC viewer offer bucket size per user",
    "webrtc_offer_ip_rate": "WebRTC viewer offers per second per client address (0 = no limit; behind a proxy all share one)",
    "webrtc_offer_ip_burst": "WebRTC viewer offer bucket size per client address",
    "webrtc_connect_timeout_s": "seconds a viewer's peer connection may take to connect before its slot is freed",
    "media_stall_s": "seconds without RTP from the host before media.state says stalled",
    "media_stall_grace_s": "seconds a stalled publish is held for the host to come back before it ends",
    "media_edge_listen": ("HOST:PORT of this process's internal listener for edge pulls "
                          "(port 0: any free port per process; empty: no cascade)"),
    "media_edge_advertise": "host other processes/nodes use to reach the internal listener (default: the listen host)",
    "media_edge_linger_s": "seconds an edge keeps its pull from the origin after its last WebRTC viewer left",
    "media_keyframe_warn_s": "keyframes further apart than this (H.264 ingest) -> media.state warning KEYFRAME_INTERVAL_LONG",
    "media_bitrate_warn_kbps": "host video above this bitrate (5 s average) -> media.state warning BITRATE_HIGH",
    "pii_retention_days": "days buyers' contact data stays on orders (then removed; totals stay for the audit)",
    "dead_letter_retention_days": "days a dead-letter webhook delivery (with its body) is kept",
    "sale_compact_after_s": "seconds after a closed sale's last stock change before it is compacted to its "
                            "audit summary and SOLD reservations (0: never compact)",
    "order_retention_days": "days an order is kept in Redis after it was made (0: for ever); the merchant "
                            "keeps them from webhooks and the CSV export",
    "analytics_flush_ms": "ms between a node's analytics flushes (one Redis pipeline each; counting adds no round trip per event)",
    "analytics_ttl_days": "days a broadcast's analytics are kept after their last change",
    "auction_bid_rate": "auction bids (and max bids) per second per user per auction, on Redis's clock (RATE_LIMITED past it)",
    "auction_bid_burst": "auction bids a user may send at once before the rate applies",
    "auction_hold_s": "seconds an auction winner (or the runner-up of an unpaid win) has to pay the hold",
    "redis_mode": "standalone; cluster (REDIS_URL names any node of a Redis Cluster); sentinel (REDIS_URL is "
                  "redis+sentinel://host:port[,host:port...]/<master name>[/db]: follows the master after a "
                  "failover) (docs/scaling.md)",
    "redis_replicas_ack": "replicas that must confirm a stock or payment change before it is acknowledged "
                          "(WAIT; 0: off); none in time answers UNAVAILABLE, safe to retry (docs/scaling.md)",
    "redis_replicas_ack_timeout_ms": "how long a change waits for its replica confirmations (WAIT timeout)",
}


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    types = {f.name: f.type for f in fields(Config)}
    for name, help_text in _FLAG_HELP.items():
        t = types[name]
        help_full = f"{help_text} [env HAWKER_{name.upper()}]"
        if t == "bool":
            p.add_argument(flag_name(name), dest=name, action=argparse.BooleanOptionalAction, default=None,
                           help=help_full)
            continue
        conv = int if t == "int" else float if t == "float" else str
        p.add_argument(flag_name(name), dest=name, type=conv, default=None, help=help_full)


def settings_markdown() -> str:
    """The README's settings table: every Config field with its variable, flag, default and meaning."""
    defaults = Config()
    rows = ["| variable | flag | default | meaning |", "| --- | --- | --- | --- |"]
    for f in fields(Config):
        if f.name == "extra":
            continue
        value = getattr(defaults, f.name)
        shown = "(empty)" if value == "" else str(value).lower() if isinstance(value, bool) else str(value)
        rows.append(f"| `HAWKER_{f.name.upper()}` | `{flag_name(f.name)}` | `{shown}` | "
                    f"{_FLAG_HELP.get(f.name, '(undocumented)')} |")
    return "\n".join(rows) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hawker", description="Hawker live-shopping server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    _add_config_flags(serve)
    demo = sub.add_parser("demo", help="run with an embedded Redis and a demo shop")
    _add_config_flags(demo)
    token = sub.add_parser("token", help="print a JWT")
    token.add_argument("--role", required=True, choices=["host", "moderator", "viewer"])
    token.add_argument("--broadcast", required=True)
    token.add_argument("--sub", required=True)
    token.add_argument("--name", default=None)
    token.add_argument("--ttl", type=int, default=12 * 3600, help="lifetime in seconds")
    token.add_argument("--secret", default=None, help="[env HAWKER_SECRET]")
    giveaway = sub.add_parser("giveaway", help="check a giveaway's draw (anyone can: the formula is public)")
    gsub = giveaway.add_subparsers(dest="giveaway_command", required=True)
    verify = gsub.add_parser("verify", help="recompute the winner from the revealed seed and the sorted entries")
    verify.add_argument("record", nargs="?", help="the draw's JSON record (a file, or - for stdin)")
    verify.add_argument("--url", help="the server, to fetch the record from instead")
    verify.add_argument("--broadcast", help="the broadcast id (with --url)")
    verify.add_argument("--giveaway", help="the giveaway id (with --url)")
    verify.add_argument("--token", help="a token for the broadcast (with --url) [env HAWKER_TOKEN]")
    loadtest = sub.add_parser("loadtest", help="load tests (needs the dev extras: Locust, matplotlib)")
    loadtest.add_argument("tool", choices=["spike", "burst"],
                          help="spike: a flash-sale spike (--scenario flash, chat-storm, reconnect-storm, soak) with "
                               "an audit, server-side and client-side figures and a report; burst: N buyers press Buy "
                               "at the same instant (see docs/loadtesting.md)")
    loadtest.add_argument("args", nargs=argparse.REMAINDER, help="the tool's own options (see --help of the tool)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "giveaway":
        return _giveaway_verify(args)
    if args.command == "loadtest":
        # loadtest/ reaches the server over the network only; this is just its entry point
        if args.tool == "burst":
            from loadtest.burst import main as burst

            return burst(args.args)
        from loadtest.spike import main as spike

        return spike(args.args)
    overrides = {k: v for k, v in vars(args).items() if k in {f.name for f in fields(Config)}}
    try:
        if args.command == "token":
            return _token(args, Config.from_env(secret=args.secret))
        config = Config.from_env(**overrides)
    except ValueError as exc:
        print(f"hawker: {exc}", file=sys.stderr)
        return 2
    if config.redis_mode not in ("standalone", "cluster", "sentinel"):
        print(f"hawker: HAWKER_REDIS_MODE={config.redis_mode!r}: use standalone, cluster or sentinel", file=sys.stderr)
        return 2
    if config.redis_mode == "sentinel":
        from redislayer.client import parse_sentinel_url

        try:
            parse_sentinel_url(config.redis_url)
        except ValueError as exc:
            print(f"hawker: HAWKER_REDIS_URL: {exc}", file=sys.stderr)
            return 2
    if config.redis_replicas_ack < 0 or config.redis_replicas_ack_timeout_ms < 1 or (
            config.redis_replicas_ack and config.redis_replicas_ack_timeout_ms >= config.redis_timeout_s * 1000):
        print("hawker: HAWKER_REDIS_REPLICAS_ACK must be >= 0 and HAWKER_REDIS_REPLICAS_ACK_TIMEOUT_MS between 1 and "
              "the Redis timeout (HAWKER_REDIS_TIMEOUT_S)", file=sys.stderr)
        return 2
    if args.command == "serve":
        if (config.uses_default_secret or not config.secret) and not config.demo:
            print("hawker: refusing to serve with the default secret: anyone could mint host tokens. "
                  "Set HAWKER_SECRET or --secret to a long random string "
                  "(or run `hawker demo` to try Hawker out)", file=sys.stderr)
            return 2
        if not config.payment_provider and not config.demo:
            print("hawker: refusing to serve without a payment provider: choose one explicitly with "
                  "HAWKER_PAYMENT_PROVIDER or --payment-provider (package.module:factory for real payments, "
                  "or `sandbox` for test cards that move no money; see docs/checkout.md)", file=sys.stderr)
            return 2
        from live.server import serve

        return serve(config)
    if args.command == "demo":
        from live.demo import run_demo

        return run_demo(config)
    return 2


def _giveaway_verify(args: argparse.Namespace) -> int:
    """Exit 0 when the published draw checks out (sha256(seed) is the commitment made at open and
    the formula picks the published winner from the sorted entries), 1 when it does not, 2 when
    the record cannot be had."""
    import json
    import os
    import urllib.error
    import urllib.parse
    import urllib.request

    from shop.giveaways import verify

    try:
        if args.url:
            if not (args.broadcast and args.giveaway):
                print("hawker: --url needs --broadcast and --giveaway", file=sys.stderr)
                return 2
            token = args.token or os.environ.get("HAWKER_TOKEN", "")
            url = (args.url.rstrip("/") + "/api/broadcasts/" + urllib.parse.quote(args.broadcast, safe="")
                   + "/giveaways/" + urllib.parse.quote(args.giveaway, safe=""))
            req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                record = json.loads(resp.read())
        elif args.record:
            if args.record == "-":
                text = sys.stdin.read()
            else:
                with open(args.record, encoding="utf-8") as f:
                    text = f.read()
            record = json.loads(text)
        else:
            print("hawker: give the record (a file or -) or --url", file=sys.stderr)
            return 2
    except (OSError, ValueError, urllib.error.URLError) as exc:
        print(f"hawker: could not read the giveaway record: {exc}", file=sys.stderr)
        return 2
    if not isinstance(record, dict):
        print("hawker: the record is not a JSON object", file=sys.stderr)
        return 2
    problems = verify(record)
    if problems:
        for p in problems:
            print(f"FAILED: {p}")
        return 1
    n = len(record["entries"])
    print(f"OK: sha256(seed) matches the commitment; winner {record.get('winner_entry') or '(none)'} "
          f"of {n} sorted entries")
    return 0


def _token(args: argparse.Namespace, config: Config) -> int:
    from live.auth import mint

    if config.uses_default_secret:
        print("hawker: warning: signing with the default (demo) secret; set HAWKER_SECRET or --secret "
              "to the server's secret", file=sys.stderr)
    try:
        print(mint(config.secret, sub=args.sub, role=args.role, broadcast=args.broadcast, name=args.name, ttl=args.ttl))
    except ValueError as exc:
        print(f"hawker: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
