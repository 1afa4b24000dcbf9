"""A flash-sale spike from several OS processes, and a redis-server crash between reserve and
confirm with AOF appendfsync always."""
from __future__ import annotations

import asyncio
import multiprocessing as mp
import random
from collections import Counter

import pytest
import redis.asyncio as aioredis

from inventory import Inventory, LotSpec, Refusal, ReservationState, StockLevels
from tests.redis_proc import RedisProcess, client_for

PROCS = 2
ATTEMPTS = 10_000
UNITS = 100
LIMIT = 2
USERS = 1_500


def _spike_worker(url: str, lot_id: str, worker: int, n: int, barrier, out) -> None:
    async def main() -> list[tuple[str, int, str, str]]:
        client = client_for(url, max_connections=32)
        inv = Inventory(client)
        rng = random.Random(worker)
        plan = [(f"user{rng.randrange(USERS)}", rng.choice((1, 1, 2))) for _ in range(n)]
        await inv.load_scripts()
        barrier.wait()  # every process fires at the same moment

        async def attempt(i: int, user: str, qty: int) -> tuple[str, int, str, str]:
            res = await inv.reserve(lot_id, user, qty, f"w{worker}-{i}")
            if res.ok:
                return user, res.reservation.qty, "ok", res.reservation.id
            return user, qty, res.code.value, ""

        answers = await asyncio.gather(*(attempt(i, u, q) for i, (u, q) in enumerate(plan)))
        await client.aclose()
        return answers

    out.put(asyncio.run(main()))


def _get_result(out, procs):
    """Next worker's answers; fail at once if a worker died instead of waiting for ever."""
    import queue

    for _ in range(480):
        try:
            return out.get(True, 0.5)
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                raise AssertionError(f"a spike worker died: {[p.exitcode for p in procs]}") from None
    raise AssertionError("spike workers did not answer in 240 s")


@pytest.mark.slow
async def test_spike_from_two_processes_never_oversells(inv: Inventory, redis_url: str) -> None:
    await inv.create_lot(LotSpec("spike", "HOT", UNITS, 4999, "EUR", per_user_limit=LIMIT, hold_s=600))
    await inv.open("spike")
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(PROCS), ctx.Queue()
    procs = [ctx.Process(target=_spike_worker, args=(redis_url, "spike", w, ATTEMPTS // PROCS, barrier, out))
             for w in range(PROCS)]
    for p in procs:
        p.start()
    answers: list = []
    loop = asyncio.get_running_loop()
    for _ in procs:
        answers.extend(await loop.run_in_executor(None, _get_result, out, procs))
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert len(answers) == ATTEMPTS  # every attempt answered
    codes = Counter(a[2] for a in answers)
    assert set(codes) <= {"ok", Refusal.SOLD_OUT.value, Refusal.LIMIT_REACHED.value}, codes
    won = [a for a in answers if a[2] == "ok"]
    assert sum(a[1] for a in won) == UNITS  # exactly the stock, not one more
    assert len({a[3] for a in won}) == len(won)
    per_user = Counter()
    for user, qty, _, _ in won:
        per_user[user] += qty
    assert max(per_user.values()) <= LIMIT
    assert await inv.snapshot("spike") == StockLevels(UNITS, 0, UNITS, 0, 0)
    audit = await inv.audit("spike")
    assert audit.ok and audit.oversold == 0 and audit.max_user_units <= LIMIT, audit.problems


@pytest.mark.slow
async def test_hold_survives_a_crash_with_aof_always() -> None:
    proc = RedisProcess(appendfsync="always").start()
    clients: list[aioredis.Redis] = []

    def fresh() -> Inventory:
        """A new client, as a restarted app process would have (scripts reload on NOSCRIPT)."""
        clients.append(aioredis.Redis.from_url(proc.url))
        return Inventory(clients[-1])

    try:
        inv = fresh()
        await inv.create_lot(LotSpec("dur", "SKU", 3, 100, "EUR", per_user_limit=2, hold_s=600))
        await inv.open("dur")
        r = (await inv.reserve("dur", "alice", 2, "click")).reservation
        assert r is not None

        proc.restart(crash=True)  # SIGKILL right after reserve: only what reached the AOF survives
        inv = fresh()
        kept = await inv.get_reservation("dur", r.id)
        assert kept == r  # same hold, same expiry, still HELD
        assert await inv.snapshot("dur") == StockLevels(3, 1, 2, 0, 0)
        assert (await inv.reserve("dur", "alice", 2, "click")).reservation.id == r.id
        assert (await inv.begin_payment("dur", r.id, "alice")).ok

        proc.restart(crash=True)  # and again between begin_payment and confirm
        inv = fresh()
        assert (await inv.get_reservation("dur", r.id)).state is ReservationState.PAYING
        sold = await inv.confirm("dur", r.id, "order-1")
        assert sold.ok and sold.levels == StockLevels(3, 1, 0, 2, 0)
        audit = await inv.audit("dur")
        assert audit.ok and audit.oversold == 0, audit.problems
        assert (await inv.reserve("dur", "alice", 1, "again")).code is Refusal.LIMIT_REACHED
    finally:
        for c in clients:
            await c.aclose()
        proc.cleanup()


@pytest.mark.slow
async def test_same_client_carries_on_after_a_restart() -> None:
    """A batch whose connection died is sent again on a new one; scripts reload on NOSCRIPT."""
    proc = RedisProcess(appendfsync="always").start()
    client = aioredis.Redis.from_url(proc.url)
    try:
        inv = Inventory(client)
        await inv.create_lot(LotSpec("rs", "SKU", 5, 100, "EUR", per_user_limit=5, hold_s=600))
        await inv.open("rs")
        first = await inv.reserve("rs", "alice", 1, "a")
        proc.restart(crash=True)
        again = await asyncio.gather(*(inv.reserve("rs", "alice", 1, r) for r in ("a", "b", "c")))
        assert [r.ok for r in again] == [True, True, True]
        assert again[0].reservation.id == first.reservation.id
        assert inv.pipeline.retries >= 1
        assert await inv.snapshot("rs") == StockLevels(5, 2, 3, 0, 0)
        assert (await inv.audit("rs")).ok
    finally:
        await client.aclose()
        proc.cleanup()
