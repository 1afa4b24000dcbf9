"""The spike's proof: checks over what the server reports after the sale, each one able to fail.

`check(data)` is pure: it takes the JSON of `GET /api/sales/<id>/audit` (the lot's counters, every
reservation, every order recorded for the lot) plus the orders the load clients saw paid, and
returns one `Check` per property."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check(data: dict[str, Any], client_orders: Iterable[str] = (), *, now_ms: int | None = None) -> list[Check]:
    lot = data["lot"]
    total, limit = int(lot["total"]), int(lot["per_user_limit"])
    levels = data["levels"]
    reservations: list[dict[str, Any]] = data["reservations"]
    orders: list[dict[str, Any]] = data["orders"]
    now = int(now_ms if now_ms is not None else data.get("server_time", 0))
    out: list[Check] = []

    out.append(Check("the sale took place (reservations were made)", len(reservations) > 0,
                     f"{len(reservations)} reservations on record" if reservations
                     else "no reservation at all: the load never reached the sale, so nothing here proves anything"))

    sold_units = sum(int(r["qty"]) for r in reservations if r["state"] == "SOLD")
    out.append(Check("units sold <= units", sold_units <= total and int(levels["sold"]) <= total,
                     f"{sold_units} sold (counter {levels['sold']}) of {total}"))

    counters = int(levels["available"]) + int(levels["held"]) + int(levels["sold"])
    out.append(Check("available + held + sold == total", counters == total and int(levels["available"]) >= 0,
                     f"{levels['available']} + {levels['held']} + {levels['sold']} = {counters}, total {total}"))

    per_user: Counter[str] = Counter()
    for r in reservations:
        if r["state"] in ("HELD", "PAYING", "SOLD"):
            per_user[r["user"]] += int(r["qty"])
    over = {u: n for u, n in per_user.items() if n > limit}
    out.append(Check("nobody above the limit", not over,
                     f"max {max(per_user.values(), default=0)} per user, limit {limit}" if not over
                     else f"{len(over)} above {limit}: {sorted(over.items())[:5]}"))

    by_res = {r["id"]: r for r in reservations}
    paid = [o for o in orders if o["state"] in ("PAID", "CONFIRMED", "COMPLETED")]
    bad = []
    for o in paid:
        res = by_res.get(o.get("reservation_id"))
        if res is None or res["state"] != "SOLD" or res.get("order_id") != o["id"] or int(res["qty"]) != int(o["qty"]) \
                or res["user"] != o["user"]:
            bad.append(o["id"])
    out.append(Check("every paid order matches a confirmed reservation", not bad,
                     f"{len(paid)} paid orders" if not bad else f"{len(bad)} without a matching SOLD reservation: {bad[:5]}"))

    sold_ids = {r["id"] for r in reservations if r["state"] == "SOLD"}
    unmatched_sold = [rid for rid in sold_ids if not any(o.get("reservation_id") == rid for o in paid)]
    out.append(Check("every sold unit has a paid order", not unmatched_sold,
                     f"{len(sold_ids)} sold reservations" if not unmatched_sold
                     else f"{len(unmatched_sold)} sold without an order: {unmatched_sold[:5]}"))

    dup_ids = [i for i, n in Counter(o["id"] for o in orders).items() if n > 1]
    dup_res = [i for i, n in Counter(o.get("reservation_id") for o in paid).items() if n > 1]
    out.append(Check("no duplicate orders", not dup_ids and not dup_res,
                     f"{len(orders)} orders, all distinct" if not (dup_ids or dup_res)
                     else f"duplicate order ids {dup_ids[:5]}, reservations paid twice {dup_res[:5]}"))

    stale = [r["id"] for r in reservations if r["state"] in ("HELD", "PAYING") and int(r["expires_at"]) <= now]
    out.append(Check("after expiry every hold is sold or released", not stale,
                     "no hold past its expiry" if not stale else f"{len(stale)} holds past expiry: {stale[:5]}"))

    seen = set(client_orders)
    missing = sorted(seen - {o["id"] for o in paid})
    out.append(Check("every order a buyer was told about is in the ledger", not missing,
                     f"{len(seen)} confirmations seen by clients" if not missing else f"missing {missing[:5]}"))

    server_ok = bool(data.get("inventory_audit", {}).get("ok", True))
    out.append(Check("inventory audit (counters recomputed from reservations)", server_ok,
                     "; ".join(data.get("inventory_audit", {}).get("problems", [])) or "consistent"))
    return out


def passed(checks: list[Check]) -> bool:
    return all(c.ok for c in checks)
