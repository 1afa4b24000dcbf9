"""The chat library against a real Redis: every refusal code, moderation, history, Q&A, reactions."""
from __future__ import annotations

import asyncio

import pytest

from chat import Actor, ChatRefused, Message, ReactionTally
from chat.errors import (
    BANNED,
    BLOCKED_WORD,
    DUPLICATE,
    EMPTY,
    FORBIDDEN,
    LINK_NOT_ALLOWED,
    MUTED,
    NOT_A_QUESTION,
    NOT_FOUND,
    RATE_LIMITED,
    SLOW_MODE,
    TOO_LONG,
    VALIDATION,
)
from chat.keys import ChatKeys
from tests.chat.conftest import ALICE, BOB, HOST, MOD

BC = "b1"


async def refused(coro) -> ChatRefused:
    with pytest.raises(ChatRefused) as exc:
        await coro
    return exc.value


async def stream_len(redis) -> int:
    return await redis.xlen(ChatKeys(BC).stream)


async def test_send_stores_a_message_with_server_time(chat, redis) -> None:
    sec, usec = await redis.time()
    sent = await chat.send(BC, ALICE, "  hello\x00 world  ")
    m = sent.message
    assert (m.user, m.name, m.role, m.text, m.kind) == ("alice", "Alice", "viewer", "hello world", "chat")
    assert abs(m.ts - (sec * 1000 + usec // 1000)) < 60_000
    assert m.id.startswith(f"{m.ts}-")
    second = (await chat.send(BC, BOB, "again")).message
    assert second.sort_key > m.sort_key
    assert [x.id for x in await chat.recent(BC)] == [m.id, second.id]
    assert (await chat.send(BC, HOST, "welcome")).message.to_wire()["badge"] == "host"


async def test_html_payload_is_stored_and_read_back_verbatim(chat) -> None:
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)> &lt;b&gt;'
    sent = await chat.send(BC, ALICE, payload)
    assert sent.message.text == payload
    assert (await chat.recent(BC))[-1].text == payload


async def test_content_refusals_change_nothing(chat, redis) -> None:
    assert (await refused(chat.send(BC, ALICE, " \n\t "))).code == EMPTY
    assert (await refused(chat.send(BC, ALICE, "x" * 301))).code == TOO_LONG
    assert (await refused(chat.send(BC, ALICE, "you f u c k"))).code == BLOCKED_WORD
    assert (await refused(chat.send(BC, HOST, "ＦＵＣＫ"))).code == BLOCKED_WORD
    err = await refused(chat.send(BC, ALICE, "cheap at bit.ly/x"))
    assert err.code == LINK_NOT_ALLOWED and err.body()["domain"] == "bit.ly"
    assert (await refused(chat.send(BC, ALICE, "hi", kind="shout"))).code == VALIDATION
    assert await stream_len(redis) == 0
    await chat.send(BC, HOST, "our shop: https://shop.example/item")  # staff may post links


async def test_max_len_is_configurable(make_chat) -> None:
    chat = make_chat(max_len=10)
    await chat.send(BC, ALICE, "0123456789")
    assert (await refused(chat.send(BC, ALICE, "0123456789a"))).code == TOO_LONG


async def test_link_allow_list(make_chat) -> None:
    chat = make_chat(link_mode="allow", allowed_domains=("shop.example",))
    await chat.send(BC, ALICE, "see https://shop.example/p/1")
    assert (await refused(chat.send(BC, ALICE, "see https://evil.example.com"))).code == LINK_NOT_ALLOWED


async def test_duplicates_are_suppressed_per_user(chat, redis) -> None:
    await chat.send(BC, ALICE, "Great deal!")
    err = await refused(chat.send(BC, ALICE, "great   DEAL"))
    assert err.code == DUPLICATE and err.retry_after > 0
    assert (await refused(chat.send(BC, ALICE, "g r e a t deaaal!!"))).code == DUPLICATE
    await chat.send(BC, BOB, "Great deal!")  # another user may say it
    await chat.send(BC, ALICE, "another thing")
    await chat.send(BC, HOST, "Welcome")
    await chat.send(BC, HOST, "Welcome")  # staff are not suppressed
    assert await stream_len(redis) == 5


async def test_rate_limit_token_bucket_with_retry_after(make_chat, redis) -> None:
    chat = make_chat(rate_per_s=5.0, burst=3, dup_window_s=0)
    for i in range(3):
        await chat.send(BC, ALICE, f"m{i}")
    err = await refused(chat.send(BC, ALICE, "m3"))
    assert err.code == RATE_LIMITED and 0 < err.retry_after <= 200
    assert err.body()["retry_after"] == err.retry_after
    assert await stream_len(redis) == 3
    await chat.send(BC, BOB, "bob has his own bucket")
    await asyncio.sleep(err.retry_after / 1000 + 0.05)
    await chat.send(BC, ALICE, "m3")  # a token refilled


async def test_rate_limit_is_shared_by_nodes(make_chat) -> None:
    node_a = make_chat(rate_per_s=0.01, burst=4, dup_window_s=0)
    node_b = make_chat(rate_per_s=0.01, burst=4, dup_window_s=0)
    for i in range(4):
        await (node_a if i % 2 else node_b).send(BC, ALICE, f"m{i}")
    assert (await refused(node_a.send(BC, ALICE, "x"))).code == RATE_LIMITED
    assert (await refused(node_b.send(BC, ALICE, "y"))).code == RATE_LIMITED


async def test_staff_get_a_larger_bucket(make_chat) -> None:
    chat = make_chat(rate_per_s=0.01, burst=2, staff_factor=5, dup_window_s=0)
    for i in range(10):
        await chat.send(BC, MOD, f"m{i}")
    assert (await refused(chat.send(BC, MOD, "x"))).code == RATE_LIMITED


async def test_slow_mode(chat, redis) -> None:
    assert (await refused(chat.set_slow_mode(BC, ALICE, 5))).code == FORBIDDEN
    assert (await refused(chat.set_slow_mode(BC, HOST, -1))).code == VALIDATION
    await chat.set_slow_mode(BC, HOST, 30)
    await chat.send(BC, ALICE, "first")
    err = await refused(chat.send(BC, ALICE, "second"))
    assert err.code == SLOW_MODE and 25_000 < err.retry_after <= 30_000
    await chat.send(BC, BOB, "bob's first")
    await chat.send(BC, HOST, "host one")
    await chat.send(BC, HOST, "host two")  # staff are not slowed
    assert (await chat.state(BC)).slow_mode_s == 30
    await chat.set_slow_mode(BC, HOST, 0)
    await chat.send(BC, ALICE, "second")


async def test_slow_mode_expires(chat) -> None:
    await chat.set_slow_mode(BC, MOD, 1)
    await chat.send(BC, ALICE, "one")
    err = await refused(chat.send(BC, ALICE, "two"))
    assert err.code == SLOW_MODE
    await asyncio.sleep(err.retry_after / 1000 + 0.05)
    await chat.send(BC, ALICE, "two")


async def test_timeout_mutes_then_lifts(chat) -> None:
    assert (await refused(chat.timeout(BC, ALICE, "bob", 60))).code == FORBIDDEN
    assert (await refused(chat.timeout(BC, MOD, "bob", "60"))).code == VALIDATION
    assert (await refused(chat.timeout(BC, MOD, "mod1", 60))).code == VALIDATION
    until = await chat.timeout(BC, MOD, "bob", 60)
    err = await refused(chat.send(BC, BOB, "let me talk"))
    assert err.code == MUTED and 55_000 < err.retry_after <= 60_000
    assert until > 0
    await chat.send(BC, ALICE, "alice is fine")
    assert await chat.timeout(BC, MOD, "bob", 0) == 0
    await chat.send(BC, BOB, "let me talk")


async def test_short_timeout_runs_out(chat) -> None:
    await chat.timeout(BC, HOST, "bob", 1)
    err = await refused(chat.send(BC, BOB, "hi"))
    assert err.code == MUTED
    await asyncio.sleep(err.retry_after / 1000 + 0.05)
    await chat.send(BC, BOB, "hi")


async def test_ban_persists_across_nodes_until_unban(make_chat) -> None:
    a, b = make_chat(), make_chat()
    assert (await refused(a.ban(BC, ALICE, "bob"))).code == FORBIDDEN
    await a.ban(BC, MOD, "bob")
    for node in (a, b):
        err = await refused(node.send(BC, BOB, "hello?"))
        assert err.code == BANNED and "retry_after" not in err.body()
    assert await b.is_banned(BC, "bob") and await b.bans(BC) == {"bob": "mod1"}
    await b.send("other-broadcast", BOB, "a ban is per broadcast")
    assert await b.unban(BC, HOST, "bob")
    await a.send(BC, BOB, "hello?")


async def test_ban_and_timeout_do_not_silence_staff(chat) -> None:
    await chat.ban(BC, HOST, "mod1")
    await chat.timeout(BC, HOST, "mod1", 60)
    await chat.send(BC, MOD, "still here")


async def test_delete_hides_from_viewers_flags_for_staff(chat) -> None:
    keep = (await chat.send(BC, ALICE, "nice")).message
    bad = (await chat.send(BC, BOB, "spam spam")).message
    assert (await refused(chat.delete(BC, ALICE, bad.id))).code == FORBIDDEN
    removal = await chat.delete(BC, MOD, bad.id)
    assert removal.fresh and removal.message_id == bad.id and removal.by == "mod1" and removal.at >= bad.ts
    assert not (await chat.delete(BC, HOST, bad.id)).fresh  # idempotent
    assert [m.id for m in await chat.recent(BC)] == [keep.id]
    staff_view = await chat.recent(BC, staff=True)
    assert [(m.id, m.removed) for m in staff_view] == [(keep.id, False), (bad.id, True)]
    assert staff_view[1].to_wire()["removed"] is True
    assert [m.id for m in await chat.history(BC, 0)] == [keep.id]
    assert len(await chat.history(BC, 0, staff=True)) == 2
    assert (await refused(chat.delete(BC, MOD, "1-0"))).code == NOT_FOUND
    assert (await refused(chat.delete(BC, MOD, "<bad>"))).code == VALIDATION


async def test_recent_fills_past_removed_messages(chat) -> None:
    ids = [(await chat.send(BC, ALICE, f"msg {i}")).message.id for i in range(30)]
    for mid in ids[-15:]:
        await chat.delete(BC, MOD, mid)
    got = await chat.recent(BC, 10)
    assert [m.id for m in got] == ids[5:15]
    assert len(await chat.recent(BC, 10, staff=True)) == 10


async def test_pin_and_unpin(chat) -> None:
    m1 = (await chat.send(BC, ALICE, "look at this")).message
    m2 = (await chat.send(BC, BOB, "what size?"), )[0].message
    assert (await refused(chat.pin(BC, ALICE, m1.id))).code == FORBIDDEN
    pinned = await chat.pin(BC, MOD, m1.id)
    assert pinned.id == m1.id and pinned.text == "look at this"
    assert (await chat.state(BC)).pinned.id == m1.id
    await chat.pin(BC, HOST, m2.id)
    assert (await chat.state(BC)).pinned.id == m2.id
    await chat.delete(BC, MOD, m2.id)  # removing the pinned message unpins it
    assert (await chat.state(BC)).pinned is None
    assert (await refused(chat.pin(BC, MOD, m2.id))).code == NOT_FOUND
    await chat.pin(BC, MOD, m1.id)
    await chat.unpin(BC, MOD)
    assert (await chat.state(BC)).pinned is None


async def test_questions_answered_by_host(chat) -> None:
    q = (await chat.send(BC, ALICE, "Does it come in blue?", kind="question")).message
    c = (await chat.send(BC, BOB, "love it")).message
    assert q.kind == "question"
    assert (await refused(chat.answer(BC, ALICE, q.id))).code == FORBIDDEN
    assert (await refused(chat.answer(BC, HOST, c.id))).code == NOT_A_QUESTION
    answered = await chat.answer(BC, HOST, q.id)
    assert answered.answered and answered.id == q.id
    qs = await chat.questions(BC)
    assert [(m.id, m.answered) for m in qs] == [(q.id, True)]
    assert [m.answered for m in await chat.recent(BC)] == [True, False]
    await chat.pin(BC, HOST, q.id)
    assert (await chat.state(BC)).pinned.kind == "question"


async def test_comment_buy_orders_only_when_enabled(chat) -> None:
    assert (await chat.send(BC, ALICE, "buy 2")).order is None
    assert (await refused(chat.set_comment_buy(BC, MOD, True))).code == FORBIDDEN
    assert (await refused(chat.set_comment_buy(BC, HOST, "yes"))).code == VALIDATION
    await chat.set_comment_buy(BC, HOST, True)
    first = await chat.send(BC, ALICE, "구매 2개")
    assert first.order is not None and first.order.qty == 2
    again = await chat.send(BC, ALICE, "구매 2개")  # a second order is not a duplicate
    assert again.order is not None and again.message.id != first.message.id
    assert (await chat.send(BC, ALICE, "I would buy this")).order is None
    assert (await chat.send(BC, ALICE, "buy", kind="question")).order is None
    assert (await chat.state(BC)).comment_buy


async def test_system_messages_and_snapshot(chat) -> None:
    await chat.send(BC, ALICE, "hi")
    bad = (await chat.send(BC, BOB, "bad")).message
    await chat.delete(BC, MOD, bad.id)
    sysmsg = await chat.post_system(BC, "The sale is open")
    assert sysmsg.kind == "system" and sysmsg.role == "system"
    viewer = await chat.snapshot(BC)
    staff = await chat.snapshot(BC, staff=True)
    assert [m["text"] for m in viewer["messages"]] == ["hi", "The sale is open"]
    assert [m.get("removed", False) for m in staff["messages"]] == [False, True, False]
    assert set(viewer) >= {"messages", "slow_mode", "pinned", "comment_buy", "reactions"}


async def test_history_is_capped_and_closed_with_retention(make_chat, redis) -> None:
    chat = make_chat(history_cap=50, dup_window_s=0, retention_s=3600)
    for i in range(400):
        await chat.send(BC, Actor(f"u{i}", "U", "viewer"), f"m{i}")
    n = await redis.xlen(ChatKeys(BC).stream)
    assert 50 <= n < 400
    await chat.close(BC)
    assert 0 < await redis.ttl(ChatKeys(BC).stream) <= 3600


async def test_reactions_are_totals_from_all_nodes(redis) -> None:
    a, b = ReactionTally(per_user_per_s=3), ReactionTally()
    for _ in range(3):
        a.add(BC, "alice", "heart", 5_000)
    err = pytest.raises(ChatRefused, a.add, BC, "alice", "❤️", 5_100)
    assert err.value.code == RATE_LIMITED and err.value.retry_after == 900
    a.add(BC, "alice", "❤", 6_000)  # the next second, and the glyph without variation selector
    b.add(BC, "bob", "🔥", 6_000)
    assert pytest.raises(ChatRefused, b.add, BC, "bob", "💩", 6_000).value.code == VALIDATION
    assert a.pending() == [BC]
    totals_a = await a.flush(redis, BC)
    totals_b = await b.flush(redis, BC)
    assert totals_a["heart"] == 4 and totals_a["fire"] == 0
    assert totals_b["heart"] == 4 and totals_b["fire"] == 1
    assert await a.flush(redis, BC) is None


async def test_message_from_wire_round_trip() -> None:
    m = Message("1700000000000-3", "u", "N", "moderator", "t", 1700000000000, "question", answered=True)
    wire = m.to_wire()
    assert wire["badge"] == "mod" and wire["answered"] is True and "removed" not in wire
    assert m.sort_key == (1700000000000, 3)


async def test_request_id_makes_send_idempotent(make_chat, redis) -> None:
    chat = make_chat(rate_per_s=0.01, burst=1)
    await chat.set_comment_buy(BC, HOST, True)
    first = await chat.send(BC, ALICE, "buy 2", request_id="r-1")
    again = await chat.send(BC, ALICE, "buy 2", request_id="r-1")  # the bucket is empty: still the first answer
    assert again.again and not first.again
    assert again.message == first.message and again.order == first.order
    assert await stream_len(redis) == 1
    assert (await refused(chat.send(BC, ALICE, "buy 2", request_id="r-2"))).code == RATE_LIMITED
    assert (await refused(chat.send(BC, ALICE, "x", request_id="bad id!"))).code == VALIDATION


async def test_token_bucket_is_atomic_under_concurrency_on_two_nodes(make_chat, redis) -> None:
    a = make_chat(rate_per_s=0.001, burst=7, dup_window_s=0)
    b = make_chat(rate_per_s=0.001, burst=7, dup_window_s=0)
    results = await asyncio.gather(*((a if i % 2 else b).send(BC, ALICE, f"m{i}") for i in range(40)),
                                   return_exceptions=True)
    ok = [r for r in results if not isinstance(r, Exception)]
    codes = {r.code for r in results if isinstance(r, ChatRefused)}
    assert len(ok) == 7 and codes == {RATE_LIMITED}
    assert await stream_len(redis) == 7


async def test_rate_limited_sender_is_refused_locally_until_retry_after(make_chat, redis) -> None:
    chat = make_chat(rate_per_s=0.01, burst=1, dup_window_s=0)
    await chat.send(BC, ALICE, "one")
    first = await refused(chat.send(BC, ALICE, "two"))
    assert first.code == RATE_LIMITED
    await redis.delete(ChatKeys(BC).user("alice"))  # Redis would now accept: this node still knows better
    again = await refused(chat.send(BC, ALICE, "three"))
    assert again.code == RATE_LIMITED and 0 < again.retry_after <= first.retry_after
    await chat.send(BC, BOB, "others are not affected")
    await chat.send(BC, ALICE, "with a request id the cache is skipped", request_id="r1")
