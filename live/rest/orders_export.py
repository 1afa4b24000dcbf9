"""GET /api/broadcasts/{broadcast}/orders.csv: the broadcast's orders as CSV, for the merchant's
system of record (Redis keeps orders for HAWKER_ORDER_RETENTION_DAYS only).

Host token of that broadcast only. Optional `since` / `until` (epoch ms, inclusive) select by the
order's creation time, so a merchant can export incrementally. Rows are streamed a page at a time,
oldest first. A cell that a spreadsheet would run as a formula (starting with = + - @ or a tab/CR)
is prefixed with a single quote."""
from __future__ import annotations

import csv
import io
from typing import Any

import orjson
from aiohttp import web

from domain import Code, DomainError
from domain.validate import check_id
from live.auth import require
from live.node import Node, node_of

COLUMNS = ["id", "created_at", "updated_at", "broadcast", "sale_id", "reservation_id", "user", "qty",
           "unit_price", "total", "currency", "state", "charge_id", "reason", "contact"]
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(v: Any) -> str:
    s = orjson.dumps(v).decode() if isinstance(v, dict) else str(v)
    return "'" + s if s.startswith(_FORMULA) and not _is_number(s) else s


def _is_number(s: str) -> bool:
    try:
        int(s)
    except ValueError:
        return False
    return True


def _ms(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 15:
        raise DomainError(Code.VALIDATION, f"{name} must be epoch milliseconds", field=name)
    return int(raw)


async def export_orders(request: web.Request) -> web.StreamResponse:
    broadcast = request.match_info["broadcast"]
    check_id(broadcast, "broadcast")  # the one id rule, before anything is looked up
    require(request, roles=("host",), broadcast=broadcast)
    since, until = _ms(request, "since") or 0, _ms(request, "until")
    ledger = node_of(request.app).checkout.checkout.ledger
    resp = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="orders-{"".join(c for c in broadcast if c.isalnum() or c in "-_")}.csv"',
        "Cache-Control": "no-store",
    })
    await resp.prepare(request)
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\r\n")
    out.writerow(COLUMNS)
    async for page in ledger.iter_broadcast(broadcast, since, until):
        for order in page:
            d = order.to_dict()
            out.writerow([_cell(d.get(c, "")) for c in COLUMNS])
        await resp.write(buf.getvalue().encode())
        buf.seek(0)
        buf.truncate()
    await resp.write(buf.getvalue().encode())
    await resp.write_eof()
    return resp


def register(app: web.Application, node: Node) -> None:
    app.router.add_get("/api/broadcasts/{broadcast}/orders.csv", export_orders)
