"""The analytics domain alone, on a real Redis: the in-memory tally, the once-only scripts, the CSV."""
from __future__ import annotations

import csv
import io

from analytics import (
    CSV_COLUMNS,
    AnalyticsStore,
    OrderFact,
    StockFact,
    Tally,
    report_csv,
)

T0 = 1_800_000_000_000 - (1_800_000_000_000 % 60_000)  # a minute boundary


def test_viewer_seconds_follow_joins_and_leaves_exactly():
    t = Tally()
    t.joined("b", "u1", T0)            # 1 viewer from second 0
    t.joined("b", "u2", T0 + 10_000)   # 2 from second 10
    t.left("b", T0 + 10_000, T0 + 20_500)  # back to 1 during second 20
    out = t.drain(T0 + 30_000)["b"]
    assert out.seconds[T0 // 1000] == 1 and out.seconds[T0 // 1000 + 10] == 2
    assert out.seconds[T0 // 1000 + 20] == 2  # the most viewers during that second
    assert out.seconds[T0 // 1000 + 29] == 1
    m = T0 // 60_000
    assert out.counts[f"{m}:vsec"] == 10 * 1 + 11 * 2 + 9 * 1
    assert out.counts[f"{m}:joins"] == 2 and out.counts[f"{m}:leaves"] == 1
    assert out.counts[f"{m}:watch_ms"] == 10_500
    again = t.drain(T0 + 31_000)["b"]  # the next drain credits only the new second
    assert again.seconds == {T0 // 1000 + 30: 1}


async def test_stock_events_count_once_even_when_fed_twice(redis):
    store = AnalyticsStore(redis)
    facts = [StockFact("b", "s1", f"{T0 + i}-0", "reserved", T0 + i, 1, f"u{i}") for i in range(5)]
    facts.append(StockFact("b", "s1", f"{T0 + 9}-0", "expired", T0 + 9, 1, "u0"))
    await store.flush({}, facts[:3])
    await store.flush({}, facts)  # a watcher handover re-reads from an older cursor
    rep = await store.report("b", now_ms=T0 + 60_000)
    sale = rep["sales"][0]
    assert sale["holds"]["reserved"] == 5 and sale["holds"]["expired"] == 1
    assert rep["show"]["reserves"] == 5 and rep["show"]["reservers"] == 5


async def test_order_events_count_once_and_refunds_net_out(redis):
    store = AnalyticsStore(redis)
    paid = [OrderFact("b", f"o{i}:paid", "paid", T0 + i, "s1", f"u{i}", 1, 12900, "KRW") for i in range(3)]
    await store.flush({}, [], paid)
    await store.flush({}, [], paid)  # redelivered by the consumer group: not counted again
    await store.flush({}, [], [OrderFact("b", "o0:refunded", "refunded", T0 + 70_000, "s1", "u0", 1, 12900, "KRW")])
    show = (await store.report("b", now_ms=T0 + 120_000))["show"]
    assert show["orders"] == 3 and show["revenue"] == {"KRW": 38700} and show["buyers"] == 3
    assert show["refunds"] == 1 and show["net_revenue"] == {"KRW": 25800}
    assert show["average_order_value"] == {"KRW": 12900}


async def test_csv_has_one_row_per_minute_and_a_column_per_currency(redis):
    store = AnalyticsStore(redis)
    t = Tally()
    t.joined("b", "u1", T0)
    t.add("b", "chat", T0 + 5_000, 3)
    t.add("b", "chat", T0 + 125_000, 2)  # minute 3 (two minutes later), minute 2 has nothing
    await store.flush(t.drain(T0 + 130_000), [], [
        OrderFact("b", "o1:paid", "paid", T0 + 1000, "s1", "u1", 2, 5000, "KRW"),
        OrderFact("b", "o2:paid", "paid", T0 + 61_000, "s1", "u2", 1, 700, "USD")])
    text = report_csv(await store.report("b", now_ms=T0 + 180_000))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [*CSV_COLUMNS, "revenue_KRW", "revenue_USD", "refunded_KRW", "refunded_USD"]
    assert len(rows) == 1 + 3  # minutes 0, 1, 2 (no gaps)
    assert all(len(r) == len(rows[0]) for r in rows)
    first = dict(zip(rows[0], rows[1]))
    assert first["chat"] == "3" and first["orders"] == "1" and first["units"] == "2" and first["revenue_KRW"] == "5000"
    assert first["viewers_peak"] == "1" and first["viewers_avg"] == "1.0" and first["unique_viewers"] == "1"
    assert dict(zip(rows[0], rows[2]))["revenue_USD"] == "700"
    assert dict(zip(rows[0], rows[3]))["chat"] == "2"
    assert rows[1][0].endswith("Z") and "T" in rows[1][0]
