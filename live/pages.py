"""The studio and player pages: static HTML + ES modules under live/static/, served by aiohttp.

The pages are plain files; this module only fills in the broadcast id and whether the server runs
in demo mode, who may embed the player (live/headers.py), and (demo mode only) mints guest viewer tokens so `/watch/<b>` works without a
merchant site. Everything the pages load is served from this server (live/static/vendor/)."""
from __future__ import annotations

import html
import json
import re
import secrets
from pathlib import Path

from aiohttp import web

from domain import Code, DomainError
from domain.validate import ID_RE, check_id
from live.auth import mint
from live.headers import STUDIO_FRAME_ANCESTORS, embed_origins, player_frame_ancestors

PAGES_DIR = Path(__file__).resolve().parent / "static" / "pages"
_BROADCAST_RE = ID_RE  # the one id rule
GUEST_TTL_S = 12 * 3600
_INCLUDE = re.compile(r"^<!--#include ([a-z-]+\.html)-->\n", re.M)  # a part the pages share (pages/parts/)


def _page(name: str, frame_ancestors: str, **values: object) -> web.Response:
    """Read the page (every time: cheap, and edits show without a restart), put in the parts it
    includes (`<!--#include part.html-->` lines, from pages/parts/) and fill `{{key}}`
    placeholders with JSON-in-HTML-safe values. `frame_ancestors` says who may frame it."""
    text = _INCLUDE.sub(lambda m: (PAGES_DIR / "parts" / m.group(1)).read_text("utf-8"),
                        (PAGES_DIR / name).read_text("utf-8"))
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", html.escape(json.dumps(value), quote=True))
    return web.Response(text=text, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": frame_ancestors, "Referrer-Policy": "no-referrer"})


async def studio(request: web.Request) -> web.Response:
    resp = _page("studio.html", STUDIO_FRAME_ANCESTORS, demo=bool(request.app["config"].demo))
    resp.headers["X-Frame-Options"] = "DENY"  # older browsers without frame-ancestors
    return resp


async def watch(request: web.Request) -> web.Response:
    bc = request.match_info["broadcast"]
    if not _BROADCAST_RE.match(bc):
        raise DomainError(Code.NOT_FOUND, "no such broadcast")
    config = request.app["config"]
    return _page("watch.html", player_frame_ancestors(config), broadcast=bc, demo=bool(config.demo),
                 embed_origins=embed_origins(config))


async def guest_token(request: web.Request) -> web.Response:
    """Demo mode only: a viewer token for a fresh guest id. A merchant site mints its own tokens
    with the shared secret (see docs/embedding.md) and this endpoint answers 404."""
    config = request.app["config"]
    if not config.demo:
        raise DomainError(Code.NOT_FOUND, "guest tokens exist only in demo mode")
    bc = request.query.get("broadcast", "")
    check_id(bc, "broadcast")
    sub = "guest-" + secrets.token_hex(6)
    token = mint(config.secret, sub=sub, role="viewer", broadcast=bc, name="Guest " + sub[-4:], ttl=GUEST_TTL_S)
    return web.json_response({"token": token, "user": sub, "expires_in": GUEST_TTL_S})


def setup(app: web.Application) -> None:
    app.router.add_get("/studio", studio)
    app.router.add_get("/watch/{broadcast}", watch)
    app.router.add_get("/api/guest-token", guest_token)
