"""HAWKER_REDIS_MODE=cluster: live.store.connect() gives a RedisCluster client, and the inventory runs
on a real 3-master Redis Cluster (its lots spread over the masters, each lot's keys in one slot),
also while a sale's slot migrates to another master. The server's suites run on a cluster in
scripts/test.sh's third pass."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from inventory import Inventory, LotSpec
from live.store import connect
from tests.redis_proc import RedisClusterProcess


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterProcess]:
    proc = RedisClusterProcess().start()
    yield proc
    proc.cleanup()


async def test_cluster_mode_client_runs_the_inventory_across_masters(cluster) -> None:
    client = connect(cluster.url, timeout_s=2.0, mode="cluster")
    assert isinstance(client, RedisCluster)
    try:
        inv = Inventory(client, payment_grace_s=30)
        now = await inv.server_time_ms()
        lots = [f"c{i}" for i in range(24)]
        for lot in lots:
            await inv.create_lot(LotSpec(lot, "SKU", total=3, unit_price=100, currency="EUR", per_user_limit=1,
                                         hold_s=60, opens_at_ms=now - 1))
        for lot in lots:
            held = await inv.reserve(lot, "alice", 1, "r1")
            assert held.ok and held.reservation is not None
            assert (await inv.begin_payment(lot, held.reservation.id, "alice")).ok
            assert (await inv.confirm(lot, held.reservation.id, "o-" + lot)).ok
            assert (await inv.reserve(lot, "bob", 1, "r1")).ok
            await inv.close(lot)
        for lot in lots:
            assert (await inv.audit(lot)).ok
        per_node = []
        for node in cluster.nodes:
            plain = aioredis.Redis.from_url(node.url)
            per_node.append(await plain.dbsize())
            await plain.aclose()
        assert sum(1 for n in per_node if n > 0) >= 2, per_node  # the lots live on several masters
        assert sorted(await inv.list_lots()) == sorted(lots)
    finally:
        await client.aclose()


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="standalone, cluster, sentinel"):
        connect("redis://127.0.0.1:1/0", mode="bogus")


def test_hawker_serve_names_the_modes_it_knows() -> None:
    """cluster and sentinel are served now; an unknown mode is refused before anything starts."""
    from tests.foundation.procs import run_hawker

    done = run_hawker("serve", env={"HAWKER_SECRET": "x" * 40, "HAWKER_REDIS_MODE": "bogus"}, timeout=60)
    assert done.returncode == 2 and "use standalone, cluster or sentinel" in done.stderr, done.stderr[-1000:]
    assert "Traceback" not in done.stderr


async def test_a_flash_sale_across_a_live_slot_migration_loses_and_doubles_nothing(cluster) -> None:
    """The sale's slot moves to another master while buyers reserve (MIGRATING: multi-key scripts
    answer TRYAGAIN; keys moved, slot not handed over: ASK; handed over: MOVED). Every buyer that
    was told OK holds exactly one unit, nobody is told OK twice, the audit balances, and the calls
    were really redirected."""
    from redis.crc import key_slot

    from inventory import keys_for
    from redislayer import overload_code

    client = connect(cluster.url, timeout_s=2.0, mode="cluster")
    try:
        inv = Inventory(client, payment_grace_s=30)
        now = await inv.server_time_ms()
        lot = "migrating-sale"
        await inv.create_lot(LotSpec(lot, "SKU", total=150, unit_price=100, currency="EUR", per_user_limit=1,
                                     hold_s=600, opens_at_ms=now - 1))
        slot = key_slot(keys_for(lot)[0].encode())
        src = cluster.owner_of(slot)
        dst = (src + 1) % len(cluster.nodes)
        answers: dict[str, list[str]] = {}

        async def buyer(i: int) -> None:
            user = f"u{i}"
            for _ in range(100):  # a real client: retry BUSY/UNAVAILABLE with the same request id
                try:
                    r = await inv.reserve(lot, user, 1, f"req-{i}")
                except Exception as exc:  # noqa: BLE001 - the assert below says which errors a client may see
                    assert overload_code(exc) is not None, repr(exc)
                    await asyncio.sleep(0.05)
                    continue
                answers.setdefault(user, []).append(r.reservation.id if r.ok else r.code.value)
                return
            raise AssertionError(f"{user} never got an answer")

        async def waves() -> None:
            for w in range(20):
                await asyncio.gather(*(buyer(w * 10 + k) for k in range(10)))
                await asyncio.sleep(0.03)

        buying = asyncio.ensure_future(waves())
        await asyncio.sleep(0.1)
        moved = await asyncio.to_thread(cluster.migrate_slot, slot, dst, before_s=0.3, between_s=0.3)
        await buying
        assert moved >= 3  # the lot's keys went over
        assert cluster.owner_of(slot) == dst
        assert inv.pipeline.redirected > 0, "no call crossed the migration"
        oks = {u: a[0] for u, a in answers.items() if a[0] not in ("SOLD_OUT", "LIMIT_REACHED")}
        assert len(answers) == 200 and all(len(a) == 1 for a in answers.values())
        assert len(oks) == 150 and len(set(oks.values())) == 150  # one distinct hold per OK buyer
        held = {r.id: r.user for r in await inv.reservations(lot) if r.state.value == "HELD"}
        assert held == {rid: u for u, rid in oks.items()}
        audit = await inv.audit(lot)
        assert audit.ok and audit.levels.held == 150 and audit.levels.available == 0
        for i in range(0, 200, 7):  # a retry after the move replays the first answer
            again = await inv.reserve(lot, f"u{i}", 1, f"req-{i}")
            assert (again.reservation.id if again.ok else again.code.value) == answers[f"u{i}"][0]
    finally:
        await client.aclose()
