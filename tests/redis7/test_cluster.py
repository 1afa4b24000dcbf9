"""HAWKER_REDIS_MODE=cluster: live.store.connect() gives a RedisCluster client, and the inventory runs
on a real 3-master Redis Cluster (its lots spread over the masters, each lot's keys in one slot).
The whole tests/inventory directory runs on a cluster in scripts/test.sh's third pass."""
from __future__ import annotations

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
    with pytest.raises(ValueError, match="standalone, cluster"):
        connect("redis://127.0.0.1:1/0", mode="sentinel")


def test_hawker_serve_refuses_cluster_mode_until_the_hub_runs_on_one() -> None:
    from tests.foundation.procs import run_hawker

    for mode, word in (("cluster", "not served yet"), ("sentinel", "use standalone or cluster")):
        done = run_hawker("serve", env={"HAWKER_SECRET": "x" * 40, "HAWKER_REDIS_MODE": mode}, timeout=60)
        assert done.returncode == 2 and word in done.stderr, done.stderr[-1000:]
        assert "Traceback" not in done.stderr
