"""The background task that compacts finished sales (inventory/compaction.py) on every node.

Every `period_s` it takes at most `batch` due lots from the index and compacts those closed,
settled and quiet for `Config.sale_compact_after_s`. Nodes may run it at once: the script per lot
is atomic and idempotent. 0 disables it."""
from __future__ import annotations

import logging

from inventory import Inventory
from inventory.compaction import backfill
from live.periodic import Periodic

log = logging.getLogger("hawker.compactor")


class Compactor:
    def __init__(self, inv: Inventory, grace_s: int, *, period_s: float = 60.0, batch: int = 100) -> None:
        self.inv = inv
        self.grace_s = grace_s
        self.batch = batch
        self._backfilled = False
        self._loop = Periodic(self.round, period_s, name="sale-compactor", log=log, first_delay=True)

    async def round(self) -> int:
        """One pass; returns how many lots it compacted."""
        if not self._backfilled:
            await backfill(self.inv.redis)
            self._backfilled = True
        done = [lot for lot, res in await self.inv.compact_due(self.grace_s, self.batch) if res.code == ""]
        if done:
            log.info("compacted %d finished sale(s)", len(done))
        return len(done)

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
