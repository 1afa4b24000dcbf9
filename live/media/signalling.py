"""Video signalling over the hub: wired once the hub's command registry is available."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from live.media.service import MediaService


def setup(app: web.Application, services: Any, media: MediaService) -> None:
    return None
