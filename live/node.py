"""The running node: every part, typed, built once by `create_app` in one explicit order.

`build()` constructs the parts (constructors only wire objects together, they never register
handlers); then create_app registers every feature through one shape - `register(node)` for each
module of live/sockets/ and `register(app, node)` for each module of live/rest/ - and `start()` /
`stop()` run the background parts in one order (stop in reverse, each step bounded).
Handlers reach the node as `request.app["node"]` (see `node_of`) or through the closure of their
`register`."""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from aiohttp import web

from checkout.idempotency import IdempotencyStore
from inventory import Inventory
from live import media as media_part
from live.analytics_feed import AnalyticsFeed
from live.checkout_part import CheckoutPart
from live.compactor import Compactor
from live.config import Config
from live.fanout import Fanout, FanoutServer
from live.hub.hub import Hub
from live.hub.registry import Registry
from live.hub.scheduler import Scheduler
from live.hub.stockwatch import StockWatch
from live.media import InternalListener, MediaService
from live.privacy import Privacy
from live.sockets.auctions import AuctionPart
from live.sockets.chat import ChatEvents
from live.sockets.giveaways import Giveaways
from live.sockets.polls import Polls, TallyPublisher
from live.sockets.replay import Replay
from live.sockets.sales import Sales

log = logging.getLogger("hawker.node")

NODE = "node"  # the aiohttp app key of the Node
Step = tuple[str, Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]


@dataclass(frozen=True)
class Node:
    """The parts of one node. Each field is built by `build()` from the fields above it."""

    config: Config
    redis: aioredis.Redis
    sio: FanoutServer
    fanout: Fanout
    hub: Hub
    inventory: Inventory
    idempotency: IdempotencyStore
    timers: Scheduler
    polls: Polls
    tallies: TallyPublisher
    sales: Sales
    stockwatch: StockWatch
    chat: ChatEvents
    media: MediaService
    media_edge: InternalListener | None  # the cascade listener, when HAWKER_MEDIA_EDGE_LISTEN is set
    checkout: CheckoutPart
    privacy: Privacy
    auctions: AuctionPart
    giveaways: Giveaways
    analytics: AnalyticsFeed
    replay: Replay
    compactor: Compactor | None  # None when HAWKER_SALE_COMPACT_AFTER_S is 0

    def steps(self) -> list[Step]:
        """(name, start, stop) of every background part, in start order."""
        steps: list[Step] = [("fanout", self.fanout.start, self.fanout.stop), ("hub", self.hub.start, self.hub.stop),
                 ("chat", self.chat.start, self.chat.stop), ("timers", self.timers.start, self.timers.stop),
                 ("stockwatch", self.stockwatch.start, self.stockwatch.stop),
                 ("tallies", self.tallies.start, self.tallies.stop),
                 ("media-edge", self._start_edge, _nothing),  # stopped with the media (close_media)
                 ("checkout", self.checkout.start, self.checkout.stop),
                 ("privacy", self.privacy.start, self.privacy.stop)]
        if self.compactor is not None:
            steps.append(("compactor", self.compactor.start, self.compactor.stop))
        steps.append(("analytics", self.analytics.start, self.analytics.stop))
        return steps

    async def start(self) -> None:
        for _name, start, _stop in self.steps():
            await start()

    async def stop(self) -> None:
        """Reverse order, each step bounded: shutdown must finish even if Redis hangs."""
        for name, _start, stop in reversed(self.steps()):
            try:
                await asyncio.wait_for(stop(), 5)
            except (TimeoutError, Exception):  # noqa: BLE001 - one stuck part must not keep the others running
                log.warning("stop step %s did not finish cleanly", name)

    async def _start_edge(self) -> None:
        """The internal listener for edge pulls (cascade); its URL goes into the publish claim."""
        if self.media_edge is not None:
            self.media.edge_url = self.media.claims.url = await self.media_edge.start()

    async def close_media(self) -> None:
        """On shutdown, before the cleanup: end every publish (finalizing replays) and viewer."""
        await self.media.close()
        if self.media_edge is not None:
            await self.media_edge.stop()


async def _nothing() -> None:
    return None


def build(config: Config, redis: aioredis.Redis, sio: FanoutServer) -> Node:
    """Every part, in dependency order; nothing here touches the network."""
    node_id = uuid.uuid4().hex[:12]
    fanout = Fanout(sio, redis, node_id=node_id, tick_ms=config.tick_ms, max_writes_per_s=config.fanout_max_writes_per_s,
                    slice_size=config.fanout_slice_sockets or 1_000_000_000)
    hub = Hub(sio=sio, redis=redis, fanout=fanout, secret=config.secret,
              registry=Registry(max_bytes=min(16 * 1024, config.max_message_bytes),
                                timeout_s=config.command_deadline_ms / 1000,
                                join_deadline_s=config.join_deadline_ms / 1000,
                                snapshot_cache_s=config.snapshot_cache_ms / 1000),
              node_id=node_id, max_joining=config.join_max_inflight)
    fanout.clock = hub.clock.now_ms  # tick `ts` on the server clock the clients sync to (Redis TIME)
    inventory = Inventory(redis)
    idempotency = IdempotencyStore(redis)
    timers = Scheduler(redis, hub.clock)
    polls = Polls(hub, timers)
    sales = Sales(hub, inventory, timers)
    stockwatch = StockWatch(redis, inventory, sales, node_id=node_id, period_ms=config.tick_ms)
    media, media_edge = media_part.build(config, redis)
    checkout = CheckoutPart(config, redis, hub, sales, idempotency)
    analytics = AnalyticsFeed(config, redis, hub, sales)
    stockwatch.listeners += [checkout.on_stock_event, analytics.on_stock_event]  # webhooks, then counts
    return Node(
        config=config, redis=redis, sio=sio, fanout=fanout, hub=hub, inventory=inventory,
        idempotency=idempotency, timers=timers, polls=polls,
        tallies=TallyPublisher(polls, node_id=node_id, period_ms=config.tick_ms),
        sales=sales,
        stockwatch=stockwatch,
        chat=ChatEvents.of(config, hub, sales),
        media=media, media_edge=media_edge, checkout=checkout,
        privacy=Privacy(config, redis, inventory, checkout),
        auctions=AuctionPart.of(config, hub, inventory, timers),
        giveaways=Giveaways(hub),
        analytics=analytics,
        replay=Replay(config, redis, hub, media),
        compactor=Compactor(inventory, config.sale_compact_after_s) if config.sale_compact_after_s > 0 else None,
    )


def node_of(app: web.Application) -> Node:
    """The app's Node, typed (for handlers: `node_of(request.app)`)."""
    node: Node = app[NODE]
    return node
