"""Headers that keep secrets and pages where they belong.

- `Referrer-Policy: no-referrer` on every response: a page opened with an old `?token=` link
  must not hand that URL to every image, script or site it loads.
- `Content-Security-Policy: frame-ancestors ...` on the pages: the player may be framed only by the
  origins in `HAWKER_EMBED_ORIGINS` (demo mode with none set: any origin; otherwise its own), the
  studio by nobody. The same list is what the player trusts with postMessage (live/static/hawker/watch.js)."""
from __future__ import annotations

import logging
import re

from aiohttp import web

from live.config import Config

log = logging.getLogger("hawker.headers")

ANY = "*"
_ORIGIN = re.compile(r"^https?://(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


def embed_origins(config: Config) -> list[str]:
    """The origins allowed to embed the player, `["*"]` for any (demo mode with none configured).
    Entries that are not a bare `scheme://host[:port]` are dropped (they could smuggle CSP syntax)."""
    wanted = [o.strip().rstrip("/") for o in config.embed_origins.split(",") if o.strip()]
    good = [o for o in wanted if o == ANY or _ORIGIN.match(o)]
    for bad in set(wanted) - set(good):
        log.warning("HAWKER_EMBED_ORIGINS: ignoring %r (expected scheme://host[:port])", bad[:100])
    if not good:
        return [ANY] if config.demo else []
    return [ANY] if ANY in good else list(dict.fromkeys(good))


def player_frame_ancestors(config: Config) -> str:
    origins = embed_origins(config)
    if origins == [ANY]:
        return "frame-ancestors *"
    return " ".join(["frame-ancestors", "'self'", *origins])


STUDIO_FRAME_ANCESTORS = "frame-ancestors 'none'"


async def _on_prepare(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Referrer-Policy", "no-referrer")


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(_on_prepare)
