"""GET /api/auctions/{auction}/audit: an auction's bid log replayed with the rules (the commands
are live/sockets/auctions.py)."""
from __future__ import annotations

from aiohttp import web

from auctions import Auctions
from domain import Code, DomainError
from domain import validate as v
from live.auth import require
from live.errors import json_response
from live.node import Node, node_of


async def audit(request: web.Request) -> web.Response:
    """GET /api/auctions/{auction}/audit (host, moderator or viewer of the broadcast): the log
    replayed; names are masked, user ids never shown."""
    claims = require(request)
    auc = node_of(request.app).auctions.auc
    auction_id = v.check_id(request.match_info["auction"], "auction")
    a = await auc.get(auction_id) if Auctions.valid_id(auction_id) else None
    if a is None or not claims.allows(a.owner):
        raise DomainError(Code.AUCTION_NOT_FOUND, "no such auction")
    report = await auc.audit(auction_id)
    return json_response({
        "auction_id": a.id, "state": a.state, "result": a.result, "currency": a.currency,
        "price": a.price, "winner": a.leader_label if a.result == "sold" else None, "bids": a.bids,
        "ends_at": a.ends_at, "closed_at": a.closed_at,
        # the problems name bidders: the show's staff see them, everyone else how many there are
        "audit": {"ok": report.ok, "problems": report.problems if claims.role in ("host", "moderator")
                  else len(report.problems), "bids": report.bids, "price": report.price,
                  "winner_matches": report.winner == (a.winner or ""), "late_bids": report.late_bids},
        "server_time": await auc.server_time_ms()})


def register(app: web.Application, node: Node) -> None:
    app.router.add_get("/api/auctions/{auction}/audit", audit)
