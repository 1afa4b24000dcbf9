"""From raw counters to the figures a merchant reads: per minute, per sale, per show, and the CSV."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

COUNTS = ("joins", "leaves", "chat", "hearts", "votes", "reserves", "reserved_units", "waitlist", "granted",
          "expired", "released", "paid_holds", "orders", "units", "refunds")

CSV_COLUMNS = ("minute_utc", "viewers_peak", "viewers_avg", "unique_viewers", "joins", "avg_watch_s", "chat",
               "hearts", "votes", "reserves", "waitlist", "holds_expired", "orders", "units", "refunds")


def _per_currency(row: dict[str, int], prefix: str) -> dict[str, int]:
    return {k[len(prefix):]: v for k, v in row.items() if k.startswith(prefix)}


def _add(into: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


def _viewers_at(seconds: dict[int, int], at_ms: int | None) -> int | None:
    """Viewers present at a moment: the second itself, else the closest earlier second (<= 5 s)."""
    if not at_ms:
        return None
    s = at_ms // 1000
    for back in range(6):
        if s - back in seconds:
            return seconds[s - back]
    return 0


def build_report(broadcast: str, *, now_ms: int, minutes: dict[str, int], seconds: dict[int, int], span: list[int],
                 unique_per_minute: dict[int, int], unique: int, reservers: int, buyers: int,
                 sales: list[tuple[dict[str, Any], dict[str, int], int]]) -> dict[str, Any]:
    rows_by_minute: dict[int, dict[str, int]] = {m: {} for m in span}
    for key, val in minutes.items():
        minute_s, _, metric = key.partition(":")
        rows_by_minute.setdefault(int(minute_s), {})[metric] = val
    now_s = now_ms // 1000
    out_rows = []
    show: dict[str, Any] = {k: 0 for k in COUNTS}
    revenue: dict[str, int] = {}
    refunded: dict[str, int] = {}
    vsec_total = 0
    peak = 0
    for m in span:
        row = rows_by_minute.get(m, {})
        secs = [seconds[s] for s in range(m * 60, m * 60 + 60) if s in seconds]
        elapsed = min(60, max(1, now_s - m * 60)) if now_s < m * 60 + 60 else 60
        vsec = row.get("vsec", 0)
        vsec_total += vsec
        mpeak = max(secs, default=0)
        peak = max(peak, mpeak)
        leaves = row.get("leaves", 0)
        rev = _per_currency(row, "rev:")
        ref = _per_currency(row, "refund:")
        _add(revenue, rev)
        _add(refunded, ref)
        for k in COUNTS:
            show[k] += row.get(k, 0)
        out_rows.append({
            "minute": m, "start": m * 60_000,
            "viewers_peak": mpeak, "viewers_avg": round(vsec / elapsed, 2),
            "unique_viewers": unique_per_minute.get(m, 0),
            "joins": row.get("joins", 0), "leaves": leaves,
            "avg_watch_s": round(row.get("watch_ms", 0) / leaves / 1000, 1) if leaves else None,
            "chat": row.get("chat", 0), "hearts": row.get("hearts", 0), "votes": row.get("votes", 0),
            "reserves": row.get("reserves", 0), "waitlist": row.get("waitlist", 0),
            "holds_expired": row.get("expired", 0), "orders": row.get("orders", 0), "units": row.get("units", 0),
            "revenue": rev, "refunds": row.get("refunds", 0), "refunded": ref,
        })
    sale_rows = []
    for meta, counters, sale_buyers in sales:
        units = meta.get("units")
        sold = meta.get("sold", counters.get("sold_units", 0))
        opened = meta.get("opened_at") or None
        soldout = meta.get("soldout_at") or None
        at_open = _viewers_at(seconds, opened)
        sale_rows.append({
            "sale_id": meta["id"], "title": meta.get("title"), "product_id": meta.get("product_id"),
            "price": meta.get("price"), "currency": meta.get("currency"), "units": units, "sold": sold,
            "sell_through": round(sold / units, 4) if units else None,
            "opened_at": opened, "soldout_at": soldout,
            "time_to_sellout_ms": soldout - opened if opened and soldout else None,
            "holds": {"reserved": counters.get("reserves", 0) + counters.get("granted", 0),
                      "paid": counters.get("paid_holds", 0), "expired": counters.get("expired", 0),
                      "released": counters.get("released", 0)},
            "waitlist": counters.get("waitlist", 0),
            "orders": counters.get("orders", 0), "revenue": _per_currency(counters, "rev:"),
            "refunds": counters.get("refunds", 0),
            "buyers": sale_buyers, "viewers_at_open": at_open,
            "conversion": round(sale_buyers / at_open, 4) if at_open else None,
        })
    orders = show["orders"]
    net = {c: revenue.get(c, 0) - refunded.get(c, 0) for c in sorted(set(revenue) | set(refunded))}
    return {
        "broadcast_id": broadcast,
        "generated_at": now_ms,
        "minutes": out_rows,
        "sales": sale_rows,
        "show": {
            **show,
            "viewers_peak": peak,
            "unique_viewers": unique,
            "reservers": reservers,
            "buyers": buyers,
            "funnel": {"viewers": unique, "reservers": reservers, "buyers": buyers},
            "conversion_rate": round(buyers / unique, 4) if unique else None,
            "revenue": revenue, "refunded": refunded, "net_revenue": net,
            "average_order_value": {c: round(v / orders) for c, v in revenue.items()} if orders else {},
            "avg_watch_s": round(vsec_total / unique, 1) if unique else None,
            "viewer_seconds": vsec_total,
            "started_at": span[0] * 60_000 if span else None,
            "last_minute_at": span[-1] * 60_000 if span else None,
        },
    }


def report_csv(report: dict[str, Any]) -> str:
    """The per-minute table: one row per minute, a `revenue_<CUR>`/`refunded_<CUR>` column per currency."""
    currencies = sorted({c for r in report["minutes"] for c in (*r["revenue"], *r["refunded"])})
    header = [*CSV_COLUMNS, *(f"revenue_{c}" for c in currencies), *(f"refunded_{c}" for c in currencies)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    for r in report["minutes"]:
        when = datetime.fromtimestamp(r["start"] / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")
        row = [when, *(r[c] if r[c] is not None else "" for c in CSV_COLUMNS[1:])]
        row += [r["revenue"].get(c, 0) for c in currencies] + [r["refunded"].get(c, 0) for c in currencies]
        w.writerow(row)
    return buf.getvalue()
