"""The merchant's analytics over HTTP: GET /api/broadcasts/{id}/analytics (host token of that
broadcast, or an operator `*` token): JSON, or the per-minute table with `?format=csv`; and the
post-show report page /studio/report/{id}. The feed is live/analytics_feed.py."""
from __future__ import annotations

from aiohttp import web

from analytics import report_csv
from domain import Code, DomainError
from domain.validate import check_id
from live.auth import require
from live.errors import json_response
from live.headers import STUDIO_FRAME_ANCESTORS
from live.node import Node, node_of
from live.pages import _BROADCAST_RE, _page


async def report(request: web.Request) -> web.Response:
    claims = require(request, roles=("host",))  # auth before lookup: a stranger learns nothing
    feed = node_of(request.app).analytics
    bid = check_id(request.match_info["broadcast"], "broadcast")
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise DomainError(Code.VALIDATION, "format must be json or csv", field="format")
    if not claims.allows(bid) or not await feed.hub.broadcasts.exists(bid):
        raise DomainError(Code.BROADCAST_NOT_FOUND, "no such broadcast")
    rep = await feed.report(bid)
    rep["settings"] = {"buyer_names": await feed.names_enabled(bid)}
    if fmt == "csv":
        return web.Response(body=report_csv(rep).encode(), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="hawker-{bid}-analytics.csv"',
                                     "Cache-Control": "no-store"})
    return json_response(rep, headers={"Cache-Control": "no-store"})


async def report_page(request: web.Request) -> web.Response:
    """The post-show report page: static, like the studio; its data comes from the analytics API
    with the host's token, which the page keeps client-side (never in the URL the server sees)."""
    bid = request.match_info["broadcast"]
    if not _BROADCAST_RE.match(bid):
        raise DomainError(Code.NOT_FOUND, "no such broadcast")
    resp = _page("report.html", STUDIO_FRAME_ANCESTORS, broadcast=bid)
    resp.headers["X-Frame-Options"] = "DENY"
    return resp


def register(app: web.Application, node: Node) -> None:
    app.router.add_get("/api/broadcasts/{broadcast}/analytics", report)
    app.router.add_get("/studio/report/{broadcast}", report_page)
