"""The internal door for edge pulls: a token only Hawker processes mint, and the listener that takes it.

An edge (a process serving WebRTC viewers of a broadcast published elsewhere) is a WHEP client of
the origin. Its offer goes to the origin's *internal* listener (its own port per process, never the
public router) with an internal token:

- signed with a key derived from the server secret (HMAC-SHA256(secret, "hawker-media-edge-v1")), so
  a token minted with the plain secret (viewer, host, moderator, a merchant's token) never verifies
  here, and an internal token never verifies as a public one (`live.auth.verify` rejects it);
- role `edge`, audience `hawker-media-edge`, the broadcast and the puller's node id, 60 s lifetime.

The pull is not a viewer: no per-user/per-address offer limit, no per-user session cap and no slot
of the WebRTC cap (a bounded number of edges per broadcast instead, see MediaService.play)."""
from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Any

import jwt
from aiohttp import web

from domain import Code, DomainError
from live.errors import error_response

log = logging.getLogger("hawker.media.internal")

AUDIENCE = "hawker-media-edge"
ROLE = "edge"
TTL_S = 60
PULL_PATH = "/internal/media/{broadcast}/pull"
PUBLISH_PATH = "/internal/media/{broadcast}/publish/{session}"


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"hawker-media-edge-v1", hashlib.sha256).digest()


def mint_edge_token(secret: str, node: str, broadcast: str, ttl: int = TTL_S) -> str:
    """A short-lived token for one edge pull of `broadcast` by process `node`."""
    now = int(time.time())
    payload = {"sub": f"edge:{node}", "role": ROLE, "node": node, "bc": broadcast, "aud": AUDIENCE,
               "iat": now, "exp": now + ttl}
    return jwt.encode(payload, _key(secret), algorithm="HS256")


def verify_edge_token(secret: str, token: str | None, broadcast: str) -> str:
    """The puller's node id; refused 401 (missing/invalid/expired) or 403 (wrong role/broadcast)."""
    if not token:
        raise DomainError(Code.TOKEN_MISSING, "an internal edge token is required")
    try:
        data = jwt.decode(token, _key(secret), algorithms=["HS256"], audience=AUDIENCE,
                          options={"require": ["sub", "exp", "aud"]})
    except jwt.ExpiredSignatureError:
        raise DomainError(Code.TOKEN_EXPIRED, "the internal token has expired") from None
    except jwt.PyJWTError:
        raise DomainError(Code.TOKEN_INVALID, "not an internal edge token") from None
    node = data.get("node")
    if data.get("role") != ROLE or not isinstance(node, str) or not node:
        raise DomainError(Code.FORBIDDEN, "only Hawker processes may pull a broadcast")
    if data.get("bc") != broadcast:
        raise DomainError(Code.FORBIDDEN, "the internal token is for another broadcast")
    return node


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def build_app(media: Any, secret: str) -> web.Application:
    """The internal listener: `POST` (offer -> answer) and `DELETE` of edge pulls, nothing else."""
    from live.media.service import check_broadcast

    async def pull(request: web.Request) -> web.StreamResponse:
        try:
            broadcast = check_broadcast(request.match_info["broadcast"])
            node = verify_edge_token(secret, _bearer(request), broadcast)
            if request.content_type != "application/sdp":
                raise DomainError(Code.UNSUPPORTED_MEDIA_TYPE, "expected Content-Type: application/sdp")
            raw = await request.read()
            try:
                sdp = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DomainError(Code.INVALID_SDP, "the SDP offer is not UTF-8") from None
            answer = await media.play(broadcast, sdp, f"edge:{node}", via="edge")
        except DomainError as exc:
            return error_response(exc)
        resp = web.Response(status=201, body=answer.sdp.encode(), content_type="application/sdp")
        resp.headers["Location"] = f"/internal/media/{broadcast}/pull/{answer.session_id}"
        return resp

    async def unpull(request: web.Request) -> web.StreamResponse:
        try:
            broadcast = check_broadcast(request.match_info["broadcast"])
            node = verify_edge_token(secret, _bearer(request), broadcast)
            session = media.viewers.get(request.match_info["session"])
            if session is None or session.via != "edge" or session.sub != f"edge:{node}":
                raise DomainError(Code.SESSION_NOT_FOUND, "no such edge pull")
            await media.end_play(broadcast, session.id)
        except DomainError as exc:
            return error_response(exc)
        return web.Response(status=200)

    async def end_publish(request: web.Request) -> web.StreamResponse:
        """A host's WHIP DELETE that reached another process (workers share the port): that
        process checked the host token and forwards it here, to the process holding the publish."""
        try:
            broadcast = check_broadcast(request.match_info["broadcast"])
            verify_edge_token(secret, _bearer(request), broadcast)
            if not await media.end_publish(broadcast, request.match_info["session"]):
                raise DomainError(Code.SESSION_NOT_FOUND, "no such publish session")
        except DomainError as exc:
            return error_response(exc)
        return web.Response(status=200)

    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post(PULL_PATH, pull)
    app.router.add_delete(PULL_PATH + "/{session}", unpull)
    app.router.add_delete(PUBLISH_PATH, end_publish)
    return app


class InternalListener:
    """Runs `build_app` on its own port (one per process: with SO_REUSEPORT workers the public port
    cannot address a given process) and knows the URL other processes use to reach it."""

    def __init__(self, media: Any, secret: str, listen: str, advertise: str = "") -> None:
        host, _, port = listen.rpartition(":")
        self.host = host.strip("[]") or "127.0.0.1"
        self.port = int(port or 0)
        self.advertise = advertise or self.host
        self._app = build_app(media, secret)
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    async def start(self) -> str:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []  # asyncio.Server's; AbstractServer does not declare it
        port = sockets[0].getsockname()[1] if sockets else self.port
        host = self.advertise if ":" not in self.advertise else f"[{self.advertise}]"
        self.url = f"http://{host}:{port}"
        log.info("media edge listener on %s:%d (advertised as %s)", self.host, port, self.url)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
