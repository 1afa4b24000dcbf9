"""Merchant webhooks against a real aiohttp receiver: signed, retried, claimed, dead-lettered."""
from __future__ import annotations

import asyncio

import pytest

from checkout import Webhooks
from checkout.egress import EgressPolicy
from checkout.webhooks import GROUP, STREAM
from tests.checkout.hooks import SECRET
from tests.waiting import wait_for as wait_until

# The receiver is on loopback over plain http: what HAWKER_WEBHOOK_ALLOW_PRIVATE=1 and
# HAWKER_WEBHOOK_HTTP_HOSTS=127.0.0.1 allow on a development server (tests/checkout/test_egress.py
# holds the strict default).
DEV_POLICY = EgressPolicy.from_settings(allow_private=True, http_hosts="127.0.0.1")


def hooks(redis, name: str, **kw) -> Webhooks:
    kw.setdefault("policy", DEV_POLICY)
    return Webhooks(redis, consumer=name, base_delay_s=0.1, max_delay_s=0.5, poll_ms=50, **kw)


async def test_receiver_down_then_up_gets_every_event_once_by_id(redis, receiver):
    wh = hooks(redis, "n1")
    await wh.register("b1", receiver.url, SECRET)
    receiver.down = True
    await wh.start()
    try:
        ids = [await wh.emit("order.created", "b1", {"order": {"id": f"o{i}"}}) for i in range(5)]
        await wait_until(lambda: receiver.attempts >= 10)  # every event failed at least once... or twice
        receiver.down = False
        await wait_until(lambda: len({e["id"] for e in receiver.accepted}) == 5)
    finally:
        await wh.stop()
    assert receiver.bad_signatures == 0
    assert sorted(e["id"] for e in receiver.accepted) == sorted(ids)  # each accepted once
    assert receiver.seen_ids == set(ids)  # retries carried the same ids as the first attempts
    assert {e["data"]["order"]["id"] for e in receiver.accepted} == {f"o{i}" for i in range(5)}
    assert await wh.dead_letters("b1") == []


async def test_emit_with_the_same_event_id_queues_once(redis, receiver):
    wh = hooks(redis, "n1")
    await wh.register("b1", receiver.url, SECRET, ["sale.soldout"])
    await wh.start()
    try:
        for _ in range(3):
            await wh.emit("sale.soldout", "b1", {"sale_id": "s1"}, event_id="sale.soldout:s1")
        await wh.emit("order.created", "b1", {"order": {}})  # not subscribed: not sent
        await wait_until(lambda: len(receiver.accepted) == 1)
        await asyncio.sleep(0.5)
    finally:
        await wh.stop()
    assert [e["id"] for e in receiver.accepted] == ["sale.soldout:s1"]


async def test_a_crashed_workers_pending_delivery_is_claimed_by_another(redis, receiver):
    a = hooks(redis, "node-a")
    await a.register("b1", receiver.url, SECRET)
    await redis.delete(STREAM)
    await redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    event_id = await a.emit("order.created", "b1", {"order": {"id": "o1"}})
    # node A reads the delivery and dies before handling it: it stays pending under A's name
    got = await redis.xreadgroup(GROUP, "node-a", {STREAM: ">"}, count=10)
    assert got and len(got[0][1]) == 1
    b = hooks(redis, "node-b", claim_idle_ms=200)
    await asyncio.sleep(0.3)
    await b.start()
    try:
        await wait_until(lambda: len(receiver.accepted) == 1)
    finally:
        await b.stop()
    assert receiver.accepted[0]["id"] == event_id
    pending = await redis.xpending(STREAM, GROUP)
    assert pending["pending"] == 0


async def test_dead_letter_after_bounded_attempts_then_redeliver(redis, receiver):
    wh = hooks(redis, "n1", max_attempts=3)
    await wh.register("b1", receiver.url, SECRET)
    receiver.down = True
    await wh.start()
    try:
        event_id = await wh.emit("order.refunded", "b1", {"order": {"id": "o9"}})
        await wait_until(lambda: receiver.attempts >= 3)
        dead = []

        async def poll() -> None:
            nonlocal dead
            while not dead:
                dead = await wh.dead_letters("b1")
                await asyncio.sleep(0.05)

        await asyncio.wait_for(poll(), 30)
        assert receiver.attempts == 3  # bounded
        assert dead[0]["event_id"] == event_id and dead[0]["attempt"] == 3 and dead[0]["error"] == "DELIVERY_FAILED"
        receiver.down = False
        assert await wh.redeliver("b1", dead[0]["id"])
        assert not await wh.redeliver("b1", dead[0]["id"])  # once
        await wait_until(lambda: len(receiver.accepted) == 1)
    finally:
        await wh.stop()
    assert receiver.accepted[0]["id"] == event_id
    assert await wh.dead_letters("b1") == []


async def test_registration_validates(redis):
    wh = hooks(redis, "n1")
    from checkout import WebhookError

    for url, secret, events in [("ftp://x", SECRET, None), ("http://ok.test/h", "short", None),
                                ("http://ok.test/h", SECRET, ["order.eaten"]), (None, SECRET, None)]:
        with pytest.raises(WebhookError):
            await wh.register("b1", url, secret, events)
    assert await wh.endpoints("b1") == []
