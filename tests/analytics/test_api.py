"""Per-broadcast analytics on running nodes: counted on two nodes at once, kept across restarts,
served to the broadcast's host (JSON and CSV) and to nobody else."""
from __future__ import annotations

import asyncio
import csv
import io
import time

import aiohttp
import pytest

from analytics import CSV_COLUMNS
from tests.checkout.conftest import CONTACT, OK_CARD
from tests.hub.conftest import Client, bc, clients, wait_for  # noqa: F401 - fixtures


@pytest.fixture
def config(config):
    return config.with_(analytics_flush_ms=100)


async def api(url: str, tok: str | None, bid: str = "b1", query: str = "") -> tuple[int, dict | str, dict]:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/api/broadcasts/{bid}/analytics{query}", headers=headers) as r:
            if r.content_type == "application/json":
                return r.status, await r.json(), dict(r.headers)
            return r.status, await r.text(), dict(r.headers)


async def pay(url: str, tok: str, sale: str, rid: str, key: str) -> dict:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/checkout", headers={"Authorization": f"Bearer {tok}", "Idempotency-Key": key},
                             json={"sale_id": sale, "reservation_id": rid, "card": OK_CARD, "contact": CONTACT}) as r:
            body = await r.json()
            assert r.status == 201, body
            return body["order"]


async def figures(url: str, tok: str, done) -> dict:
    """The report once `done(report)` holds (flushes are asynchronous)."""
    latest: dict = {}

    async def poll() -> None:
        while True:
            status, rep, _ = await api(url, tok)
            assert status == 200, rep
            latest["rep"] = rep
            if done(rep):
                return
            await asyncio.sleep(0.1)

    try:
        await asyncio.wait_for(poll(), 30)
    except TimeoutError:
        raise AssertionError(f"figures never matched: {latest.get('rep', {}).get('show')}") from None
    return latest["rep"]


async def test_two_nodes_count_one_show_exactly_and_it_survives_a_restart(bc, make_server, clients, token):  # noqa: F811 - the fixture imported above
    a, b = await make_server(), await make_server()
    host = await clients(a.url, token("host", "b1", "h1"))
    poll = (await host.call("poll.create", {"question": "Next?", "options": ["hat", "shirt"]}))["poll"]["id"]
    v1 = await clients(a.url, token("viewer", "b1", "v1"))
    v2 = await clients(a.url, token("viewer", "b1", "v2"))
    v3 = await clients(b.url, token("viewer", "b1", "v3"))
    for v in (v1, v2, v3):
        await v.snapshot()
    await asyncio.sleep(1.2)  # the three were watching a whole second before the sale opened
    sale = (await host.call("sale.schedule", {"product_id": "p1", "units": 5, "limit": 1, "hold_s": 60}))["sale"]["id"]
    for i in range(2):
        assert (await v1.call("chat.send", {"text": f"hi {i}", "request_id": f"a{i}"}))["ok"]
    assert (await v1.call("chat.send", {"text": "hi 0", "request_id": "a0"}))["ok"]  # a retry: not a new line
    for i in range(3):
        assert (await v3.call("chat.send", {"text": f"yo {i}"}))["ok"]
    for v in (v2, v2, v3):
        assert (await v.call("react", {"emoji": "heart"}))["ok"]
    assert (await v3.call("react", {"emoji": "fire"}))["ok"]  # not a heart
    assert (await v1.call("hearts", {"n": 4}))["ok"]  # the player's heart button
    assert not (await v1.call("hearts", {"n": 99}))["ok"]  # refused: not counted
    assert (await v1.call("poll.vote", {"poll_id": poll, "option": 0}))["ok"]
    assert (await v3.call("poll.vote", {"poll_id": poll, "option": 1}))["ok"]
    assert (await v3.call("poll.vote", {"poll_id": poll, "option": 1}))["ok"]  # the same vote again
    orders = []
    for n, (v, node) in enumerate(((v1, a), (v2, a), (v3, b))):
        ack = await v.call("sale.reserve", {"sale_id": sale, "qty": 1, "request_id": f"r{n}"})
        assert ack["ok"], ack
        orders.append(await pay(node.url, token("viewer", "b1", f"v{n + 1}"), sale, ack["reservation"]["id"], f"k{n}"))
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{b.url}/api/orders/{orders[0]['id']}/refund",
                             headers={"Authorization": f"Bearer {token('host', 'b1', 'h1')}"}) as r:
            assert r.status == 200
    hosttok = token("host", "b1", "h1")
    rep = await figures(a.url, hosttok, lambda r: r["show"]["orders"] == 3 and r["show"]["refunds"] == 1
                        and r["show"]["chat"] == 5 and r["show"]["viewers_peak"] >= 3  # the flushes are asynchronous:
                        and r["show"]["reserves"] == 3 and r["show"]["paid_holds"] == 3)  # wait for every kind
    show = rep["show"]
    assert show["joins"] == 3 and show["unique_viewers"] == 3  # the host is not audience
    assert show["chat"] == 5 and show["hearts"] == 3 + 4 and show["votes"] == 2
    assert show["reserves"] == 3 and show["reservers"] == 3 and show["buyers"] == 3
    assert show["units"] == 3 and show["revenue"] == {"KRW": 3 * 12900} and show["net_revenue"] == {"KRW": 2 * 12900}
    assert show["viewers_peak"] == 3
    assert show["funnel"] == {"viewers": 3, "reservers": 3, "buyers": 3} and show["conversion_rate"] == 1.0
    assert show["average_order_value"] == {"KRW": 12900}
    [s] = rep["sales"]
    assert s["sale_id"] == sale and s["units"] == 5 and s["sold"] == 3 and s["sell_through"] == 0.6
    assert s["holds"]["paid"] == 3 and s["buyers"] == 3 and s["viewers_at_open"] == 3 and s["conversion"] == 1.0
    assert sum(m["orders"] for m in rep["minutes"]) == 3
    # the other node answers the same figures: they live in Redis, not in a node
    _, from_b, _ = await api(b.url, hosttok)
    assert from_b["show"]["orders"] == 3 and from_b["show"]["chat"] == 5
    # viewers leave, both nodes stop (their last flush is kept), a new node serves the same show
    for v in (v1, v2, v3, host):
        await v.sio.disconnect()
    await a.stop()
    await b.stop()
    c = await make_server()
    _, after, _ = await api(c.url, hosttok)
    kept = after["show"]
    assert (kept["chat"], kept["hearts"], kept["votes"], kept["orders"], kept["unique_viewers"]) == (5, 7, 2, 3, 3)
    assert kept["revenue"] == {"KRW": 3 * 12900} and kept["avg_watch_s"] is not None and kept["viewer_seconds"] > 0


async def test_only_the_broadcasts_host_or_an_operator_reads_it(bc, server, token):  # noqa: F811 - the fixture imported above
    status, body, _ = await api(server.url, None)
    assert status == 401 and body["error"]["code"] == "TOKEN_MISSING"
    status, body, _ = await api(server.url, "not-a-token")
    assert status == 401
    other, made_up = await api(server.url, token("host", "b2", "h2")), await api(server.url, token("host", "b2", "h2"), "nope")
    assert other[0] == made_up[0] == 404 and other[1] == made_up[1]  # another show: same answer as none
    assert other[1]["error"]["code"] == "BROADCAST_NOT_FOUND"
    status, body, _ = await api(server.url, token("viewer", "b1", "v1"))
    assert status == 403 and body["error"]["code"] == "FORBIDDEN"
    status, body, _ = await api(server.url, token("moderator", "b1", "m1"))
    assert status == 403
    assert (await api(server.url, token("host", "*", "ops")))[0] == 200
    status, rep, headers = await api(server.url, token("host", "b1", "h1"))
    assert status == 200 and rep["broadcast_id"] == "b1" and headers["Cache-Control"] == "no-store"
    status, body, _ = await api(server.url, token("host", "b1", "h1"), query="?format=xml")
    assert status == 422 and body["error"]["code"] == "VALIDATION" and body["error"]["field"] == "format"


async def test_csv_download(bc, server, clients, token):  # noqa: F811 - the fixture imported above
    v = await clients(server.url, token("viewer", "b1", "v1"))
    await v.snapshot()
    assert (await v.call("chat.send", {"text": "hello"}))["ok"]
    hosttok = token("host", "b1", "h1")
    await figures(server.url, hosttok, lambda r: r["show"]["chat"] == 1)
    status, text, headers = await api(server.url, hosttok, query="?format=csv")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert 'filename="hawker-b1-analytics.csv"' in headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) >= 2
    now_minute = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())
    assert sum(int(dict(zip(rows[0], r))["chat"]) for r in rows[1:]) == 1
    assert any(r[0] <= now_minute for r in rows[1:])


async def test_counting_adds_no_redis_command_per_event(bc, make_server, clients, token, redis):  # noqa: F811 - the fixture imported above
    """30 hearts (within the socket's burst) are counted with a few HINCRBYs (one pipeline per
    flush), not one per event."""
    srv = await make_server(analytics_flush_ms=2000)
    v = await clients(srv.url, token("viewer", "b1", "v1"))
    await v.snapshot()

    async def hincrbys() -> int:
        stats = await redis.info("commandstats")
        return int(stats.get("cmdstat_hincrby", {}).get("calls", 0))

    before = await hincrbys()
    for _ in range(30):
        ack = await v.call("hearts", {"n": 1})
        assert ack["ok"], ack
    await figures(srv.url, token("host", "b1", "h1"), lambda r: r["show"]["hearts"] == 30)
    spent = await hincrbys() - before
    assert spent <= 12, spent  # a few fields per flush (hearts, joins, vsec), whatever the number of events
