"""STUN/TURN configuration: one setting (HAWKER_ICE_SERVERS), handed to browsers and to aiortc.

Accepted forms:
- JSON, exactly like a browser's `iceServers`:
  `[{"urls": "turn:turn.example.com:3478", "username": "u", "credential": "p"}]`
- a comma-separated list, credentials before `@`:
  `stun:stun.example.com:3478,turn:u:p@turn.example.com:3478?transport=udp`
Empty means host candidates only (no STUN lookups, which also keeps aiortc from using its
built-in Google STUN default)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiortc import RTCConfiguration, RTCIceServer

SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None

    def to_browser(self) -> dict[str, Any]:
        out: dict[str, Any] = {"urls": list(self.urls)}
        if self.username is not None:
            out["username"] = self.username
        if self.credential is not None:
            out["credential"] = self.credential
        return out

    def link_headers(self) -> list[str]:
        """RFC 9725 section 4.6: `Link: <turn:...>; rel="ice-server"; username=...; credential=..."`."""
        out = []
        for url in self.urls:
            value = f'<{url}>; rel="ice-server"'
            if self.username is not None:
                value += f'; username="{self.username}"; credential="{self.credential or ""}"; credential-type="password"'
            out.append(value)
        return out


def parse(raw: str) -> list[IceServer]:
    """Parse the setting; raise ValueError with a readable message when it is malformed."""
    raw = (raw or "").strip()
    if not raw:
        return []
    if raw.startswith("["):
        try:
            items = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"ice_servers is not valid JSON: {exc}") from None
        servers = []
        for item in items:
            if not isinstance(item, dict) or "urls" not in item:
                raise ValueError("each ice server needs `urls`")
            urls = item["urls"] if isinstance(item["urls"], list) else [item["urls"]]
            for url in urls:
                _check_url(url)
            servers.append(IceServer(tuple(urls), item.get("username"), item.get("credential")))
        return servers
    servers = []
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        scheme, _, rest = entry.partition(":")
        username = credential = None
        if "@" in rest:
            creds, _, rest = rest.rpartition("@")
            username, _, credential = creds.partition(":")
        url = f"{scheme}:{rest}"
        _check_url(url)
        servers.append(IceServer((url,), username, credential))
    return servers


def _check_url(url: Any) -> None:
    if not isinstance(url, str) or not url.startswith(SCHEMES) or len(url) < 7:
        raise ValueError(f"ice server url must start with stun:, stuns:, turn: or turns: (got {url!r})")


def rtc_configuration(servers: list[IceServer]) -> RTCConfiguration:
    """aiortc configuration; an explicit empty list disables aiortc's default public STUN server."""
    return RTCConfiguration(
        iceServers=[RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential) for s in servers]
    )


def browser_config(servers: list[IceServer]) -> list[dict[str, Any]]:
    return [s.to_browser() for s in servers]
