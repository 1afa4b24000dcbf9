"""Chat through the hub: real nodes (two where it matters), real Redis, real Socket.IO clients."""
from __future__ import annotations

import aiohttp

from inventory import Inventory
from tests.chat.conftest import wait_for

PAYLOAD = '<script>alert("pwned")</script><img src=x onerror="alert(1)"> &amp; \'quoted\''


def err(ack: dict) -> dict:
    assert ack["ok"] is False, ack
    return ack["error"]


async def test_message_reaches_viewers_on_both_nodes_as_inert_text(make_server, clients, token, bc) -> None:
    a, b = await make_server(), await make_server()
    alice = await clients(a.url, token("viewer", bc, "alice", name="Alice"))
    bob = await clients(b.url, token("viewer", bc, "bob"))
    ack = await alice.call("chat.send", {"text": PAYLOAD})
    assert ack["ok"] and ack["message"]["text"] == PAYLOAD
    assert ack["message"]["user"] == "alice" and ack["message"]["name"] == "Alice"
    for c in (alice, bob):
        lines = await wait_for(lambda c=c: c.chat_lines(), what="chat in a tick")
        assert lines == [ack["message"]]  # byte-for-byte the same text: not escaped, not altered
    late = await clients(b.url, token("viewer", bc, "carol"))
    assert late.snapshot["chat"] == [ack["message"]]


async def test_refusal_codes_come_back_in_the_ack(make_server, clients, token, bc) -> None:
    s = await make_server(chat_max_len=20)
    alice = await clients(s.url, token("viewer", bc, "alice"))
    assert err(await alice.call("chat.send", {"text": "   "}))["code"] == "EMPTY"
    too_long = err(await alice.call("chat.send", {"text": "x" * 21}))
    assert too_long["code"] == "TOO_LONG" and too_long["max_len"] == 20
    assert err(await alice.call("chat.send", {"text": "ｆ ｕ ｃ ｋ"}))["code"] == "BLOCKED_WORD"
    assert err(await alice.call("chat.send", {"text": "bit.ly/xyz"}))["code"] == "LINK_NOT_ALLOWED"
    assert err(await alice.call("chat.send", {"text": 5}))["code"] == "VALIDATION"
    assert err(await alice.call("chat.send", {"text": "hi", "kind": "system"}))["code"] == "VALIDATION"
    assert err(await alice.call("chat.send", {"text": "hi", "extra": 1}))["code"] == "VALIDATION"
    assert (await alice.call("chat.send", {"text": "same old"}))["ok"]
    assert err(await alice.call("chat.send", {"text": "SAME  old!"}))["code"] == "DUPLICATE"
    for event, payload in [("chat.delete", {"message_id": "1-0"}), ("chat.ban", {"user": "bob"}),
                           ("chat.timeout", {"user": "bob", "seconds": 5}), ("chat.slowmode", {"seconds": 5}),
                           ("chat.pin", {"message_id": "1-0"}), ("chat.commentbuy", {"enabled": True}),
                           ("qa.answer", {"message_id": "1-0"}), ("chat.unban", {"user": "bob"})]:
        assert err(await alice.call(event, payload))["code"] == "FORBIDDEN", event
    assert len(alice.chat_lines()) <= 1


async def test_rate_limit_holds_across_nodes(make_server, clients, token, bc) -> None:
    a, b = await make_server(chat_rate=0.05, chat_burst=3), await make_server(chat_rate=0.05, chat_burst=3)
    on_a = await clients(a.url, token("viewer", bc, "alice"))
    on_b = await clients(b.url, token("viewer", bc, "alice"))  # the same user, a second tab on the other node
    for i in range(3):
        assert (await (on_a if i % 2 else on_b).call("chat.send", {"text": f"message {i}"}))["ok"]
    for c in (on_a, on_b):
        e = err(await c.call("chat.send", {"text": "one more"}))
        assert e["code"] == "RATE_LIMITED" and e["retry_after"] > 0
    other = await clients(b.url, token("viewer", bc, "bob"))
    assert (await other.call("chat.send", {"text": "bob is fine"}))["ok"]


async def test_slow_mode_set_by_host(make_server, clients, token, bc) -> None:
    s = await make_server()
    host = await clients(s.url, token("host", bc, "h1"))
    alice = await clients(s.url, token("viewer", bc, "alice"))
    assert (await host.call("chat.slowmode", {"seconds": 60}))["seconds"] == 60
    await wait_for(lambda: alice.of("chat.slowmode"), what="chat.slowmode")
    assert alice.of("chat.slowmode")[-1] == {"seconds": 60}
    assert (await alice.call("chat.send", {"text": "first"}))["ok"]
    e = err(await alice.call("chat.send", {"text": "second"}))
    assert e["code"] == "SLOW_MODE" and 0 < e["retry_after"] <= 60_000
    assert (await host.call("chat.send", {"text": "host talks freely"}))["ok"]
    assert (await host.call("chat.send", {"text": "and again"}))["ok"]
    assert err(await host.call("chat.slowmode", {"seconds": -3}))["code"] == "VALIDATION"


async def test_timeout_and_ban_survive_reconnect_to_another_node(make_server, clients, token, bc) -> None:
    a, b = await make_server(), await make_server()
    mod = await clients(a.url, token("moderator", bc, "m1"))
    bob = await clients(b.url, token("viewer", bc, "bob"))
    t = await mod.call("chat.timeout", {"user": "bob", "seconds": 120})
    assert t["ok"] and t["until"] > 0
    await wait_for(lambda: bob.of("chat.timeout"), what="private chat.timeout")
    assert err(await bob.call("chat.send", {"text": "hello"}))["code"] == "MUTED"
    assert (await mod.call("chat.ban", {"user": "bob"}))["ok"]
    await wait_for(lambda: bob.of("chat.banned"), what="private chat.banned")
    await bob.sio.disconnect()
    bob2 = await clients(a.url, token("viewer", bc, "bob"))  # reconnect, other node
    assert bob2.snapshot["chat_state"]["banned"] is True
    e = err(await bob2.call("chat.send", {"text": "I'm back"}))
    assert e["code"] == "BANNED"
    assert (await mod.call("chat.unban", {"user": "bob"}))["ok"]
    assert err(await bob2.call("chat.send", {"text": "I'm back"}))["code"] == "MUTED"  # the time-out still runs
    assert (await mod.call("chat.timeout", {"user": "bob", "seconds": 0}))["until"] == 0
    assert (await bob2.call("chat.send", {"text": "I'm back"}))["ok"]


async def test_deletion_reaches_viewers_on_both_nodes(make_server, clients, token, bc) -> None:
    a, b = await make_server(), await make_server()
    mod = await clients(a.url, token("moderator", bc, "m1"))
    va = await clients(a.url, token("viewer", bc, "alice"))
    vb = await clients(b.url, token("viewer", bc, "bob"))
    keep = (await va.call("chat.send", {"text": "nice shirt"}))["message"]
    spam = (await vb.call("chat.send", {"text": "SPAM SPAM"}))["message"]
    ack = await mod.call("chat.delete", {"message_id": spam["id"]})
    assert ack["ok"] and ack["id"] == spam["id"]
    for c in (va, vb, mod):
        got = await wait_for(lambda c=c: c.of("chat.removed"), what="chat.removed")
        assert got[0]["id"] == spam["id"] and got[0]["by"] == "m1"
    viewer = await clients(b.url, token("viewer", bc, "carol"))
    assert [m["id"] for m in viewer.snapshot["chat"]] == [keep["id"]]
    staff = await clients(b.url, token("host", bc, "h1"))
    assert [(m["id"], m.get("removed", False)) for m in staff.snapshot["chat"]] == [(keep["id"], False), (spam["id"], True)]
    assert err(await mod.call("chat.delete", {"message_id": "123-0"}))["code"] == "NOT_FOUND"
    assert err(await mod.call("chat.delete", {"message_id": "drop table"}))["code"] == "VALIDATION"


async def test_pin_question_answer_and_history(make_server, clients, token, bc) -> None:
    a, b = await make_server(), await make_server()
    host = await clients(a.url, token("host", bc, "h1"))
    alice = await clients(b.url, token("viewer", bc, "alice"))
    q = (await alice.call("chat.send", {"text": "Is it machine washable?", "kind": "question"}))["message"]
    assert q["kind"] == "question"
    pinned = await host.call("chat.pin", {"message_id": q["id"]})
    assert pinned["ok"] and pinned["message"]["id"] == q["id"]
    got = await wait_for(lambda: alice.of("chat.pinned"), what="chat.pinned")
    assert got[0]["message"]["text"] == "Is it machine washable?"
    assert (await host.call("qa.answer", {"message_id": q["id"]}))["message"]["answered"] is True
    assert (await wait_for(lambda: alice.of("qa.answered"), what="qa.answered"))[0]["id"] == q["id"]
    qs = (await alice.call("qa.list"))["questions"]
    assert [(m["id"], m["answered"]) for m in qs] == [(q["id"], True)]
    c = (await alice.call("chat.send", {"text": "thanks!"}))["message"]
    assert err(await host.call("qa.answer", {"message_id": c["id"]}))["code"] == "NOT_A_QUESTION"
    late = await clients(a.url, token("viewer", bc, "bob"))
    assert late.snapshot["chat_state"]["pinned"]["id"] == q["id"]
    hist = (await late.call("chat.history", {"since": q["ts"]}))["messages"]
    assert [m["id"] for m in hist] == [q["id"], c["id"]]
    assert [m["id"] for m in (await late.call("chat.history", {"since": None, "count": 1}))["messages"]] == [q["id"]]
    assert err(await late.call("chat.history", {"since": "yesterday"}))["code"] == "VALIDATION"
    assert (await host.call("chat.unpin"))["ok"]
    await wait_for(lambda: any(p["message"] is None for p in alice.of("chat.pinned")), what="unpin")


async def test_reactions_are_totals_in_the_tick(make_server, clients, token, bc) -> None:
    a, b = await make_server(), await make_server()
    alice = await clients(a.url, token("viewer", bc, "alice"))
    bob = await clients(b.url, token("viewer", bc, "bob"))
    for emoji in ("heart", "❤️", "🔥"):
        assert (await alice.call("react", {"emoji": emoji}))["ok"]
    assert (await bob.call("react", {"emoji": "heart"}))["emoji"] == "heart"
    assert err(await bob.call("react", {"emoji": "<b>"}))["code"] == "VALIDATION"
    for c in (alice, bob):
        await wait_for(lambda c=c: (c.level("reactions") or {}).get("heart") == 3
                       and c.level("reactions")["fire"] == 1, what="reaction totals")
    assert not any(e.startswith("react") for e, _ in alice.events)  # never one event per reaction


async def _open_sale(host, units: int = 10, limit: int = 2) -> str:
    ack = await host.call("sale.schedule", {"product_id": "p1", "units": units, "limit": limit, "request_id": "s1"})
    assert ack["ok"], ack
    return ack["sale"]["id"]


async def test_comment_to_buy_reserves_once_per_message_within_limit(make_server, clients, token, bc, redis) -> None:
    a, b = await make_server(), await make_server()
    host = await clients(a.url, token("host", bc, "h1"))
    alice = await clients(b.url, token("viewer", bc, "alice"))
    sale_id = await _open_sale(host, units=10, limit=2)
    off = await alice.call("chat.send", {"text": "buy"})
    assert off["ok"] and "order" not in off  # comment-to-buy is off: just chat
    assert (await host.call("chat.commentbuy", {"enabled": True}))["enabled"] is True
    await wait_for(lambda: alice.of("chat.commentbuy"), what="chat.commentbuy")
    first = await alice.call("chat.send", {"text": "구매 2개", "request_id": "tap-1"})
    assert first["ok"] and first["order"]["ok"], first
    assert first["order"]["reservation"]["qty"] == 2 and first["order"]["sale_id"] == sale_id
    retry = await alice.call("chat.send", {"text": "구매 2개", "request_id": "tap-1"})  # the same message again
    assert retry["again"] and retry["message"]["id"] == first["message"]["id"]
    assert retry["order"]["reservation"]["id"] == first["order"]["reservation"]["id"]
    over = await alice.call("chat.send", {"text": "buy"})  # a new order above the lot's limit of 2
    assert over["ok"] and over["order"]["ok"] is False and over["order"]["error"]["code"] == "LIMIT_REACHED"
    holds = await Inventory(redis).holds_of(sale_id, "alice")
    assert [h.qty for h in holds] == [2]
    levels = await Inventory(redis).snapshot(sale_id)
    assert levels.available == 8
    bob = await clients(a.url, token("viewer", bc, "bob"))
    assert (await bob.call("chat.send", {"text": "sold x1"}))["order"]["reservation"]["qty"] == 1
    assert (await Inventory(redis).snapshot(sale_id)).available == 7
    assert len([m for m in alice.chat_lines() if m["user"] == "alice"]) <= 3  # a retry is not re-posted
    await wait_for(lambda: len([m for m in bob.chat_lines() if m["user"] == "bob"]) == 1, what="bob's line")
    async with aiohttp.ClientSession() as http, http.get(a.url + "/metrics") as resp:
        text = await resp.text()
    assert 'hawker_chat_orders_total{code="OK"}' in text and 'hawker_chat_orders_total{code="LIMIT_REACHED"}' in text


async def test_comment_to_buy_without_an_open_sale(make_server, clients, token, bc) -> None:
    s = await make_server()
    host = await clients(s.url, token("host", bc, "h1"))
    alice = await clients(s.url, token("viewer", bc, "alice"))
    assert err(await (await clients(s.url, token("moderator", bc, "m1"))).call("chat.commentbuy", {"enabled": True}))["code"] == "FORBIDDEN"
    await host.call("chat.commentbuy", {"enabled": True})
    ack = await alice.call("chat.send", {"text": "buy 1"})
    assert ack["ok"] and ack["order"]["ok"] is False and ack["order"]["error"]["code"] == "NO_OPEN_SALE"


async def test_broadcast_end_starts_the_chat_retention(make_server, clients, token, bc, redis) -> None:
    s = await make_server(chat_retention_s=600)
    host = await clients(s.url, token("host", bc, "h1"))
    assert (await host.call("chat.send", {"text": "thanks for watching"}))["ok"]
    assert await redis.ttl("chat:{b1}:msgs") == -1  # kept while the show runs
    assert (await host.call("broadcast.end"))["ok"]
    ttl = await redis.ttl("chat:{b1}:msgs")
    assert 0 < ttl <= 600
