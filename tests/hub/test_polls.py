"""Polls: one vote per viewer, idempotent and atomic, whichever node the viewer's sockets are on."""
from __future__ import annotations

import asyncio

from tests.hub.conftest import wait_for


async def test_vote_idempotency_across_two_nodes(make_server, bc, clients, token):
    a, b = await make_server(), await make_server()
    host = await clients(a.url, token("host", "b1", "h1"))
    await host.snapshot()
    created = await host.call("poll.create", {"question": "Next item?", "options": ["hat", "shirt"], "duration_s": 120})
    assert created["ok"], created
    poll_id = created["poll"]["id"]

    # 6 users, each with one socket on node A and one on node B; every socket votes twice at once
    users = [f"u{i}" for i in range(6)]
    socks = {}
    for u in users:
        socks[u] = (await clients(a.url, token("viewer", "b1", u)), await clients(b.url, token("viewer", "b1", u)))
    for pair in socks.values():
        for c in pair:
            await c.snapshot()
    choice = {u: i % 2 for i, u in enumerate(users)}
    calls = [c.call("poll.vote", {"poll_id": poll_id, "option": choice[u]}) for u, pair in socks.items()
             for c in pair for _ in range(2)]
    acks = await asyncio.gather(*calls)
    assert all(ack["ok"] for ack in acks), acks
    counted = [ack for ack in acks if ack["counted"]]
    assert len(counted) == len(users)  # exactly one counted vote per user
    assert all(ack["option"] == choice[ack_user] for ack, ack_user in zip(acks, [u for u in users for _ in range(4)]))

    # a different option later is refused with the vote that stands
    again = await socks["u0"][1].call("poll.vote", {"poll_id": poll_id, "option": 1})
    assert again["error"]["code"] == "ALREADY_VOTED" and again["error"]["option"] == 0

    expected = [3, 3]
    for pair in socks.values():  # the coalesced tallies reach sockets on both nodes
        for c in pair:
            await wait_for(lambda c=c: (c.levels(f"poll:{poll_id}") or {}).get("tallies") == expected, what="tallies")

    closed = await host.call("poll.close", {"poll_id": poll_id})
    assert closed["ok"]
    for pair in socks.values():
        for c in pair:
            msgs = await wait_for(lambda c=c: c.of("poll.closed"), what="poll.closed")
            assert msgs[0]["tallies"] == expected and msgs[0]["state"] == "closed"
    late = await socks["u0"][0].call("poll.vote", {"poll_id": poll_id, "option": 0})
    assert late["ok"] and late["counted"] is False  # a retry after the close still gets its first answer
    newcomer = await clients(b.url, token("viewer", "b1", "late"))
    await newcomer.snapshot()
    refused = await newcomer.call("poll.vote", {"poll_id": poll_id, "option": 0})
    assert refused["error"]["code"] == "POLL_CLOSED"


async def test_poll_validation_and_single_active_poll(server, bc, clients, token):
    host = await clients(server.url, token("host", "b1", "h1"))
    await host.snapshot()
    bad = [
        ({"question": "Q", "options": ["only one"]}, "options"),
        ({"question": "Q", "options": ["a", "b", "c", "d", "e", "f", "g"]}, "options"),
        ({"question": "", "options": ["a", "b"]}, "question"),
        ({"question": "Q", "options": ["a", 5]}, "options[1]"),
        ({"question": "Q", "options": ["a", "b"], "duration_s": "long"}, "duration_s"),
        ({"question": "Q", "options": ["a", "b"], "colour": "red"}, "colour"),
    ]
    for payload, field in bad:
        ack = await host.call("poll.create", payload)
        assert ack["error"]["code"] == "VALIDATION" and ack["error"]["field"] == field, (payload, ack)
    first = await host.call("poll.create", {"question": "Q1", "options": ["a", "b"]})
    assert first["ok"]
    second = await host.call("poll.create", {"question": "Q2", "options": ["a", "b"]})
    assert second["error"]["code"] == "POLL_ACTIVE" and second["error"]["poll_id"] == first["poll"]["id"]
    viewer = await clients(server.url, token("viewer", "b1", "u1"))
    await viewer.snapshot()
    out_of_range = await viewer.call("poll.vote", {"poll_id": first["poll"]["id"], "option": 2})
    assert out_of_range["error"]["code"] == "VALIDATION" and out_of_range["error"]["field"] == "option"


async def test_poll_closes_itself_once_at_its_deadline(make_server, bc, clients, token):
    a, b = await make_server(), await make_server()
    host = await clients(a.url, token("host", "b1", "h1"))
    viewers = [await clients(s.url, token("viewer", "b1", f"v{i}")) for i, s in enumerate((a, b))]
    for c in (host, *viewers):
        await c.snapshot()
    created = await host.call("poll.create", {"question": "Quick?", "options": ["y", "n"], "duration_s": 5})
    closes_at = created["poll"]["closes_at"]
    for c in viewers:
        msgs = await wait_for(lambda c=c: c.of("poll.closed"), timeout=30, what="timer close")
        assert msgs[0]["closed_at"] >= closes_at
    await asyncio.sleep(1.0)
    assert all(len(c.of("poll.closed")) == 1 for c in viewers)
