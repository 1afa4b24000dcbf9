"""Failover without losing a sale: with HAWKER_REDIS_REPLICAS_ACK a stock change is acknowledged
only once a replica has it (WAIT), else UNAVAILABLE (retry-safe); sentinel mode follows the new
master. Real servers: a master, replicas and 3 sentinels started here (tests/redis_proc.py)."""
from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest

from inventory import Inventory, LotSpec
from live.store import connect
from redislayer import UNAVAILABLE, overload_code
from redislayer.errors import ReplicaAckTimeout
from tests.redis_proc import RedisSentinelProcess


@pytest.fixture
def sentinel() -> Iterator[RedisSentinelProcess]:
    """Two replicas: after a failover one is left to confirm writes to the new master."""
    proc = RedisSentinelProcess(replicas=2).start()
    yield proc
    proc.cleanup()


async def _lot(inv: Inventory, lot: str, total: int) -> None:
    now = await inv.server_time_ms()
    await inv.create_lot(LotSpec(lot, "SKU", total=total, unit_price=100, currency="EUR", per_user_limit=1,
                                 hold_s=600, opens_at_ms=now - 1))


def _replica_pids(s: RedisSentinelProcess) -> list[int]:
    return [r.proc.pid for r in s.replica_procs if r.proc is not None]


async def test_a_change_no_replica_confirmed_answers_unavailable_and_the_retry_finds_it(sentinel) -> None:
    """Replicas frozen: the reserve is made on the master but not confirmed -> UNAVAILABLE (not OK);
    reads still answer. Replicas back: the retry with the same request id gets that reservation."""
    client = connect(sentinel.url, timeout_s=2.0, replicas_ack=1, ack_timeout_ms=150)
    try:
        inv = Inventory(client)
        await _lot(inv, "ack", 5)
        first = await inv.reserve("ack", "alice", 1, "r1")
        assert first.ok and inv.pipeline.ack_failures == 0
        for pid in _replica_pids(sentinel):
            os.kill(pid, signal.SIGSTOP)
        try:
            with pytest.raises(ReplicaAckTimeout) as caught:
                await inv.reserve("ack", "bob", 1, "r1")
            over = overload_code(caught.value)
            assert over is not None and over.code == UNAVAILABLE
            assert (await inv.snapshot("ack")).held == 2  # made on the master, just not confirmed
            assert inv.pipeline.ack_failures == 1
        finally:
            for pid in _replica_pids(sentinel):
                os.kill(pid, signal.SIGCONT)
        again = await inv.reserve("ack", "bob", 1, "r1")
        assert again.ok and (await inv.snapshot("ack")).held == 2
        assert [r.user for r in await inv.reservations("ack")].count("bob") == 1
    finally:
        await client.aclose()


async def test_without_the_ack_a_failover_loses_an_acknowledged_hold_with_it_none(sentinel) -> None:
    """The replicas miss the last writes (frozen, their links cut), then the master dies. The hold
    acknowledged without HAWKER_REDIS_REPLICAS_ACK is gone after the failover although its buyer
    was told OK; with the ack the buyer was told UNAVAILABLE, and its retry on the new master gets
    a hold."""
    plain = connect(sentinel.sentinel_url, mode="sentinel", timeout_s=2.0)
    acked = connect(sentinel.sentinel_url, mode="sentinel", timeout_s=2.0, replicas_ack=1, ack_timeout_ms=150)
    try:
        inv_plain, inv_acked = Inventory(plain), Inventory(acked)
        await _lot(inv_plain, "lost", 5)
        await inv_acked.snapshot("lost")  # both clients connected before the freeze
        for pid in _replica_pids(sentinel):
            os.kill(pid, signal.SIGSTOP)
        try:  # frozen replicas cannot reconnect: what the master does now reaches no replica
            await plain.execute_command("CLIENT", "KILL", "TYPE", "replica")
            told = await inv_plain.reserve("lost", "alice", 1, "r1")
            assert told.ok  # acknowledged without any replica
            with pytest.raises(ReplicaAckTimeout):
                await inv_acked.reserve("lost", "bob", 1, "r1")
            old = await asyncio.to_thread(sentinel.kill_master)
        finally:
            for pid in _replica_pids(sentinel):
                os.kill(pid, signal.SIGCONT)
        await asyncio.to_thread(sentinel.wait_failover, old)
        levels = await _retrying(lambda: inv_plain.snapshot("lost"))
        assert levels is not None and levels.held == 0  # alice's acknowledged hold did not survive
        bob = await _retrying(lambda: inv_acked.reserve("lost", "bob", 1, "r1"))
        assert bob.ok  # told UNAVAILABLE before, the retry holds a unit on the new master
    finally:
        await plain.aclose()
        await acked.aclose()


async def _retrying(call, timeout_s: float = 30.0):
    """A client's retry loop: BUSY/UNAVAILABLE are retried, anything else is a failure."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            return await call()
        except Exception as exc:  # noqa: BLE001 - re-raised below unless it is BUSY/UNAVAILABLE
            if overload_code(exc) is None or loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_the_master_killed_mid_sale_loses_no_confirmed_hold_or_order(sentinel) -> None:
    """150 buyers for 60 units, a third of the winners paying, the master SIGKILLed mid-sale and
    the sentinels promoting a replica. Every buyer told OK still holds (or bought) exactly its
    unit on the new master, every confirmed payment is SOLD, no unit is sold twice and the audit
    balances."""
    client = connect(sentinel.sentinel_url, mode="sentinel", timeout_s=2.0, replicas_ack=1, ack_timeout_ms=500)
    try:
        inv = Inventory(client)
        await _lot(inv, "drop", 60)
        told: dict[str, str] = {}  # user -> reservation id acknowledged OK
        paid: dict[str, str] = {}  # user -> order id acknowledged OK
        refused: list[str] = []

        async def buyer(i: int) -> None:
            user = f"u{i}"
            r = await _retrying(lambda: inv.reserve("drop", user, 1, f"req-{i}"))
            if not r.ok:
                refused.append(r.code.value)
                return
            told[user] = r.reservation.id
            if i % 3 == 0:
                rid = r.reservation.id
                assert (await _retrying(lambda: inv.begin_payment("drop", rid, user))).ok
                assert (await _retrying(lambda: inv.confirm("drop", rid, f"o-{user}"))).ok
                paid[user] = f"o-{user}"

        killed: list[int] = []

        async def sale() -> None:
            for w in range(15):
                if w == 5:
                    killed.append(await asyncio.to_thread(sentinel.kill_master))
                await asyncio.gather(*(buyer(w * 10 + k) for k in range(10)))

        await sale()
        assert killed and sentinel.master_port() != killed[0]  # the sale went on on a promoted replica
        assert len(told) + len(refused) == 150 and set(refused) <= {"SOLD_OUT"}
        assert len(told) == 60  # every unit found a buyer, none twice
        reservations = {r.id: r for r in await inv.reservations("drop")}
        for user, rid in told.items():
            r = reservations.get(rid)
            assert r is not None and r.user == user, f"{user}'s acknowledged hold {rid} was lost"
            assert r.state.value == ("SOLD" if user in paid else "HELD"), (user, r.state)
            if user in paid:
                assert r.order_id == paid[user]
        live = [r for r in reservations.values() if r.state.value in ("HELD", "SOLD")]
        assert len(live) == 60 and len({r.user for r in live}) == 60
        audit = await inv.audit("drop")
        assert audit.ok and audit.levels.sold == len(paid) and audit.levels.held == 60 - len(paid)
        assert audit.levels.available == 0
    finally:
        await client.aclose()



async def test_a_server_through_the_sentinels_answers_unavailable_until_a_replica_has_the_hold(
        sentinel, make_server, token) -> None:
    """`hawker serve` with HAWKER_REDIS_MODE=sentinel and HAWKER_REDIS_REPLICAS_ACK=1: a buyer's
    reserve over the socket answers UNAVAILABLE with retry_after (never OK, never INTERNAL) while no
    replica confirms, and the player's retry with the same request_id gets that one hold."""
    import aiohttp
    import redis.asyncio as aioredis

    from shop.broadcasts import BroadcastStore
    from tests.hub.conftest import PRODUCTS
    from tests.hub.test_sale_moment import _light, _sale

    plain = aioredis.Redis.from_url(sentinel.url)
    await BroadcastStore(plain).ensure("b1", title="Drop", host="h1", products=PRODUCTS)
    await plain.aclose()
    node = await make_server(redis_url=sentinel.sentinel_url, redis_mode="sentinel", redis_replicas_ack=1,
                             redis_replicas_ack_timeout_ms=150)
    async with aiohttp.ClientSession() as session:
        host = await _light(session, node.url, token("host", "b1", "h1"), "json")
        buyer = await _light(session, node.url, token("viewer", "b1", "u1"), "json")
        sale = await _sale(host, units=3)
        for pid in _replica_pids(sentinel):
            os.kill(pid, signal.SIGSTOP)
        try:
            ack = await buyer.call("sale.reserve", {"sale_id": sale, "qty": 1, "request_id": "once"})
            assert not ack["ok"] and ack["error"]["code"] == "UNAVAILABLE", ack
            assert ack["error"]["retry_after"] > 0
        finally:
            for pid in _replica_pids(sentinel):
                os.kill(pid, signal.SIGCONT)
        again = await buyer.call("sale.reserve", {"sale_id": sale, "qty": 1, "request_id": "once"})
        assert again["ok"], again
        audit = await node.app["node"].sales.inv.audit(sale)
        assert audit.ok and audit.levels.held == 1
        await asyncio.gather(buyer.close(), host.close())


def test_a_sentinel_url_is_parsed_and_its_password_never_shown() -> None:
    from live.redis_gate import where
    from redislayer.client import parse_sentinel_url
    from tests.foundation.procs import run_hawker

    url = "redis+sentinel://:s3cret@127.0.0.1:26379,127.0.0.1:26380/shop/2"
    assert parse_sentinel_url(url) == ([("127.0.0.1", 26379), ("127.0.0.1", 26380)], "shop", 2, "s3cret")
    assert "s3cret" not in where(url)
    with pytest.raises(ValueError, match="names no master"):
        parse_sentinel_url("redis+sentinel://127.0.0.1:26379")
    done = run_hawker("serve", env={"HAWKER_SECRET": "x" * 40, "HAWKER_REDIS_MODE": "sentinel",
                                    "HAWKER_REDIS_URL": "redis://:s3cret@127.0.0.1:6379/0"}, timeout=60)
    assert done.returncode == 2 and "redis+sentinel://" in done.stderr, done.stderr[-1000:]
    assert "Traceback" not in done.stderr and "s3cret" not in done.stderr
