"""HTTP doors: WHIP ingest (RFC 9725), WHEP-style playback, ICE config, media state, HLS files."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from domain import Code, DomainError
from live import auth
from live.errors import error_response, json_response
from live.media import metrics
from live.media.hls import BROADCAST_RE
from live.media.ice import browser_config
from live.media.service import MediaService, check_broadcast
from live.node import Node, node_of

SDP = "application/sdp"
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location, Link, ETag, Accept-Post, Retry-After, X-Hawker-Media-Role",
}
PREFLIGHT = {
    **CORS,
    "Access-Control-Allow-Methods": "POST, DELETE, PATCH, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Max-Age": "86400",
    "Accept-Post": SDP,
}
RESOURCE_METHODS = "DELETE, OPTIONS"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPES = {".ts": "video/mp2t", ".m4s": "video/iso.segment", ".mp4": "video/mp4", ".m3u8": PLAYLIST_TYPE}
SEGMENT_CACHE = "public, max-age=31536000, immutable"
LIVE_PLAYLIST_CACHE = "no-cache, max-age=1"
REPLAY_PLAYLIST_CACHE = "public, max-age=60"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _media(request: web.Request) -> MediaService:
    return node_of(request.app).media


def cors(handler: Handler) -> Handler:
    """CORS on every answer, errors included, so a studio on another origin can read them."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            resp = await handler(request)
        except DomainError as exc:
            metrics.REFUSED.labels(exc.code).inc()
            resp = error_response(exc)
        resp.headers.update(CORS)
        return resp

    return wrapped


async def _read_sdp(request: web.Request) -> str:
    if request.content_type != SDP:
        raise DomainError(Code.UNSUPPORTED_MEDIA_TYPE, "expected Content-Type: application/sdp")
    raw = await request.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DomainError(Code.INVALID_SDP, "the SDP offer is not UTF-8") from None


def _created(request: web.Request, location: str, sdp: str) -> web.Response:
    resp = web.Response(status=201, body=sdp.encode(), content_type=SDP)
    resp.headers["Location"] = location
    resp.headers["ETag"] = f'"{location.rsplit("/", 1)[-1]}"'
    _add_links(request, resp)
    return resp


def _add_links(request: web.Request, resp: web.StreamResponse) -> None:
    for server in _media(request).ice_servers:
        for value in server.link_headers():
            resp.headers.add("Link", value)


# ---- WHIP ------------------------------------------------------------------------------------


@cors
async def whip_post(request: web.Request) -> web.StreamResponse:
    broadcast = check_broadcast(request.match_info["broadcast"])
    claims = auth.require(request, roles=("host",), broadcast=broadcast)
    sdp = await _read_sdp(request)
    answer = await _media(request).publish(broadcast, sdp, claims.sub)
    return _created(request, f"/whip/{broadcast}/{answer.session_id}", answer.sdp)


@cors
async def whip_delete(request: web.Request) -> web.StreamResponse:
    broadcast = check_broadcast(request.match_info["broadcast"])
    auth.require(request, roles=("host",), broadcast=broadcast)
    if not await _media(request).end_publish_anywhere(broadcast, request.match_info["session"]):
        raise DomainError(Code.SESSION_NOT_FOUND, "no such publish session")
    return web.Response(status=200)


# ---- WHEP ------------------------------------------------------------------------------------


@cors
async def whep_post(request: web.Request) -> web.StreamResponse:
    broadcast = check_broadcast(request.match_info["broadcast"])
    claims = auth.require(request, broadcast=broadcast)
    sdp = await _read_sdp(request)
    media = _media(request)
    answer = await media.play(broadcast, sdp, claims.sub, via="whep", address=request.remote)
    resp = _created(request, f"/whep/{broadcast}/{answer.session_id}", answer.sdp)
    # who serves this viewer: the process holding the publish, or an edge pulling it (cascade)
    resp.headers["X-Hawker-Media-Role"] = "origin" if broadcast in media.publishers else "edge"
    return resp


@cors
async def whep_delete(request: web.Request) -> web.StreamResponse:
    broadcast = check_broadcast(request.match_info["broadcast"])
    claims = auth.require(request, broadcast=broadcast)
    media = _media(request)
    session = media.viewers.get(request.match_info["session"])
    if session is None or (not claims.is_staff and session.sub != claims.sub):  # viewers end only their own
        raise DomainError(Code.SESSION_NOT_FOUND, "no such playback session")
    if not await media.end_play(broadcast, session.id):
        raise DomainError(Code.SESSION_NOT_FOUND, "no such playback session")
    return web.Response(status=200)


# ---- shared ----------------------------------------------------------------------------------


async def preflight(request: web.Request) -> web.StreamResponse:
    resp = web.Response(status=204, headers=PREFLIGHT)
    _add_links(request, resp)
    return resp


@cors
async def patch_not_supported(request: web.Request) -> web.StreamResponse:
    """RFC 9725 4.3: no trickle ICE or ICE restart here; the offer must carry its candidates
    (browsers and OBS wait for gathering to finish before POSTing, which is what we expect)."""
    resp = error_response(DomainError(Code.TRICKLE_NOT_SUPPORTED,
                                      "trickle ICE and ICE restarts are not supported; send a complete offer"))
    resp.headers["Allow"] = RESOURCE_METHODS
    return resp


@cors
async def ice_config(request: web.Request) -> web.StreamResponse:
    """STUN/TURN servers for browsers (credentials included, so a token is required)."""
    auth.require(request)
    return json_response({"ice_servers": browser_config(_media(request).ice_servers)})


@cors
async def media_state(request: web.Request) -> web.StreamResponse:
    broadcast = check_broadcast(request.match_info["broadcast"])
    return json_response(await _media(request).current_state(broadcast))


# ---- HLS -------------------------------------------------------------------------------------


def _not_found() -> DomainError:
    """One answer for every refused HLS request: a stranger learns nothing about what exists."""
    return DomainError(Code.NOT_FOUND, "no such HLS file")


async def hls_playlist(request: web.Request) -> web.StreamResponse:
    broadcast = request.match_info["broadcast"]
    hls = _media(request).hls
    path = hls.playlist_path(broadcast) if hls else None
    if path is None:
        raise DomainError(Code.NO_PLAYLIST, "this broadcast has no HLS playlist yet") if hls and \
            BROADCAST_RE.match(broadcast) else _not_found()
    body = path.read_bytes()
    ended = b"#EXT-X-ENDLIST" in body
    return web.Response(body=body, headers={
        "Content-Type": PLAYLIST_TYPE,
        "Cache-Control": REPLAY_PLAYLIST_CACHE if ended else LIVE_PLAYLIST_CACHE,
        **CORS,
    })


async def hls_file(request: web.Request) -> web.StreamResponse:
    """A segment or an older run's playlist. aiohttp decodes %2F inside a path part, so every part
    is checked against a strict name pattern and the resolved path must stay in the broadcast's folder."""
    broadcast, run, name = (request.match_info[k] for k in ("broadcast", "run", "name"))
    hls = _media(request).hls
    path = hls.file_path(broadcast, run, name) if hls is not None else None
    if path is None:
        raise _not_found()
    suffix = path.suffix
    headers = {"Content-Type": SEGMENT_TYPES[suffix], **CORS}
    if suffix == ".m3u8":  # an older run's replay: its segment URIs are relative to the run's folder
        body = path.read_bytes().replace(f"{run}/".encode(), b"")
        ended = b"#EXT-X-ENDLIST" in body
        headers["Cache-Control"] = REPLAY_PLAYLIST_CACHE if ended else LIVE_PLAYLIST_CACHE
        return web.Response(body=body, headers=headers)
    headers["Cache-Control"] = SEGMENT_CACHE
    return web.FileResponse(path, headers=headers)


def register(app: web.Application, node: Node) -> None:
    r = app.router
    r.add_post("/whip/{broadcast}", whip_post)
    r.add_route("OPTIONS", "/whip/{broadcast}", preflight)
    r.add_delete("/whip/{broadcast}/{session}", whip_delete)
    r.add_patch("/whip/{broadcast}/{session}", patch_not_supported)
    r.add_route("OPTIONS", "/whip/{broadcast}/{session}", preflight)
    r.add_post("/whep/{broadcast}", whep_post)
    r.add_route("OPTIONS", "/whep/{broadcast}", preflight)
    r.add_delete("/whep/{broadcast}/{session}", whep_delete)
    r.add_patch("/whep/{broadcast}/{session}", patch_not_supported)
    r.add_route("OPTIONS", "/whep/{broadcast}/{session}", preflight)
    r.add_get("/api/ice", ice_config)
    r.add_get("/api/media/{broadcast}", media_state)
    r.add_get("/hls/{broadcast}/index.m3u8", hls_playlist)
    r.add_get("/hls/{broadcast}/{run}/{name}", hls_file)
