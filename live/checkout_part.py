"""The checkout part of one node: the payment provider, the order ledger, merchant webhooks and
crash recovery, shared by the REST calls (live/rest/checkout.py) and the socket's `checkout.pay`
(live/sockets/checkout.py), so both pay through the one `CheckoutPart.pay`."""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

import redis.asyncio as aioredis

from checkout import Checkout, CheckoutError, Ledger, Order, PayRequest, Webhooks
from checkout.egress import EgressPolicy
from checkout.idempotency import IdempotencyStore
from checkout.payments import load_provider
from domain import Code
from domain.validate import check_id
from inventory import StockEvent
from live.auth import Claims
from live.config import Config
from live.hub.hub import Hub
from live.periodic import Periodic
from live.sockets.sales import Sales

log = logging.getLogger("hawker.checkout")

def _ident(body: dict[str, Any], name: str) -> str:
    return check_id(body.get(name), name)  # the one id rule (domain/validate.py)


def pay_request(user: str, broadcast: str, body: Any) -> PayRequest:
    if not isinstance(body, dict):
        raise CheckoutError(Code.VALIDATION, "the body must be a JSON object", field="")
    extra = set(body) - {"sale_id", "reservation_id", "card", "contact", "shipping", "idempotency_key"}
    if extra:
        raise CheckoutError(Code.VALIDATION, f"unknown fields: {sorted(extra)}", field=sorted(extra)[0])
    return PayRequest(user=user, broadcast=broadcast, sale_id=_ident(body, "sale_id"),
                      reservation_id=_ident(body, "reservation_id"), card=body.get("card"), contact=body.get("contact"),
                      shipping=body.get("shipping"))


def order_json(order: Order, claims: Claims | None = None) -> dict[str, Any]:
    """An order as the caller may see it: a moderator runs the show, not the shipping, so gets no
    buyer contact data (`contact` and `shipping` are null); the buyer and the host see them."""
    d = order.to_dict()
    if claims is not None and claims.role == "moderator" and order.user != claims.sub:
        d["contact"] = None
        d["shipping"] = None
    return d


class CheckoutPart:
    """Payments, orders and webhooks of one node (no transport: the handlers adapt it)."""

    def __init__(self, config: Config, redis: aioredis.Redis, hub: Hub, sales: Sales, idem: IdempotencyStore) -> None:
        self.hub = hub
        self.sales = sales
        cfg = config
        self.provider = load_provider(cfg.payment_provider, redis)
        self.livemode = bool(getattr(self.provider, "livemode", True))  # providers without the flag move real money
        if not self.livemode and not cfg.demo:
            log.warning("payment provider %r is in test mode: test cards only, no money moves, every order "
                        "and webhook says livemode=false (HAWKER_PAYMENT_PROVIDER)", cfg.payment_provider)
        self.webhooks = Webhooks(redis, consumer=hub.node_id, max_attempts=cfg.webhook_max_attempts,
                                 base_delay_s=cfg.webhook_base_delay_s, livemode=self.livemode,
                                 policy=EgressPolicy.from_settings(cfg.webhook_allow_private, cfg.webhook_http_hosts))
        ledger = Ledger(redis, retention_s=cfg.order_retention_days * 86400 or None)  # HAWKER_ORDER_RETENTION_DAYS
        self.checkout = Checkout(redis, sales.inv, self.provider, ledger=ledger, webhooks=self.webhooks)
        self.idem = idem
        self.recovery = Periodic(self.recover_round, 10.0, name="checkout-recovery", log=log, first_delay=True)

    async def start(self) -> None:
        await self.webhooks.start()
        self.recovery.start()

    async def stop(self) -> None:
        await self.recovery.stop()
        await self.webhooks.stop()

    async def on_stock_event(self, broadcast: str, ev: StockEvent) -> None:
        """Stock events become merchant webhooks; event ids make each one go out once."""
        if ev.type == "expired":
            rid = ev.data.get("reservation", "")
            await self.webhooks.emit("reservation.expired", broadcast, {
                "sale_id": ev.lot_id, "reservation_id": rid, "user": ev.data.get("user"),
                "qty": int(ev.data.get("qty", 0)), "at": ev.at_ms}, event_id=f"reservation.expired:{ev.lot_id}:{rid}")
        if ev.levels.available == 0 and ev.levels.total > 0 and await self._selling(ev.lot_id):
            # the first time nothing is left: once; never for a cancelled sale (read late by the watcher)
            await self.webhooks.emit("sale.soldout", broadcast, {
                "sale_id": ev.lot_id, "at": ev.at_ms, "levels": dataclasses.asdict(ev.levels)},
                event_id=f"sale.soldout:{ev.lot_id}")

    async def _selling(self, sale_id: str) -> bool:
        lot = await self.sales.inv.get_lot(sale_id)
        return lot is not None and lot.state.value != "CANCELLED"

    async def recover_round(self) -> None:
        """Finish payments a crashed node left half-way (once they are older than the grace)."""
        await self.checkout.recover(older_than_ms=self.sales.inv.payment_grace_s * 1000)

    async def pay(self, claims: Claims, body: Any) -> Order:
        req = pay_request(claims.sub, "", body)
        broadcast = await self.sales.store.broadcast_of(req.sale_id)
        if broadcast is None or not claims.allows(broadcast):
            raise CheckoutError(Code.SALE_NOT_FOUND, "no such sale in this broadcast")
        return await self.checkout.pay(dataclasses.replace(req, broadcast=broadcast,
                                                           requires_shipping=await self._ships(req.sale_id, broadcast)))

    async def _ships(self, sale_id: str, broadcast: str) -> bool:
        """Whether the sale's product ships (then checkout requires a shipping address and phone)."""
        sale = await self.sales.store.get(sale_id)
        if sale is None:
            return False
        bc = await self.hub.broadcasts.get(broadcast)
        product = bc.product(sale.product_id) if bc is not None else None
        return bool(product is not None and product.ships)
