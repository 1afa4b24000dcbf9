"""Flash-sale commands and lifecycle: schedule / cancel (host), reserve / release / extend /
waitlist (everyone, acked with the inventory's answer), and the once-only announcements
`sale.open` (timer at opens_at), `sale.soldout` and `sale.closed`."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from domain import Code, DomainError
from domain import validate as v
from inventory import Inventory, InventoryError, LotSpec, Refusal, Reservation, ReserveResult, StockLevels
from live.hub import metrics
from live.hub.hub import Hub
from live.hub.registry import EVERYONE, HOST, Caller
from live.hub.scheduler import NOT_YET, Scheduler
from shop.sales import Sale, SaleStore, new_sale_id, selling_now

if TYPE_CHECKING:
    from live.node import Node

log = logging.getLogger("hawker.hub.sales")

MAX_UNITS = 1_000_000
MAX_HOLD_S = 3600
MAX_AHEAD_MS = 30 * 24 * 3600 * 1000


def levels_dict(levels: StockLevels | None) -> dict[str, int] | None:
    return asdict(levels) if levels is not None else None


def reservation_dict(r: Reservation | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {"id": r.id, "sale_id": r.lot_id, "user": r.user, "qty": r.qty, "state": r.state.value,
            "expires_at": r.expires_at_ms, "order_id": r.order_id, "created_at": r.created_at_ms,
            "extended": r.extended, "from_waitlist": r.from_waitlist}


def level_key(sale_id: str) -> str:
    return f"stock:{sale_id}"


class Sales:
    """The sales part of one node; `register` wires it into the hub."""

    def __init__(self, hub: Hub, inventory: Inventory, scheduler: Scheduler) -> None:
        self.hub = hub
        self.inv = inventory
        self.store = SaleStore(hub.redis)
        self.timers = scheduler
        self._soldout_claimed: dict[str, None] = {}  # sales whose sale.soldout is claimed (insertion-ordered)

    # ---- announcements (each claimed once across nodes) ----------------------------------------

    async def publish_levels(self, sale_id: str, broadcast: str, levels: StockLevels | None, *,
                             version: int | None = None) -> None:
        """With a version (from the stock watcher, the one publisher per sale): the coalesced level
        `stock:<sale_id>`. Always: the first time a sale has nothing left, `sale.soldout` (once)."""
        if levels is None:
            return
        if version is not None:
            self.hub.fanout.level(broadcast, level_key(sale_id), {"sale_id": sale_id, **asdict(levels), "v": version})
        if levels.available == 0 and levels.total > 0:
            await self.announce_soldout(sale_id, broadcast, levels)

    async def announce_soldout(self, sale_id: str, broadcast: str, levels: StockLevels) -> None:
        """`sale.soldout`, claimed once across nodes. A node that saw the claim made (by itself or
        another node) never asks Redis again: refused buyers cost no extra round trip."""
        if sale_id in self._soldout_claimed:
            return
        code, at = await self.store.claim_soldout(sale_id)
        if code in ("OK", "LOST", "GONE"):
            self._remember_soldout(sale_id)
        if code == "OK":
            metrics.HUB_SALE_EVENTS.labels("sale.soldout").inc()
            self.hub.fanout.urgent(broadcast, "sale.soldout",
                                   {"sale_id": sale_id, "at": at, "levels": levels_dict(levels)})

    def _remember_soldout(self, sale_id: str) -> None:
        if len(self._soldout_claimed) >= 10_000:  # bounded: forget the oldest half
            for old in list(self._soldout_claimed)[:5_000]:
                self._soldout_claimed.pop(old, None)
        self._soldout_claimed[sale_id] = None

    async def on_open_timer(self, args: list[str]) -> object:
        sale_id = args[0]
        code, at = await self.store.claim_open(sale_id)
        if code == "NOT_YET":
            return NOT_YET
        if code != "OK":
            return code
        sale = await self.store.get(sale_id)
        if sale is None:
            return "GONE"
        levels = await self.inv.snapshot(sale_id)
        metrics.HUB_SALE_EVENTS.labels("sale.open").inc()
        self.hub.fanout.urgent(sale.broadcast, "sale.open",
                               {"sale_id": sale_id, "opens_at": sale.opens_at, "at": at, "levels": levels_dict(levels)})
        return code

    async def close(self, sale_id: str, reason: str, *, only_if_due: bool = False) -> tuple[str, int | None]:
        code, at = await self.store.claim_close(sale_id, reason, only_if_due=only_if_due)
        if code != "OK":
            return code, at
        sale = await self.store.get(sale_id)
        if sale is None:
            return "GONE", None
        await self.timers.cancel("sale.open", sale_id)
        await self.timers.cancel("sale.close", sale_id)
        levels = await self.inv.snapshot(sale_id)
        metrics.HUB_SALE_EVENTS.labels("sale.closed").inc()
        self.hub.fanout.urgent(sale.broadcast, "sale.closed",
                               {"sale_id": sale_id, "reason": reason, "at": at, "levels": levels_dict(levels)})
        return code, at

    async def on_close_timer(self, args: list[str]) -> object:
        code, _ = await self.close(args[0], "ended", only_if_due=True)
        return NOT_YET if code == "NOT_YET" else code

    async def end_broadcast(self, broadcast: str) -> None:
        for sale in await self.store.of_broadcast(broadcast, limit=1000):
            if sale.state != "closed" and not sale.replay:  # a replay sale stays open for the replay
                try:
                    await self.inv.close(sale.id)
                except InventoryError as exc:
                    log.info("closing lot %s at broadcast end: %s", sale.id, exc.code)
                await self.close(sale.id, "broadcast_ended")

    # ---- snapshot --------------------------------------------------------------------------------

    async def snapshot_part(self, caller: Caller) -> list[dict[str, Any]]:
        # the sale records: one read for a burst of joins (Registry.shared); levels and holds: fresh
        sales = await self.hub.shared(("sales", caller.broadcast), lambda: self.store.of_broadcast(caller.broadcast))
        # concurrent calls: the inventory pipelines them into one round trip
        levels = await asyncio.gather(*(self.inv.snapshot(s.id) for s in sales))
        holds = await asyncio.gather(*(self.inv.holds_of(s.id, caller.user) for s in sales))
        return [{**s.to_dict(), "levels": levels_dict(lv), "my_holds": [reservation_dict(h) for h in hs]}
                for s, lv, hs in zip(sales, levels, holds)]

    # ---- helpers -------------------------------------------------------------------------------

    async def sale_of(self, caller: Caller, payload: dict) -> str:
        """The payload's sale id, which must be a sale of the caller's broadcast."""
        sale_id = v.ident(payload, "sale_id")
        assert sale_id is not None
        if await self.store.broadcast_of(sale_id) != caller.broadcast:
            raise DomainError(Code.SALE_NOT_FOUND, f"no sale {sale_id!r} in this broadcast")
        return sale_id

    async def answer(self, caller: Caller, sale_id: str, res: ReserveResult) -> dict[str, Any]:
        """The ack for an inventory answer. Only a change that emptied the stock (this call took the
        last unit) claims `sale.soldout`; a refusal makes no further Redis call."""
        if res.ok and res.levels is not None:
            await self.publish_levels(sale_id, caller.broadcast, res.levels)
        return self.ack(res)

    @staticmethod
    def ack(res: ReserveResult) -> dict[str, Any]:
        """The ack of an inventory answer, or its refusal raised as a DomainError."""
        if not res.ok:
            code = Code(res.code.value) if res.code else Code.INTERNAL  # a refusal always names its code
            details: dict[str, Any] = {"levels": levels_dict(res.levels)}
            if res.reservation is not None:
                details["reservation"] = reservation_dict(res.reservation)
            raise DomainError(code, res.message, **details)
        return {"reservation": reservation_dict(res.reservation), "levels": levels_dict(res.levels)}

    # ---- commands ------------------------------------------------------------------------------

    async def schedule(self, caller: Caller, payload: dict) -> dict[str, Any]:
        now = self.hub.clock.now_ms()
        v.only(payload, {"product_id", "units", "price", "currency", "limit", "hold_s", "opens_at",
                         "duration_s", "request_id", "replay"})
        replay = payload.get("replay")
        replay = False if replay is None else replay  # null is "not given", like the other fields
        if not isinstance(replay, bool):
            raise v.Invalid("replay", "replay must be true or false")
        product_id = v.ident(payload, "product_id")
        units = v.integer(payload, "units", lo=1, hi=MAX_UNITS)
        price = v.integer(payload, "price", required=False)
        currency = v.currency(payload, required=False)
        limit = v.integer(payload, "limit", required=False, lo=1, hi=1000, default=1)
        hold_s = v.integer(payload, "hold_s", required=False, lo=10, hi=MAX_HOLD_S, default=120)
        opens_at = v.integer(payload, "opens_at", required=False, lo=0, hi=now + MAX_AHEAD_MS, default=now)
        duration_s = v.integer(payload, "duration_s", required=False, lo=1, hi=7 * 24 * 3600)
        request_id = v.ident(payload, "request_id", required=False)
        bc = await self.hub.broadcasts.require(caller.broadcast)
        if bc.state == "ended":
            raise DomainError(Code.BAD_STATE, "the broadcast has ended", state="ended")
        product = bc.product(product_id)
        if product is None:
            raise DomainError(Code.PRODUCT_NOT_FOUND, f"no product {product_id!r}", field="product_id")
        opens_at = max(opens_at, now)
        closes_at = opens_at + duration_s * 1000 if duration_s else None
        sale = Sale(id=new_sale_id(caller.broadcast, caller.user, request_id), broadcast=caller.broadcast,
                    product_id=product.id, title=product.title, image_url=product.image_url,
                    price=product.price if price is None else price, currency=currency or product.currency,
                    units=units, limit=limit, hold_s=hold_s, opens_at=opens_at, closes_at=closes_at,
                    state="scheduled", created_at=now, replay=replay)
        existing = await self.store.get(sale.id)
        if existing is not None:  # a retried request: the first answer
            return {"sale": existing.to_dict(), "levels": levels_dict(await self.inv.snapshot(sale.id))}
        try:
            lot = await self.inv.create_lot(LotSpec(
                lot_id=sale.id, sku=product.id, total=units, unit_price=sale.price, currency=sale.currency,
                per_user_limit=limit, hold_s=hold_s, opens_at_ms=opens_at, closes_at_ms=closes_at))
            levels: StockLevels | None = lot.levels
        except InventoryError as exc:
            if exc.refusal != Refusal.LOT_EXISTS:
                raise DomainError(Code.VALIDATION if exc.refusal == Refusal.INVALID_REQUEST else exc.code, exc.message) from None
            levels = await self.inv.snapshot(sale.id)
        if not await self.store.create(sale):  # a concurrent retry won: answer with its sale
            existing = await self.store.get(sale.id)
            return {"sale": existing.to_dict() if existing else sale.to_dict(), "levels": levels_dict(levels)}
        metrics.HUB_SALE_EVENTS.labels("sale.scheduled").inc()
        self.hub.fanout.urgent(caller.broadcast, "sale.scheduled", {"sale": sale.to_dict(), "levels": levels_dict(levels)})
        await self.timers.add(opens_at, "sale.open", sale.id)
        if closes_at is not None:
            await self.timers.add(closes_at, "sale.close", sale.id)
        return {"sale": sale.to_dict(), "levels": levels_dict(levels)}

    async def cancel(self, caller: Caller, payload: dict) -> dict[str, Any]:
        """Cancel for good: the lot frees every hold (holders hear `hold.cancelled`), empties the
        waitlist (`waitlist.cancelled`) and refuses payments; an already closed sale is refused
        (SALE_CLOSED) before anything changes."""
        sale_id = await self.sale_of(caller, payload)
        sale = await self.store.get(sale_id)
        if sale is None or sale.state == "closed":
            raise DomainError(Code.SALE_CLOSED, "the sale is already closed")
        try:
            await self.inv.cancel(sale_id)
        except InventoryError as exc:
            log.info("cancel lot %s: %s", sale_id, exc.code)
        code, at = await self.close(sale_id, "cancelled")
        if code != "OK":
            raise DomainError(Code.SALE_CLOSED, "the sale is already closed")
        return {"sale_id": sale_id, "at": at}

    async def reserve(self, caller: Caller, payload: dict) -> dict[str, Any]:
        sale_id = await self.sale_of(caller, payload)
        qty = v.integer(payload, "qty", required=False, lo=1, hi=1000, default=1)
        request_id = v.ident(payload, "request_id")
        return self.ack(await self.hold(caller, sale_id, qty, request_id))

    async def hold(self, caller: Caller, sale_id: str, qty: int, request_id: str) -> ReserveResult:
        """The one reserve path (the Buy button and comment-to-buy): the inventory's answer, timed;
        a hold that emptied the stock announces it (see `answer`)."""
        start = time.perf_counter()
        code = "ERROR"
        try:
            res = await self.inv.reserve(sale_id, caller.user, qty, request_id=request_id)
            code = "OK" if res.ok else (res.code.value if res.code else "REFUSED")
            if res.ok and res.levels is not None:
                await self.publish_levels(sale_id, caller.broadcast, res.levels)
            return res
        finally:
            metrics.RESERVE_SECONDS.labels(code).observe(time.perf_counter() - start)
            opens_at = self.store.cached_opens_at(sale_id)
            now = self.hub.clock.now_ms()
            if opens_at is not None and 0 <= now - opens_at < 60_000:
                metrics.RESERVE_AFTER_OPEN_SECONDS.observe((now - opens_at) / 1000)

    async def open_sale(self, broadcast: str) -> Sale | None:
        """The broadcast's sale that is selling now (see shop.sales.selling_now)."""
        return selling_now(await self.store.of_broadcast(broadcast), self.hub.clock.now_ms())

    async def release(self, caller: Caller, payload: dict) -> dict[str, Any]:
        sale_id = await self.sale_of(caller, payload)
        reservation_id = v.text(payload, "reservation_id", max_len=64)
        return await self.answer(caller, sale_id, await self.inv.release(sale_id, reservation_id, caller.user))

    async def extend(self, caller: Caller, payload: dict) -> dict[str, Any]:
        sale_id = await self.sale_of(caller, payload)
        reservation_id = v.text(payload, "reservation_id", max_len=64)
        return await self.answer(caller, sale_id, await self.inv.extend(sale_id, reservation_id, caller.user))

    async def waitlist(self, caller: Caller, payload: dict) -> dict[str, Any]:
        sale_id = await self.sale_of(caller, payload)
        qty = v.integer(payload, "qty", required=False, lo=1, hi=1000, default=1)
        res = await self.inv.join_waitlist(sale_id, caller.user, qty)
        if not res.ok:
            code = Code(res.code.value) if res.code else Code.INTERNAL  # a refusal always names its code
            raise DomainError(code, res.message, levels=levels_dict(res.levels))
        return {"position": res.position, "levels": levels_dict(res.levels)}


def register(node: Node) -> None:
    hub, sales = node.hub, node.sales
    hub.command("sale.schedule", roles=HOST)(sales.schedule)
    hub.command("sale.cancel", roles=HOST)(sales.cancel)
    hub.command("sale.reserve", roles=EVERYONE)(sales.reserve)
    hub.command("sale.release", roles=EVERYONE)(sales.release)
    hub.command("sale.extend", roles=EVERYONE)(sales.extend)
    hub.command("sale.waitlist", roles=EVERYONE)(sales.waitlist)
    hub.snapshot_part("sales")(sales.snapshot_part)
    node.timers.handler("sale.open")(sales.on_open_timer)
    node.timers.handler("sale.close")(sales.on_close_timer)
    hub.on_broadcast_end(sales.end_broadcast)
