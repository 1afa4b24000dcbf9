"""How a script's flat reply becomes typed records: levels, a lot, a reservation (from the reply or
from its stored JSON), and the audit recomputed from one atomic dump."""
from __future__ import annotations

import json
from typing import Any

from inventory.types import AuditReport, Lot, LotState, Reservation, ReservationState, StockLevels


def text(x: Any) -> str:
    """A reply element as str (redis-py gives bytes unless decode_responses)."""
    return x.decode() if isinstance(x, bytes) else str(x)


def opt_int(x: Any) -> int | None:
    s = text(x)
    return int(s) if s else None


def levels_of(r: list[Any]) -> StockLevels:
    """The levels every reply carries after its code: total, available, held, sold, waitlist."""
    return StockLevels(int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]))


def reservation_at(lot_id: str, r: list[Any], i: int) -> Reservation:
    """The reservation a reply appends at index i (ten fields, see lua/__init__.py)."""
    order = text(r[i + 5])
    return Reservation(
        id=text(r[i]), lot_id=lot_id, user=text(r[i + 1]), qty=int(r[i + 2]),
        state=ReservationState(text(r[i + 3])), expires_at_ms=int(r[i + 4]),
        order_id=order or None, created_at_ms=int(r[i + 6]), extended=bool(int(r[i + 7])),
        from_waitlist=bool(int(r[i + 8])), payment_attempts=int(r[i + 9]),
    )


def reservation_stored(lot_id: str, rid: Any, d: dict[str, Any]) -> Reservation:
    """A reservation as the lot's `res` hash stores it (its cjson decoded: short field names)."""
    return Reservation(
        id=text(rid), lot_id=lot_id, user=d["u"], qty=int(d["q"]), state=ReservationState(d["s"]),
        expires_at_ms=int(d["e"]), order_id=d.get("o") or None, created_at_ms=int(d.get("c", 0)),
        extended=bool(int(d.get("x", 0))), from_waitlist=bool(int(d.get("w", 0))),
        payment_attempts=int(d.get("n", 0)))


def lot_of(lot_id: str, r: list[Any]) -> Lot:
    """The lot a successful lot script answers."""
    return Lot(
        lot_id=lot_id, sku=text(r[6]), total=int(r[1]), unit_price=int(text(r[7])), currency=text(r[8]),
        per_user_limit=int(r[9]), hold_s=int(r[10]), opens_at_ms=opt_int(r[11]),
        closes_at_ms=opt_int(r[12]), state=LotState(text(r[13])), created_at_ms=int(text(r[14])),
        levels=levels_of(r),
    )


def audit_report(r: list[Any]) -> AuditReport:
    """Recompute a lot from the `dump` script's reply and compare with its counters."""
    levels = levels_of(r)
    limit, exp_card = int(r[6]), int(r[8])
    flat_res, flat_usr = r[9], r[10]
    held = sold = live = 0
    per_user: dict[str, int] = {}
    for i in range(0, len(flat_res), 2):
        d = json.loads(text(flat_res[i + 1]))
        q, st, u = int(d["q"]), d["s"], d["u"]
        if st in ("HELD", "PAYING"):
            held += q
            live += 1
        elif st == "SOLD":
            sold += q
        if st in ("HELD", "PAYING", "SOLD"):
            per_user[u] = per_user.get(u, 0) + q
    stored_user = {text(flat_usr[i]): int(flat_usr[i + 1]) for i in range(0, len(flat_usr), 2)}
    recomputed = StockLevels(levels.total, levels.total - held - sold, held, sold, levels.waitlist)
    problems: list[str] = []
    if levels.available + levels.held + levels.sold != levels.total:
        problems.append(f"available+held+sold={levels.available + levels.held + levels.sold} != total={levels.total}")
    if (levels.held, levels.sold) != (held, sold):
        problems.append(f"counters held={levels.held} sold={levels.sold} but reservations say held={held} sold={sold}")
    if recomputed.available < 0 or levels.available < 0:
        problems.append(f"oversold: available would be {min(recomputed.available, levels.available)}")
    over = {u: n for u, n in per_user.items() if n > limit}
    if over:
        problems.append(f"{len(over)} user(s) above the limit {limit}: {sorted(over.items())[:5]}")
    if stored_user != per_user:
        problems.append("per-user counters differ from the reservations")
    if exp_card != live:
        problems.append(f"expiry index has {exp_card} entries for {live} live reservations")
    return AuditReport(
        ok=not problems, problems=problems, levels=levels, recomputed=recomputed,
        reservations=len(flat_res) // 2, max_user_units=max(per_user.values(), default=0),
        oversold=max(0, held + sold - levels.total), compacted_at_ms=opt_int(r[11]) if len(r) > 11 else None,
    )
