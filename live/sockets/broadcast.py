"""Broadcast-level commands: clock sync, snapshot on demand, go live / end, pin / unpin, hearts."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from domain import validate as v
from live.hub.registry import EVERYONE, HOST, STAFF, Caller

if TYPE_CHECKING:
    from live.node import Node


def register(node: Node) -> None:
    hub = node.hub

    @hub.command("time", roles=EVERYONE, cost=0.5)
    async def time_(caller: Caller, payload: dict) -> dict:
        """Clock sync: the client keeps the sample with the smallest round trip (docs/protocol.md)."""
        return {"now": hub.clock.now_ms()}

    @hub.command("snapshot", roles=EVERYONE, cost=5)
    async def snapshot(caller: Caller, payload: dict) -> dict:
        return {"snapshot": await hub.build_snapshot(caller)}

    @hub.snapshot_part("broadcast", shared=True)
    async def broadcast_part(caller: Caller) -> dict[str, Any] | None:
        bc = await hub.broadcasts.get(caller.broadcast)
        return bc.to_dict() if bc else None

    async def move(caller: Caller, to: str, allowed: tuple[str, ...]) -> dict:
        at = await hub.broadcasts.transition(caller.broadcast, to, allowed)
        hub.fanout.urgent(caller.broadcast, "broadcast.state", {"broadcast_id": caller.broadcast, "state": to, "at": at})
        if to == "ended":
            await hub.run_end_hooks(caller.broadcast)
        return {"state": to, "at": at}

    @hub.command("broadcast.start", roles=HOST)
    async def start(caller: Caller, payload: dict) -> dict:
        return await move(caller, "live", ("scheduled",))

    @hub.command("broadcast.end", roles=HOST)
    async def end(caller: Caller, payload: dict) -> dict:
        return await move(caller, "ended", ("scheduled", "live"))

    async def pin_to(caller: Caller, product_id: str | None) -> dict:
        await hub.broadcasts.pin(caller.broadcast, product_id)
        bc = await hub.broadcasts.require(caller.broadcast)
        pinned = bc.product(product_id) if product_id else None
        product = pinned.to_dict() if pinned else None
        data = {"broadcast_id": caller.broadcast, "product": product, "at": bc.updated_at}
        hub.fanout.urgent(caller.broadcast, "product.pinned", data)
        return {"product": product}

    @hub.command("product.pin", roles=STAFF)
    async def pin(caller: Caller, payload: dict) -> dict:
        product_id = v.ident(payload, "product_id")
        return await pin_to(caller, product_id)

    @hub.command("product.unpin", roles=STAFF)
    async def unpin(caller: Caller, payload: dict) -> dict:
        return await pin_to(caller, None)

    @hub.command("hearts", roles=EVERYONE)
    async def hearts(caller: Caller, payload: dict) -> dict:
        n = v.integer(payload, "n", required=False, lo=1, hi=10, default=1)
        hub.fanout.hearts(caller.broadcast, n)
        return {}
