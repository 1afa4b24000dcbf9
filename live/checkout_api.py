"""Checkout over REST and Socket.IO, merchant webhooks, and the sale audit.

REST: POST /api/checkout (Idempotency-Key required), GET /api/orders, GET /api/orders/{id},
POST /api/orders/{id}/refund, webhooks CRUD and dead letters, GET /api/sales/{id}/audit.
Socket.IO: `checkout.pay`, acked with the order - the same Checkout.pay as the REST call."""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

from aiohttp import web

from checkout import Checkout, CheckoutError, Ledger, Order, PayRequest, Webhooks
from checkout.egress import EgressPolicy
from checkout.idempotency import IdempotencyStore, fingerprint, valid_key
from checkout.payments import load_provider
from domain import Code, DomainError
from domain.validate import check_id
from inventory import InventoryError
from live.auth import Claims, require
from live.errors import json_response, read_json
from live.hub.registry import EVERYONE, Caller
from live.idempotent import idempotent
from live.periodic import Periodic

log = logging.getLogger("hawker.checkout")


def _ident(body: dict[str, Any], name: str) -> str:
    return check_id(body.get(name), name)  # the one id rule (domain/validate.py)


def _pay_request(user: str, broadcast: str, body: Any) -> PayRequest:
    if not isinstance(body, dict):
        raise CheckoutError(Code.VALIDATION, "the body must be a JSON object", field="")
    extra = set(body) - {"sale_id", "reservation_id", "card", "contact", "shipping", "idempotency_key"}
    if extra:
        raise CheckoutError(Code.VALIDATION, f"unknown fields: {sorted(extra)}", field=sorted(extra)[0])
    return PayRequest(user=user, broadcast=broadcast, sale_id=_ident(body, "sale_id"),
                      reservation_id=_ident(body, "reservation_id"), card=body.get("card"), contact=body.get("contact"),
                      shipping=body.get("shipping"))


def _order_json(order: Order, claims: Claims | None = None) -> dict[str, Any]:
    """An order as the caller may see it: a moderator runs the show, not the shipping, so gets no
    buyer contact data (`contact` and `shipping` are null); the buyer and the host see them."""
    d = order.to_dict()
    if claims is not None and claims.role == "moderator" and order.user != claims.sub:
        d["contact"] = None
        d["shipping"] = None
    return d


class CheckoutApi:
    """The checkout part of one node: REST handlers, the socket command, the webhook worker."""

    recovery: Periodic  # set by register()

    def __init__(self, app: web.Application, services: Any) -> None:
        hub = services.hub
        self.hub = hub
        self.sales = hub.sales
        redis = services.redis
        cfg = services.config
        self.provider = load_provider(cfg.payment_provider, redis)
        self.livemode = bool(getattr(self.provider, "livemode", True))
        if not self.livemode and not cfg.demo:
            log.warning("payment provider %r is in test mode: test cards only, no money moves, every order "
                        "and webhook says livemode=false (HAWKER_PAYMENT_PROVIDER)", cfg.payment_provider)
        self.webhooks = Webhooks(redis, consumer=hub.node_id, max_attempts=cfg.webhook_max_attempts,
                                 base_delay_s=cfg.webhook_base_delay_s, livemode=self.livemode,
                                 policy=EgressPolicy.from_settings(cfg.webhook_allow_private, cfg.webhook_http_hosts))
        ledger = Ledger(redis, retention_s=cfg.order_retention_days * 86400 or None)  # HAWKER_ORDER_RETENTION_DAYS
        self.checkout = Checkout(redis, self.sales.inv, self.provider, ledger=ledger, webhooks=self.webhooks)
        self.idem = IdempotencyStore(redis)

    async def _broadcast_of(self, sale_id: str, claims: Claims) -> str:
        """The sale's broadcast, for a caller already authenticated: another broadcast's sale gets
        the same 404 as a made-up id, so a token cannot probe which sales exist."""
        bc = await self.sales.store.broadcast_of(sale_id)
        if bc is None or not claims.allows(bc):
            raise DomainError(Code.SALE_NOT_FOUND, "no such sale")
        return bc

    async def on_stock_event(self, broadcast: str, ev: Any) -> None:
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

    async def snapshot_part(self, caller: Caller) -> dict[str, Any]:
        """What the player needs to know before paying: whether payments are real (livemode)."""
        return {"livemode": self.livemode, "provider": getattr(self.provider, "name", "")}

    async def recover_round(self) -> None:
        """Finish payments a crashed node left half-way (once they are older than the grace)."""
        await self.checkout.recover(older_than_ms=self.sales.inv.payment_grace_s * 1000)

    # ---- paying --------------------------------------------------------------------------------

    async def pay(self, claims: Claims, body: Any) -> Order:
        req = _pay_request(claims.sub, "", body)
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
        return bool(product is not None and getattr(product, "ships", False))

    async def rest_pay(self, request: web.Request) -> web.Response:
        claims = require(request)

        async def make() -> web.Response:
            body = await read_json(request)
            order = await self.pay(claims, body)  # CheckoutError: refused with its code (and order)
            return json_response({"order": _order_json(order)}, status=201)

        return await idempotent(request, claims.sub, make, required=True)

    async def socket_pay(self, caller: Caller, payload: dict) -> dict:
        """The same payment as POST /api/checkout; `idempotency_key` in the payload plays the header's
        part (same key + same payload -> the first ack; another payload -> IDEMPOTENCY_MISMATCH)."""
        claims = Claims(sub=caller.user, role=caller.role, broadcast=caller.broadcast, name=caller.name, exp=caller.exp)
        key = payload.get("idempotency_key")
        if key is not None and not (isinstance(key, str) and valid_key(key)):
            raise DomainError(Code.VALIDATION, "idempotency_key must be 1 to 255 printable characters", field="idempotency_key")
        if key is None:
            return await self._socket_pay(claims, payload)
        scope, skey = caller.user, "socket:checkout.pay:" + key
        claim = await self.idem.claim(scope, skey, fingerprint("checkout.pay", payload))
        if claim.state == "DONE":
            if claim.body.get("ok") is False:  # the first answer was a refusal: the same one again
                first = dict(claim.body["error"])
                raise DomainError(Code(first.pop("code")), first.pop("message", ""), **first)
            return {**claim.body, "replayed": True}
        if claim.state == "MISMATCH":
            raise DomainError(Code.IDEMPOTENCY_MISMATCH, "this idempotency_key was used with a different payload")
        if claim.state == "RUNNING":
            raise DomainError(Code.IDEMPOTENCY_IN_PROGRESS, "a payment with this idempotency_key is still running", retry_after=1000)
        try:
            ack = await self._socket_pay(claims, payload)
        except DomainError as exc:
            if exc.code == Code.PAYMENT_TIMEOUT:  # nothing decided: a retry with the key runs again
                await self.idem.release(scope, skey)
            else:
                await self.idem.finish(scope, skey, 0, {"ok": False, "error": exc.body()})
            raise
        except BaseException:
            await self.idem.release(scope, skey)
            raise
        await self.idem.finish(scope, skey, 0, ack)
        return ack

    async def _socket_pay(self, claims: Claims, payload: dict) -> dict:
        order = await self.pay(claims, payload)  # CheckoutError: refused with its code (and order)
        return {"order": _order_json(order)}

    # ---- orders --------------------------------------------------------------------------------

    async def list_orders(self, request: web.Request) -> web.Response:
        """Staff: the orders of their broadcast; a viewer: their own orders of their token's
        broadcast only (a token is for one broadcast; `*` viewer tokens see all of their own)."""
        claims = require(request)
        broadcast = request.query.get("broadcast") or (None if claims.broadcast == "*" else claims.broadcast)
        try:
            limit = max(1, min(500, int(request.query.get("limit", "100"))))
        except ValueError:
            raise DomainError(Code.VALIDATION, "limit must be an integer", field="limit") from None
        if broadcast is not None and not claims.allows(broadcast):
            raise DomainError(Code.FORBIDDEN, "the token is for another broadcast")
        if claims.role in ("host", "moderator"):
            if broadcast is None:
                raise DomainError(Code.VALIDATION, "broadcast is required", field="broadcast")
            orders = await self.checkout.ledger.of_broadcast(broadcast, limit)
        else:
            orders = await self.checkout.ledger.of_user(claims.sub, limit)
            if broadcast:
                orders = [o for o in orders if o.broadcast == broadcast]
        paid = [o for o in orders if o.state.value == "PAID"]
        revenue: dict[str, int] = {}
        for o in paid:
            revenue[o.currency] = revenue.get(o.currency, 0) + o.total
        return json_response({"orders": [_order_json(o, claims) for o in orders], "count": len(orders),
                              "paid": len(paid), "revenue": revenue})

    async def _visible_order(self, request: web.Request) -> tuple[Claims, Order]:
        """The order if the token may see it: every token is for one broadcast (or `*`), and an
        order of another broadcast answers exactly as a missing one (404), whoever bought it."""
        claims = require(request)
        order = await self.checkout.ledger.get(check_id(request.match_info["order"], "order"))
        if order is None or not claims.allows(order.broadcast):
            raise DomainError(Code.ORDER_NOT_FOUND, "no such order")
        if claims.role not in ("host", "moderator") and order.user != claims.sub:
            raise DomainError(Code.ORDER_NOT_FOUND, "no such order")
        return claims, order

    async def get_order(self, request: web.Request) -> web.Response:
        claims, order = await self._visible_order(request)
        return json_response({"order": _order_json(order, claims)})

    async def refund_order(self, request: web.Request) -> web.Response:
        claims, order = await self._visible_order(request)
        if claims.role != "host":
            raise DomainError(Code.FORBIDDEN, "only the host may refund")

        async def make() -> web.Response:
            refunded = await self.checkout.refund(order.id)  # CheckoutError: refused with its code (and order)
            return json_response({"order": _order_json(refunded)})

        return await idempotent(request, claims.sub, make)

    # ---- webhooks ------------------------------------------------------------------------------

    def _host_broadcast(self, request: web.Request, body: dict[str, Any] | None = None) -> tuple[Claims, str]:
        claims = require(request, roles=("host",))
        bc = (body or {}).get("broadcast") or request.query.get("broadcast")
        if bc is None:
            if claims.broadcast == "*":
                raise DomainError(Code.VALIDATION, "broadcast is required", field="broadcast")
            bc = claims.broadcast
        if not isinstance(bc, str) or not claims.allows(bc):
            raise DomainError(Code.FORBIDDEN, "the token is for another broadcast")
        return claims, bc

    async def add_webhook(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise DomainError(Code.VALIDATION, "the body must be a JSON object", field="")
        claims, bc = self._host_broadcast(request, body)

        async def make() -> web.Response:
            ep = await self.webhooks.register(bc, body.get("url"), body.get("secret"), body.get("events"))
            return json_response({"webhook": ep.public()}, status=201)

        return await idempotent(request, claims.sub, make)

    async def list_webhooks(self, request: web.Request) -> web.Response:
        _, bc = self._host_broadcast(request)
        return json_response({"webhooks": [e.public() for e in await self.webhooks.endpoints(bc)]})

    async def delete_webhook(self, request: web.Request) -> web.Response:
        _, bc = self._host_broadcast(request)
        if not await self.webhooks.delete(bc, check_id(request.match_info["webhook"], "webhook")):
            raise DomainError(Code.WEBHOOK_NOT_FOUND, "no such webhook")
        return json_response({"deleted": True})

    async def dead_letters(self, request: web.Request) -> web.Response:
        _, bc = self._host_broadcast(request)
        return json_response({"dead_letters": await self.webhooks.dead_letters(bc)})

    async def redeliver(self, request: web.Request) -> web.Response:
        _, bc = self._host_broadcast(request)
        if not await self.webhooks.redeliver(bc, check_id(request.match_info["delivery"], "delivery")):
            raise DomainError(Code.DELIVERY_NOT_FOUND, "no such dead letter")
        return json_response({"requeued": True}, status=202)

    # ---- audit ---------------------------------------------------------------------------------

    async def audit(self, request: web.Request) -> web.Response:
        claims = require(request, roles=("host",))  # auth before lookup: a stranger learns nothing
        sale_id = check_id(request.match_info["sale"], "sale")
        await self._broadcast_of(sale_id, claims)
        inv = self.sales.inv
        lot = await inv.get_lot(sale_id)
        if lot is None:
            raise DomainError(Code.SALE_NOT_FOUND, "no such sale")
        try:
            report = await inv.audit(sale_id)
        except InventoryError as exc:
            raise DomainError(Code.SALE_NOT_FOUND, exc.message) from None
        reservations = await inv.reservations(sale_id)
        orders = await self.checkout.ledger.of_lot(sale_id)
        return json_response({
            "server_time": await inv.server_time_ms(),
            "livemode": self.livemode,
            "lot": {"id": lot.lot_id, "total": lot.total, "per_user_limit": lot.per_user_limit, "unit_price": lot.unit_price,
                    "currency": lot.currency, "state": lot.state.value},
            "levels": dataclasses.asdict(report.levels),
            "reservations": [{"id": r.id, "user": r.user, "qty": r.qty, "state": r.state.value, "order_id": r.order_id,
                              "expires_at": r.expires_at_ms} for r in reservations],
            "orders": [{"id": o.id, "reservation_id": o.reservation_id, "user": o.user, "qty": o.qty,
                        "state": o.state.value, "total": o.total, "currency": o.currency,
                        "livemode": o.livemode} for o in orders],
            "inventory_audit": {"ok": report.ok, "problems": report.problems},
        })


def register(app: web.Application, services: Any) -> CheckoutApi:
    api = CheckoutApi(app, services)
    r = app.router
    r.add_post("/api/checkout", api.rest_pay)
    r.add_get("/api/orders", api.list_orders)
    r.add_get("/api/orders/{order}", api.get_order)
    r.add_post("/api/orders/{order}/refund", api.refund_order)
    r.add_post("/api/webhooks", api.add_webhook)
    r.add_get("/api/webhooks", api.list_webhooks)
    r.add_delete("/api/webhooks/{webhook}", api.delete_webhook)
    r.add_get("/api/webhooks/dead-letters", api.dead_letters)
    r.add_post("/api/webhooks/dead-letters/{delivery}/redeliver", api.redeliver)
    r.add_get("/api/sales/{sale}/audit", api.audit)
    services.hub.command("checkout.pay", roles=EVERYONE, cost=3)(api.socket_pay)
    services.hub.snapshot_part("checkout")(api.snapshot_part)
    services.parts["checkout"] = api

    services.hub.stockwatch.listeners.append(api.on_stock_event)
    api.recovery = Periodic(api.recover_round, 10.0, name="checkout-recovery", log=log, first_delay=True)

    async def _start(_app: web.Application) -> None:
        await api.webhooks.start()
        api.recovery.start()

    async def _stop(_app: web.Application) -> None:
        await api.recovery.stop()
        await api.webhooks.stop()

    app.on_startup.append(_start)
    app.on_cleanup.insert(0, _stop)
    from live import privacy_api

    privacy_api.register(app, services, api)
    return api
