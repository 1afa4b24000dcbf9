"""The `hawker` command: serve, demo, token, giveaway verify."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import fields

from live.config import Config

# Config field -> flag help, from the field itself (live/config.py `setting`): every Config field has
# a flag (a test checks it), and the README's settings table is generated from the same text
# (settings_markdown; a test keeps them equal).
_FLAG_HELP = {f.name: f.metadata.get("help", "") for f in fields(Config) if f.name != "extra"}


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
