"""Checkout over REST: POST /api/checkout (Idempotency-Key required), GET /api/orders,
GET /api/orders/{id}, POST /api/orders/{id}/refund, webhooks CRUD and dead letters,
GET /api/sales/{id}/audit. The socket's `checkout.pay` is live/sockets/checkout.py; both pay
through `CheckoutPart.pay` (live/checkout_part.py)."""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from aiohttp import web

from checkout import Order
from domain import Code, DomainError
from domain.validate import check_id
from inventory import InventoryError
from live.auth import Claims, require
from live.checkout_part import CheckoutPart, order_json
from live.errors import json_response, read_json
from live.idempotent import idempotent

if TYPE_CHECKING:
    from live.node import Node


class CheckoutApi:
    """The REST handlers of the checkout part."""

    def __init__(self, part: CheckoutPart) -> None:
        self.part = part
        self.checkout = part.checkout
        self.webhooks = part.webhooks
        self.sales = part.sales

    async def _broadcast_of(self, sale_id: str, claims: Claims) -> str:
        """The sale's broadcast, for a caller already authenticated: another broadcast's sale gets
        the same 404 as a made-up id, so a token cannot probe which sales exist."""
        bc = await self.sales.store.broadcast_of(sale_id)
        if bc is None or not claims.allows(bc):
            raise DomainError(Code.SALE_NOT_FOUND, "no such sale")
        return bc

    # ---- paying --------------------------------------------------------------------------------

    async def rest_pay(self, request: web.Request) -> web.Response:
        claims = require(request)

        async def make() -> web.Response:
            body = await read_json(request)
            order = await self.part.pay(claims, body)  # CheckoutError: refused with its code (and order)
            return json_response({"order": order_json(order)}, status=201)

        return await idempotent(request, claims.sub, make, required=True)

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
        return json_response({"orders": [order_json(o, claims) for o in orders], "count": len(orders),
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
        return json_response({"order": order_json(order, claims)})

    async def refund_order(self, request: web.Request) -> web.Response:
        claims, order = await self._visible_order(request)
        if claims.role != "host":
            raise DomainError(Code.FORBIDDEN, "only the host may refund")

        async def make() -> web.Response:
            refunded = await self.checkout.refund(order.id)  # CheckoutError: refused with its code (and order)
            return json_response({"order": order_json(refunded)})

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
            ep = await self.webhooks.register(bc, body.get("url"), body.get("secret"), body.get("events"))  # WebhookError: refused as it is
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
            "livemode": self.part.livemode,
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



def register(app: web.Application, node: Node) -> None:
    api = CheckoutApi(node.checkout)
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
