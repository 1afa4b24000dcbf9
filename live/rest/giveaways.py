"""GET /api/broadcasts/{bc}/giveaways/{id}: a giveaway's record, which anyone can verify with
`hawker giveaway verify` (the commands are live/sockets/giveaways.py)."""
from __future__ import annotations

from aiohttp import web

from domain import Code, DomainError
from domain import validate as v
from live.auth import require
from live.errors import json_response
from live.node import Node, node_of


async def record(request: web.Request) -> web.Response:
    """GET /api/broadcasts/{bc}/giveaways/{id}: the commitment, and once drawn the seed, the
    sorted eligible entries and the winner entry (anyone with a token for the broadcast)."""
    claims = require(request)
    bc, gid = v.check_id(request.match_info["bc"], "broadcast"), v.check_id(request.match_info["giveaway"], "giveaway")
    record = await node_of(request.app).giveaways.store.record(bc, gid) if claims.allows(bc) else None
    if record is None:
        raise DomainError(Code.GIVEAWAY_NOT_FOUND, "no such giveaway")
    return json_response(record)


def register(app: web.Application, node: Node) -> None:
    app.router.add_get("/api/broadcasts/{bc}/giveaways/{giveaway}", record)
