"""One person's data over HTTP: GET /api/users/{sub}/export and DELETE /api/users/{sub} are for
an operator: a host token for every broadcast (`bc: "*"`); anyone else gets 403 FORBIDDEN. What
they do is live/privacy.py."""
from __future__ import annotations

from aiohttp import web

from domain import Code, DomainError
from live.auth import ADMIN_BROADCAST, Claims, require
from live.errors import json_response
from live.idempotent import idempotent
from live.node import Node, node_of

MAX_SUB = 64


def _operator(request: web.Request) -> tuple[Claims, str]:
    claims = require(request, roles=("host",))
    if claims.broadcast != ADMIN_BROADCAST:
        raise DomainError(Code.FORBIDDEN, "only an operator token (host, broadcast *) may export or erase a person's data")
    sub = request.match_info["sub"]
    if not sub or len(sub) > MAX_SUB or not sub.isprintable():
        raise DomainError(Code.VALIDATION, f"sub must be 1 to {MAX_SUB} printable characters", field="sub")
    return claims, sub


async def export(request: web.Request) -> web.Response:
    _, sub = _operator(request)
    return json_response(await node_of(request.app).privacy.export_user(sub))


async def erase(request: web.Request) -> web.Response:
    claims, sub = _operator(request)

    async def make() -> web.Response:
        return json_response(await node_of(request.app).privacy.erase_user(sub))

    return await idempotent(request, claims.sub, make)


def register(app: web.Application, node: Node) -> None:
    app.router.add_get("/api/users/{sub}/export", export)
    app.router.add_delete("/api/users/{sub}", erase)
