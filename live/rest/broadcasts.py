"""REST for hosts: create / update / list broadcasts, add / edit products (Bearer JWT).

A host token for broadcast X manages X only; a `*` host token manages every broadcast.
Mutating calls honour `Idempotency-Key` through live.idempotent, as checkout does: a retry within a
day gets the first answer, the same key on another request is refused."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from domain import Code, DomainError
from domain import validate as v
from live.auth import ADMIN_BROADCAST, Claims, require
from live.errors import json_response, read_json
from live.idempotent import idempotent
from live.node import Node, node_of
from shop.broadcasts import BroadcastStore, parse_product

MAX_PRODUCTS = 200


def _store(request: web.Request) -> BroadcastStore:
    return node_of(request.app).hub.broadcasts


def _scheduled_start(body: dict[str, Any]) -> int | None:
    return v.integer(body, "scheduled_start", required=False, lo=0, hi=v.MAX_TS)


async def _object(request: web.Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise DomainError(Code.VALIDATION, "the body must be a JSON object", field="")
    return body


def _host_of(request: web.Request) -> tuple[str, Claims]:
    """The broadcast of the path and the host's claims for it: auth first (a stranger learns
    nothing), then the one id rule."""
    bid = request.match_info["broadcast"]
    claims = require(request, roles=("host",), broadcast=bid)
    return v.check_id(bid, "broadcast"), claims


async def create_broadcast(request: web.Request) -> web.Response:
    claims = require(request, roles=("host",))

    async def make() -> web.Response:
        body = await _object(request)
        v.only(body, {"id", "title", "scheduled_start", "products"})
        default_id = None if claims.broadcast == ADMIN_BROADCAST else claims.broadcast
        bid = v.ident(body, "id") if default_id is None else v.ident(body, "id", required=False, default=default_id)
        if not claims.allows(bid):
            raise DomainError(Code.FORBIDDEN, "the token is for another broadcast")
        title = v.text(body, "title")
        start = _scheduled_start(body)
        raw_products = body.get("products") or []
        if not isinstance(raw_products, list) or len(raw_products) > MAX_PRODUCTS:
            raise v.Invalid("products", f"products must be a list of at most {MAX_PRODUCTS}")
        products = []
        for i, p in enumerate(raw_products):
            if not isinstance(p, dict):
                raise v.Invalid(f"products[{i}]", "each product must be an object")
            try:
                products.append(parse_product(p))
            except v.Invalid as exc:
                raise v.Invalid(f"products[{i}].{exc.field}", exc.message) from None
        if len({p.id for p in products}) != len(products):
            raise v.Invalid("products", "product ids must be unique")
        bc = await _store(request).create(bid, title=title, host=claims.sub, scheduled_start=start,
                                          products=products)
        return json_response(bc.to_dict(), status=201)

    return await idempotent(request, claims.sub, make)


async def list_broadcasts(request: web.Request) -> web.Response:
    claims = require(request, roles=("host", "moderator"))
    try:
        limit = max(1, min(100, int(request.query.get("limit", "100"))))
    except ValueError:
        raise DomainError(Code.VALIDATION, "limit must be an integer", field="limit") from None
    ids = None if claims.broadcast == ADMIN_BROADCAST else [claims.broadcast]
    items = await _store(request).list(limit=limit, ids=ids)
    return json_response({"broadcasts": [b.to_dict() for b in items]})


async def get_broadcast(request: web.Request) -> web.Response:
    bid = request.match_info["broadcast"]
    require(request, broadcast=bid)
    bc = await _store(request).require(v.check_id(bid, "broadcast"))
    return json_response(bc.to_dict())


async def update_broadcast(request: web.Request) -> web.Response:
    bid, claims = _host_of(request)

    async def make() -> web.Response:
        body = await _object(request)
        v.only(body, {"title", "scheduled_start"})
        title = v.text(body, "title", required=False)
        changes: dict[str, Any] = {"title": title}
        if "scheduled_start" in body:
            changes["scheduled_start"] = _scheduled_start(body)
        bc = await _store(request).update(bid, **changes)
        node_of(request.app).hub.fanout.urgent(bid, "broadcast.updated", bc.to_dict())
        return json_response(bc.to_dict())

    return await idempotent(request, claims.sub, make)


async def add_product(request: web.Request) -> web.Response:
    bid, claims = _host_of(request)

    async def make() -> web.Response:
        body = await _object(request)
        product = await _store(request).add_product(bid, parse_product(body))
        node_of(request.app).hub.fanout.urgent(bid, "product.updated", {"broadcast_id": bid, "product": product.to_dict()})
        return json_response(product.to_dict(), status=201)

    return await idempotent(request, claims.sub, make)


async def edit_product(request: web.Request) -> web.Response:
    bid, claims = _host_of(request)
    pid = v.check_id(request.match_info["product"], "product")

    async def make() -> web.Response:
        body = await _object(request)
        product = await _store(request).edit_product(bid, pid, body)
        node_of(request.app).hub.fanout.urgent(bid, "product.updated", {"broadcast_id": bid, "product": product.to_dict()})
        return json_response(product.to_dict())

    return await idempotent(request, claims.sub, make)


def register(app: web.Application, node: Node) -> None:
    app.router.add_post("/api/broadcasts", create_broadcast)
    app.router.add_get("/api/broadcasts", list_broadcasts)
    app.router.add_get("/api/broadcasts/{broadcast}", get_broadcast)
    app.router.add_patch("/api/broadcasts/{broadcast}", update_broadcast)
    app.router.add_post("/api/broadcasts/{broadcast}/products", add_product)
    app.router.add_patch("/api/broadcasts/{broadcast}/products/{product}", edit_product)
