"""Wiring the hub into the app: called once from create_app, before other parts register."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from inventory import Inventory
from live.hub import cmd_broadcast, cmd_polls, cmd_sales, rest
from live.hub.hub import Hub
from live.hub.registry import Registry
from live.hub.scheduler import Scheduler
from live.hub.stockwatch import StockWatch

log = logging.getLogger("hawker.hub")


def _fanout(services: Any, node_id: str) -> Any:
    """The fan-out engine of this node: the one in services if another part built it, else ours."""
    existing = getattr(services, "fanout", None) or services.parts.get("fanout")
    if existing is not None:
        return existing, False
    from live.fanout import Fanout

    fan = Fanout(services.sio, services.redis, node_id=node_id, tick_ms=services.config.tick_ms,
                 max_writes_per_s=services.config.fanout_max_writes_per_s)
    return fan, True


def _inventory(services: Any) -> Inventory:
    existing = getattr(services, "inventory", None) or services.parts.get("inventory")
    return existing if existing is not None else Inventory(services.redis)


def setup(app: web.Application, services: Any) -> Hub:
    """Build the hub, its built-in commands (broadcast, polls, sales) and REST routes."""
    import uuid

    node_id = uuid.uuid4().hex[:12]
    fanout, own_fanout = _fanout(services, node_id)
    hub = Hub(sio=services.sio, redis=services.redis, fanout=fanout, secret=services.config.secret,
              registry=Registry(max_bytes=min(16 * 1024, services.config.max_message_bytes),
                                timeout_s=services.config.command_deadline_ms / 1000,
                                join_deadline_s=services.config.join_deadline_ms / 1000,
                                snapshot_cache_s=services.config.snapshot_cache_ms / 1000), node_id=node_id,
              max_joining=services.config.join_max_inflight)
    if own_fanout:
        fanout.clock = hub.clock.now_ms  # tick `ts` on the server clock the clients sync to (Redis TIME)
    inventory = _inventory(services)
    timers = Scheduler(services.redis, hub.clock)
    cmd_broadcast.register(hub)
    polls = cmd_polls.register(hub, timers)
    tallies = cmd_polls.TallyPublisher(polls, node_id=node_id, period_ms=services.config.tick_ms)
    sales = cmd_sales.register(hub, inventory, timers)
    watch = StockWatch(services.redis, inventory, sales, node_id=node_id, period_ms=services.config.tick_ms)
    hub.sales = sales
    hub.stockwatch = watch
    hub.timers = timers  # for parts with timed actions (auctions)
    rest.add_routes(app)
    app["hub"] = hub
    services.parts["hub"] = hub
    services.parts.setdefault("fanout", fanout)
    if hasattr(services, "hub"):
        services.hub = hub

    async def _start(_app: web.Application) -> None:
        if "chat" not in hub.registry.parts:  # until the chat part registers its history
            hub.snapshot_part("chat")(_no_chat)
        if own_fanout:
            await fanout.start()
        await hub.start()
        await timers.start()
        await watch.start()
        await tallies.start()

    async def _stop(_app: web.Application) -> None:
        steps = [tallies.stop, watch.stop, timers.stop, hub.stop] + ([fanout.stop] if own_fanout else [])
        for step in steps:  # each bounded: shutdown must finish even if Redis hangs
            try:
                await asyncio.wait_for(step(), 5)
            except (TimeoutError, Exception):  # noqa: BLE001
                log.warning("hub stop step %s did not finish cleanly", getattr(step, "__qualname__", step))

    app.on_startup.append(_start)
    app.on_cleanup.insert(0, _stop)
    app.setdefault("shutdown_hooks", []).append(hub.disconnect_all)
    return hub


async def _no_chat(caller: Any) -> list:
    return []
