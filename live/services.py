"""The running node's parts, built once in create_app and passed explicitly to whoever needs them.

Each engineer adds the field for the part they own (inventory, chat, checkout, fanout, hub, media)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import socketio

from live.config import Config


@dataclass
class Services:
    config: Config
    redis: aioredis.Redis
    sio: socketio.AsyncServer
    parts: dict[str, Any] = field(default_factory=dict)
    hub: Any = None  # live.hub.Hub: command registry, snapshot parts, broadcast store (live/hub/)
