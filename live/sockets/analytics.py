"""The analytics part on the socket: `proof.names` (host) and the acks it counts (`COUNTED`,
wrapped once here: register this module after the modules whose commands it counts)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from domain import Code, DomainError
from live.analytics_feed import COUNTED, names_key
from live.hub.registry import HOST, Caller

if TYPE_CHECKING:
    from live.node import Node


def register(node: Node) -> None:
    feed = node.analytics
    node.hub.on_join(feed.on_join)
    node.hub.on_leave(feed.on_leave)
    for event, count in COUNTED.items():
        feed.watch_command(event, count)

    @node.hub.command("proof.names", roles=HOST)
    async def set_names(caller: Caller, payload: dict) -> dict[str, Any]:
        """`proof.names` {enabled}: whether the player's ticker shows buyers' (masked) first names."""
        enabled = payload.get("enabled")
        if set(payload) - {"enabled"} or not isinstance(enabled, bool):
            raise DomainError(Code.VALIDATION, "enabled must be true or false", field="enabled")
        await feed.redis.set(names_key(caller.broadcast), "1" if enabled else "0", ex=feed.store.ttl_s)
        node.fanout.urgent(caller.broadcast, "proof.names", {"enabled": enabled})
        return {"enabled": enabled}
