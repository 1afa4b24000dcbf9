"""One person's data (GDPR art. 15/17, Korea PIPA art. 35/36): what export reads, erasure, and
retention. The operator's endpoints are live/rest/privacy.py.

Erasing removes the person's chat messages, the contact data on their orders, their idempotency
records and dead letters about them, and replaces their id on orders and reservations with a fresh
pseudonym (no mapping kept), so counts and the sale audit still add up. Every broadcast where they
bought or chatted gets a `user.erased` webhook, so the merchant erases its own copies.

Retention (every 10 min, any node): contact data on orders older than HAWKER_PII_RETENTION_DAYS
and dead letters older than HAWKER_DEAD_LETTER_RETENTION_DAYS are removed."""
from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis

from chat import privacy as chat_privacy
from checkout.ulid import new_ulid
from inventory import Inventory
from live.checkout_part import CheckoutPart
from live.config import Config
from live.periodic import Periodic
from shop.broadcasts import LIST_KEY

log = logging.getLogger("hawker.privacy")

DAY_MS = 24 * 3600 * 1000


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class Privacy:
    """Export, erasure and retention of personal data on one node."""

    def __init__(self, config: Config, redis: aioredis.Redis, inventory: Inventory, checkout: CheckoutPart) -> None:
        self.redis = redis
        self.config = config
        self.co = checkout
        self.inv = inventory
        self.retention = Periodic(self._retention_step, 600.0, name="privacy-retention", log=log, first_delay=True)

    async def start(self) -> None:
        self.retention.start()

    async def stop(self) -> None:
        await self.retention.stop()

    async def _retention_step(self) -> None:
        await self.retention_round()

    async def _broadcasts(self, extra: set[str]) -> list[str]:
        known = [_s(b) for b in await self.redis.zrange(LIST_KEY, 0, -1)]
        return list(dict.fromkeys([*known, *sorted(extra)]))

    async def _reservations(self, sub: str) -> list[Any]:
        out = []
        for lot_id in await self.inv.list_lots():
            out += await self.inv.user_reservations(lot_id, sub)
        return out

    async def export_user(self, sub: str) -> dict[str, Any]:
        """Everything kept about one person: orders, reservations, chat messages."""
        orders = await self.co.checkout.ledger.of_user(sub, 100_000)
        chat = await chat_privacy.messages_of(self.redis, await self._broadcasts({o.broadcast for o in orders}), sub)
        reservations = await self._reservations(sub)
        return {
            "user": sub,
            "exported_at": await self.inv.server_time_ms(),
            "orders": [o.to_dict() for o in orders],
            "reservations": [{"sale_id": r.lot_id, "id": r.id, "qty": r.qty, "state": r.state.value,
                              "order_id": r.order_id, "created_at": r.created_at_ms} for r in reservations],
            "chat": [{"broadcast": bc, **m.to_wire()} for bc, msgs in chat.items() for m in msgs],
        }

    async def erase_user(self, sub: str) -> dict[str, Any]:
        """Erase one person everywhere; safe to run again (a second run finds nothing more)."""
        pseudonym = "erased-" + new_ulid()
        ledger = self.co.checkout.ledger
        orders = await ledger.of_user(sub, 100_000)
        bcs = await self._broadcasts({o.broadcast for o in orders})
        chat = await chat_privacy.erase_user(self.redis, bcs, sub)
        order_ids = await ledger.erase_user(sub, pseudonym)
        renamed = 0
        for lot_id in await self.inv.list_lots():
            renamed += await self.inv.forget_user(lot_id, sub, pseudonym)
        idem = await self.co.idem.forget_scope(sub)
        dead = await self.co.webhooks.forget_user(sub, set(order_ids))
        at = await self.inv.server_time_ms()
        told = sorted({o.broadcast for o in orders} | {bc for bc, n in chat.items() if n})
        for bc in told:
            await self.co.webhooks.emit("user.erased", bc, {"user": sub, "at": at,
                                                            "orders": [o.id for o in orders if o.broadcast == bc]},
                                        event_id=f"user.erased:{bc}:{sub}:{at}")
        log.info("erased a user's data: %d orders, %d chat messages, %d reservations", len(order_ids),
                 sum(chat.values()), renamed)
        return {"user": sub, "pseudonym": pseudonym, "erased_at": at,
                "erased": {"orders": len(order_ids), "chat_messages": sum(chat.values()), "reservations": renamed,
                           "idempotency_records": idem, "dead_letters": dead},
                "told": told}

    async def retention_round(self, now_ms: int | None = None) -> tuple[int, int]:
        """Remove contact data and dead letters past their retention; (orders, dead letters)."""
        now = await self.inv.server_time_ms() if now_ms is None else now_ms
        orders = await self.co.checkout.ledger.expire_contacts(now - self.config.pii_retention_days * DAY_MS)
        dead = await self.co.webhooks.expire_dead(now - self.config.dead_letter_retention_days * DAY_MS)
        return orders, dead
