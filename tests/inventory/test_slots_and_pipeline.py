"""Cluster readiness (every script touches one slot) and the auto-pipeline (one round trip per tick,
NOSCRIPT recovered)."""
from __future__ import annotations

import asyncio
import re

import pytest
from redis.crc import key_slot

from inventory import Inventory, Refusal, StockLevels, changed_channel, keys_for
from inventory.lua import PRELUDE, SCRIPTS, source
from tests.conftest import CLUSTER
from tests.redis_proc import monitored

KEY_VARS = {"KM", "KR", "KX", "KU", "KH", "KQ", "KW", "KWU", "KE"}
KEYLESS = {"TIME"}


@pytest.mark.parametrize("lot_id", ["1", "drop-2026", "a.b:c_d", "x" * 64, "lot:{}".replace("{}", "")])
def test_all_keys_of_a_lot_share_one_slot(lot_id: str) -> None:
    keys = keys_for(lot_id)
    assert len(keys) == 9 and len(set(keys)) == 9
    assert all("{lot:%s}" % lot_id in k for k in keys)
    assert len({key_slot(k.encode()) for k in keys}) == 1


def test_scripts_only_touch_the_keys_they_are_given() -> None:
    """Every redis.call names its key through one of the KEYS variables: no key is built in Lua,
    so what a script touches is exactly keys_for(lot) (one slot, checked above)."""
    assert "KEYS[" not in "".join(SCRIPTS.values())  # bodies go through the prelude's names
    assert re.findall(r"KEYS\[(\d)\]", PRELUDE) == [str(i) for i in range(1, 10)]
    calls = 0
    for name in SCRIPTS:
        for cmd, first in re.findall(r"redis\.call\('(\w+)'(?:,\s*([^,)]+))?", source(name)):
            calls += 1
            if cmd in KEYLESS:
                continue
            if cmd == "SPUBLISH":  # the watcher's wake: a sharded channel in the lot's own slot
                assert first.strip() == "'inv:changed:{lot:' .. lot .. '}'", f"{name}: SPUBLISH to {first}"
                continue
            assert cmd != "PUBLISH", f"{name}: a classic PUBLISH is copied to every node of a cluster"
            assert first.strip() in KEY_VARS, f"{name}: redis.call('{cmd}', {first}) names a key that is not given"
    assert calls > 50


@pytest.mark.skipif(CLUSTER, reason="MONITOR sees one node of a cluster; the slot check runs on one server")
async def test_keys_touched_at_run_time_are_one_slot(inv: Inventory, make_lot, redis_url) -> None:
    """MONITOR every command the scripts run during a full scenario on two lots: the commands of
    one script run (a contiguous run of 'lua' entries) all name keys of one lot, in one slot."""
    async with monitored(redis_url) as seen:
        lots = [await make_lot(1, per_user_limit=1, hold_s=60), await make_lot(2, per_user_limit=2)]
        for lot in lots:
            a = (await inv.reserve(lot.lot_id, "alice", 1, "r")).reservation
            await inv.reserve(lot.lot_id, "zed", lot.total, "r")
            await inv.join_waitlist(lot.lot_id, "bob", 1)
            await inv.extend(lot.lot_id, a.id, "alice")
            await inv.begin_payment(lot.lot_id, a.id, "alice")
            await inv.abort_payment(lot.lot_id, a.id)
            await inv.release(lot.lot_id, a.id, "alice")
            await inv.adjust_total(lot.lot_id, lot.total + 1)
            await inv.expire_due(lot.lot_id)
            await inv.snapshot(lot.lot_id)
            await inv.audit(lot.lot_id)
            await inv.holds_of(lot.lot_id, "bob")
            await inv.close(lot.lot_id)
        await inv.redis.ping()

        async def got_all() -> bool:
            return any("PING" in c["command"] for c in seen[-5:])

        from .conftest import wait_until
        await wait_until(got_all)
    runs: list[list[str]] = []
    previous_lua = False
    for c in seen:
        is_lua = c.get("client_type") == "lua"
        if is_lua:
            if not previous_lua:
                runs.append([])
            runs[-1].append(c["command"])
        previous_lua = is_lua
    assert len(runs) >= 26
    allowed = {k for lot in lots for k in [*keys_for(lot.lot_id), changed_channel(lot.lot_id)]}
    for run in runs:
        keys = [cmd.split()[1] for cmd in run if cmd.split()[0] not in KEYLESS]
        assert keys and set(keys) <= allowed, run
        assert len({key_slot(k.encode()) for k in keys}) == 1, run


async def test_a_stock_change_wakes_the_lots_sharded_channel_only(inv: Inventory, make_lot, redis) -> None:
    """The watcher's wake is SPUBLISHed on the lot's own channel (its slot on a cluster): a
    subscriber of that lot hears the lot id, a subscriber of another lot hears nothing."""
    from redislayer.shardpubsub import ShardedSubscriber

    a, b = await make_lot(3, per_user_limit=1), await make_lot(3, per_user_limit=1)
    assert key_slot(changed_channel(a.lot_id).encode()) == key_slot(keys_for(a.lot_id)[0].encode())
    on_a, on_b = ShardedSubscriber(redis), ShardedSubscriber(redis)
    await on_a.subscribe(changed_channel(a.lot_id))
    await on_b.subscribe(changed_channel(b.lot_id))
    try:
        assert (await inv.reserve(a.lot_id, "alice", 1, "r1")).ok
        assert await on_a.get_message(timeout=5) == (changed_channel(a.lot_id), a.lot_id.encode())
        assert await on_b.get_message(timeout=0.3) is None
    finally:
        await on_a.aclose()
        await on_b.aclose()


async def test_calls_in_one_tick_share_one_round_trip(inv: Inventory, make_lot) -> None:
    lot = await make_lot(300, per_user_limit=1)
    await inv.load_scripts()
    p = inv.pipeline
    flushes, batches = p.flushes, p.batches
    results = await asyncio.gather(*(inv.reserve(lot.lot_id, f"u{i}", 1, "r") for i in range(p.max_batch)))
    assert all(r.ok for r in results)
    assert (p.flushes - flushes, p.batches - batches) == (1, 1)  # one tick, one pipeline
    # more than max_batch in one tick: still one flush, cut into pipelines of max_batch
    flushes, batches = p.flushes, p.batches
    more = await asyncio.gather(*(inv.reserve(lot.lot_id, f"v{i}", 1, "r") for i in range(200)))
    assert all(r.ok for r in more)
    assert (p.flushes - flushes, p.batches - batches) == (1, -(-200 // p.max_batch))
    ids = {r.reservation.id for r in results + more}
    assert len(ids) == p.max_batch + 200


async def test_one_tick_is_one_round_trip_per_master(inv: Inventory, make_lot, redis) -> None:
    """Reserves on lots spread over a cluster's masters, made in one tick, travel as one pipeline
    per master (one on a standalone server)."""
    lots = [await make_lot(10, per_user_limit=1) for _ in range(12)]
    await inv.load_scripts()
    if CLUSTER:
        await redis.initialize()
        masters = {redis.get_node_from_key(keys_for(lot.lot_id)[0]).name for lot in lots}
        assert len(masters) >= 2, "the lots all landed on one master"
    else:
        masters = {"the server"}
    p = inv.pipeline
    batches = p.batches
    results = await asyncio.gather(*(inv.reserve(lot.lot_id, f"u{i}", 1, "r") for i, lot in enumerate(lots)))
    assert all(r.ok for r in results)
    assert p.batches - batches == len(masters)


async def test_noscript_is_recovered_in_a_batch(inv: Inventory, make_lot, redis) -> None:
    lot = await make_lot(50, per_user_limit=1)
    await redis.script_flush()
    results = await asyncio.gather(*(inv.reserve(lot.lot_id, f"u{i}", 1, "r") for i in range(60)))
    assert sum(r.ok for r in results) == 50
    assert await inv.snapshot(lot.lot_id) == StockLevels(50, 0, 50, 0, 0)
    await redis.script_flush()
    assert (await inv.release(lot.lot_id, results[0].reservation.id, "u0")).ok


@pytest.mark.skipif(CLUSTER, reason="the pooled fast path is for a plain client; a cluster client pipelines per node")
async def test_a_small_connection_pool_waits_instead_of_failing(make_lot, redis_url) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url, max_connections=2)
    small = Inventory(client)
    lot = await make_lot(1000, per_user_limit=1)
    results = await asyncio.gather(*(small.reserve(lot.lot_id, f"u{i}", 1, "r") for i in range(1000)))
    assert all(r.ok for r in results)
    assert small.pipeline.batches >= 1000 // small.pipeline.max_batch
    await client.aclose()


async def test_clients_without_a_pool_use_redis_py_pipelines(inv: Inventory, make_lot, redis) -> None:
    """The fallback path (e.g. RedisCluster, which has no single connection pool)."""
    inv.pipeline._pool = None
    lot = await make_lot(10, per_user_limit=1)
    await redis.script_flush()
    results = await asyncio.gather(*(inv.reserve(lot.lot_id, f"u{i}", 1, "r") for i in range(12)))
    assert sum(r.ok for r in results) == 10
    assert [r.code for r in results if not r.ok] == [Refusal.SOLD_OUT] * 2
    assert (await inv.audit(lot.lot_id)).ok
