"""The Inventory facade: validates input in Python, then runs one Lua script per operation."""
from __future__ import annotations

import redis.asyncio as aioredis

from inventory.types import (
    AuditReport,
    Lot,
    LotSpec,
    Reservation,
    ReserveResult,
    StockEvent,
    StockLevels,
    WaitlistResult,
)

MAX_ID_LEN = 64
MAX_QTY = 1_000_000


def keys_for(lot_id: str) -> list[str]:
    """Every key of one lot; all share the hash tag {lot:ID}, hence one cluster slot."""
    tag = "{lot:%s}" % lot_id
    return [f"inv:{tag}:{name}" for name in ("meta", "res", "exp", "usr", "uh", "req", "wl", "wlu", "ev")]


class Inventory:
    """Stock lots and reservations of one Redis (or Redis Cluster with hash-tagged keys)."""

    def __init__(self, redis: aioredis.Redis, *, events_maxlen: int = 10_000,
                 payment_grace_s: int = 120, max_extend_s: int = 300) -> None:
        self.redis = redis
        self.events_maxlen = events_maxlen
        self.payment_grace_s = payment_grace_s
        self.max_extend_s = max_extend_s

    async def load_scripts(self) -> None: raise NotImplementedError
    async def server_time_ms(self) -> int: raise NotImplementedError
    async def create_lot(self, spec: LotSpec) -> Lot: raise NotImplementedError
    async def get_lot(self, lot_id: str) -> Lot | None: raise NotImplementedError
    async def list_lots(self) -> list[str]: raise NotImplementedError
    async def adjust_total(self, lot_id: str, new_total: int) -> Lot: raise NotImplementedError
    async def open(self, lot_id: str) -> Lot: raise NotImplementedError
    async def close(self, lot_id: str) -> Lot: raise NotImplementedError
    async def cancel(self, lot_id: str) -> Lot: raise NotImplementedError
    async def reserve(self, lot_id: str, user: str, qty: int, request_id: str) -> ReserveResult: raise NotImplementedError
    async def extend(self, lot_id: str, reservation_id: str, user: str) -> ReserveResult: raise NotImplementedError
    async def release(self, lot_id: str, reservation_id: str, user: str) -> ReserveResult: raise NotImplementedError
    async def begin_payment(self, lot_id: str, reservation_id: str, user: str) -> ReserveResult: raise NotImplementedError
    async def confirm(self, lot_id: str, reservation_id: str, order_id: str) -> ReserveResult: raise NotImplementedError
    async def abort_payment(self, lot_id: str, reservation_id: str) -> ReserveResult: raise NotImplementedError
    async def expire_due(self, lot_id: str, limit: int = 500) -> int: raise NotImplementedError
    async def join_waitlist(self, lot_id: str, user: str, qty: int) -> WaitlistResult: raise NotImplementedError
    async def get_reservation(self, lot_id: str, reservation_id: str) -> Reservation | None: raise NotImplementedError
    async def holds_of(self, lot_id: str, user: str) -> list[Reservation]: raise NotImplementedError
    async def snapshot(self, lot_id: str) -> StockLevels | None: raise NotImplementedError
    async def audit(self, lot_id: str) -> AuditReport: raise NotImplementedError
    def events_key(self, lot_id: str) -> str: return keys_for(lot_id)[8]
    async def read_events(self, lot_id: str, after_id: str = "0-0", count: int = 100,
                          block_ms: int | None = None) -> list[StockEvent]: raise NotImplementedError
