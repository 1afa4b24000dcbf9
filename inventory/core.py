"""The Inventory facade: validates input in Python, then runs one Lua script per operation.

Bad input never reaches Redis: it is answered with a typed refusal (reservation calls) or an
InventoryError (lot admin calls). All script calls go through the shared auto-pipeline (redislayer)."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import redis.asyncio as aioredis

from inventory import compaction
from inventory.checks import MAX_QTY, MAX_TOTAL, STREAM_ID, check_spec, int_in, refused, valid_id, valid_lot_id, valid_qty
from inventory.compaction import CompactResult
from inventory.keys import EVENTS, REQ, RES, keys_for
from inventory.lua import SCRIPTS, source
from inventory.replies import audit_report, levels_of, lot_of, reservation_at, reservation_stored, text
from inventory.types import (
    MESSAGES,
    AuditReport,
    InventoryError,
    Lot,
    LotSpec,
    Refusal,
    Reservation,
    ReserveResult,
    StockEvent,
    StockLevels,
    WaitlistResult,
)
from redislayer import AutoPipeline, Script

# scripts that change nothing: no replica ack is waited for them (HAWKER_REDIS_REPLICAS_ACK)
READONLY = frozenset({"get_lot", "levels", "get_reservation", "holds_of", "dump"})


def _glob_escape(s: str) -> str:
    """A literal for a Redis MATCH pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in s)


class Inventory:
    """Stock lots and reservations of one Redis (keys hash-tagged per lot, so Cluster-ready).

    events_maxlen caps each lot's event stream (approximately, MAXLEN ~); payment_grace_s is how
    long a PAYING reservation is kept at least (never past its own expiry + payment_grace_s);
    extend() adds min(hold_s, max_extend_s) seconds; max_payment_attempts bounds begin_payment
    per hold (then TOO_MANY_ATTEMPTS)."""

    def __init__(self, redis: aioredis.Redis, *, events_maxlen: int = 10_000,
                 payment_grace_s: int = 120, max_extend_s: int = 300, max_payment_attempts: int = 3) -> None:
        for name, value in (("events_maxlen", events_maxlen), ("payment_grace_s", payment_grace_s),
                            ("max_extend_s", max_extend_s), ("max_payment_attempts", max_payment_attempts)):
            if not int_in(value, 1, 10**9):
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.redis = redis
        self.events_maxlen = events_maxlen
        self.payment_grace_s = payment_grace_s
        self.max_extend_s = max_extend_s
        self.max_payment_attempts = max_payment_attempts
        self.scripts = {name: Script(name, source(name), readonly=name in READONLY) for name in SCRIPTS}
        self.pipeline = AutoPipeline(redis, fixed_args=1)  # args[0] is events_maxlen, the same for every call

    # --- plumbing --------------------------------------------------------------------------------

    async def load_scripts(self) -> None:
        """SCRIPT LOAD every script now (optional: a NOSCRIPT answer loads it on demand)."""
        for script in self.scripts.values():
            await self.redis.script_load(script.source)

    async def _run(self, name: str, lot_id: str, *args: Any) -> list[Any]:
        reply: list[Any] = await self.pipeline.call(self.scripts[name], keys_for(lot_id), [self.events_maxlen, *args])
        return reply

    async def server_time_ms(self) -> int:
        """Redis's clock (TIME) in epoch ms: the clock every script uses; use it for countdowns."""
        secs, micros = await self.redis.time()
        return int(secs) * 1000 + int(micros) // 1000

    # --- lots ------------------------------------------------------------------------------------

    def _lot_or_raise(self, lot_id: str, r: list[Any]) -> Lot:
        code = text(r[0])
        if code:
            raise InventoryError(Refusal(code), f"lot {lot_id!r}: {MESSAGES[Refusal(code)]}")
        return lot_of(lot_id, r)

    async def create_lot(self, spec: LotSpec) -> Lot:
        """Create a SCHEDULED lot (OPEN by itself at opens_at_ms). The same spec again returns the
        existing lot (retries are safe); another spec for an existing id raises LOT_EXISTS; a bad
        spec raises INVALID_REQUEST."""
        check_spec(spec)
        opt = lambda v: "" if v is None else v  # noqa: E731 - a one-line mapping used only in the call below
        r = await self._run("create_lot", spec.lot_id, spec.sku, spec.total, spec.unit_price, spec.currency,
                            spec.per_user_limit, spec.hold_s, opt(spec.opens_at_ms), opt(spec.closes_at_ms),
                            spec.lot_id)
        await self.redis.sadd("inv:lots", spec.lot_id)
        lot = self._lot_or_raise(spec.lot_id, r)
        if spec.closes_at_ms is not None:  # look at it for compaction once it closes by itself
            await compaction.schedule(self.redis, spec.lot_id, spec.closes_at_ms)
        return lot

    async def get_lot(self, lot_id: str) -> Lot | None:
        if not valid_lot_id(lot_id):
            return None
        r = await self._run("get_lot", lot_id)
        return None if text(r[0]) else lot_of(lot_id, r)

    async def list_lots(self) -> list[str]:
        """Ids of every lot created (an index outside the lots' slots, for sweepers and admin)."""
        return sorted(text(x) for x in await self.redis.smembers("inv:lots"))

    async def adjust_total(self, lot_id: str, new_total: int) -> Lot:
        """Restock or reduce; never below held + sold (BELOW_COMMITTED). Restocked units serve
        the waitlist first."""
        if not valid_lot_id(lot_id) or not int_in(new_total, 0, MAX_TOTAL):
            raise InventoryError(Refusal.INVALID_REQUEST, f"new_total: int 0..{MAX_TOTAL}")
        return self._lot_or_raise(lot_id, await self._run("adjust_total", lot_id, new_total))

    async def _set_state(self, lot_id: str, action: str) -> Lot:
        if not valid_lot_id(lot_id):
            raise InventoryError(Refusal.UNKNOWN_LOT, f"lot {lot_id!r}")
        lot = self._lot_or_raise(lot_id, await self._run("set_state", lot_id, action))
        if action != "open":
            await compaction.schedule(self.redis, lot_id, 0)
        return lot

    async def open(self, lot_id: str) -> Lot:
        """Open now (before opens_at, or re-open a closed lot). A cancelled or compacted lot stays
        closed (CLOSED)."""
        return await self._set_state(lot_id, "open")

    async def close(self, lot_id: str) -> Lot:
        """Stop new reservations; existing holds may still be paid until they expire."""
        return await self._set_state(lot_id, "close")

    async def cancel(self, lot_id: str) -> Lot:
        """Close for good: open() is refused afterwards. Every HELD/PAYING reservation is freed
        (state CANCELLED, event hold_cancelled), the waitlist is emptied (waitlist_cancelled per
        user), and begin_payment / confirm answer SALE_CANCELLED from now on."""
        return await self._set_state(lot_id, "cancel")

    # --- reservations ----------------------------------------------------------------------------

    def _result(self, lot_id: str, r: list[Any]) -> ReserveResult:
        code = text(r[0])
        if len(r) == 1:
            return refused(Refusal(code))
        levels = levels_of(r)
        res = reservation_at(lot_id, r, 6) if len(r) >= 16 else None
        if code:
            return ReserveResult(ok=False, reservation=res, code=Refusal(code), levels=levels,
                                 message=MESSAGES[Refusal(code)])
        return ReserveResult(ok=True, reservation=res, levels=levels)

    async def reserve(self, lot_id: str, user: str, qty: int, request_id: str) -> ReserveResult:
        """Hold qty units for user until now + hold_s (Redis clock). Idempotent per (user, request_id)."""
        if not valid_lot_id(lot_id) or not valid_id(user) or not valid_id(request_id):
            return refused(Refusal.INVALID_REQUEST, "lot_id, user and request_id: 1-64 char strings")
        if not valid_qty(qty):
            return refused(Refusal.INVALID_QTY, f"qty: int 1..{MAX_QTY}")
        return self._result(lot_id, await self._run("reserve", lot_id, user, qty, request_id))

    def _bad_ref(self, lot_id: object, reservation_id: object, who: object) -> ReserveResult | None:
        if not valid_lot_id(lot_id) or not valid_id(reservation_id) or not valid_id(who):
            return refused(Refusal.INVALID_REQUEST, "ids: 1-64 char strings")
        return None

    async def extend(self, lot_id: str, reservation_id: str, user: str) -> ReserveResult:
        """Once per reservation, while HELD: expiry += min(hold_s, max_extend_s)."""
        if bad := self._bad_ref(lot_id, reservation_id, user):
            return bad
        return self._result(lot_id, await self._run("extend", lot_id, reservation_id, user, self.max_extend_s))

    async def release(self, lot_id: str, reservation_id: str, user: str) -> ReserveResult:
        """The user gives a HELD reservation back; the units go to the waitlist head first."""
        if bad := self._bad_ref(lot_id, reservation_id, user):
            return bad
        return self._result(lot_id, await self._run("release", lot_id, reservation_id, user))

    async def begin_payment(self, lot_id: str, reservation_id: str, user: str) -> ReserveResult:
        """HELD -> PAYING; expiry = max(own expiry, min(now, own expiry) + payment_grace_s) so a
        charge in flight does not lose its units, yet no hold outlives its own expiry + one grace.
        At most max_payment_attempts per hold (TOO_MANY_ATTEMPTS); SALE_CANCELLED once cancelled."""
        if bad := self._bad_ref(lot_id, reservation_id, user):
            return bad
        return self._result(lot_id, await self._run("begin_payment", lot_id, reservation_id, user,
                                                     self.payment_grace_s, self.max_payment_attempts))

    async def confirm(self, lot_id: str, reservation_id: str, order_id: str) -> ReserveResult:
        """PAYING -> SOLD with the order id (retry with the same order id answers ok);
        SALE_CANCELLED once the lot is cancelled (the caller refunds the charge)."""
        if bad := self._bad_ref(lot_id, reservation_id, order_id):
            return bad
        return self._result(lot_id, await self._run("confirm", lot_id, reservation_id, order_id))

    async def abort_payment(self, lot_id: str, reservation_id: str) -> ReserveResult:
        """PAYING -> HELD (the charge failed), back at the hold's own expiry; when that has
        passed the hold expires now (code EXPIRED)."""
        if bad := self._bad_ref(lot_id, reservation_id, "-"):
            return bad
        return self._result(lot_id, await self._run("abort_payment", lot_id, reservation_id))

    async def expire_due(self, lot_id: str, limit: int = 500) -> int:
        """Expire up to `limit` due HELD/PAYING reservations; freed units serve the waitlist.
        Returns how many expired (0 for an unknown lot)."""
        if not valid_lot_id(lot_id) or not int_in(limit, 1, 100_000):
            return 0
        return (await self.expire_due_next(lot_id, limit))[0]

    async def expire_due_next(self, lot_id: str, limit: int = 500) -> tuple[int, int | None]:
        """expire_due, and when the next HELD/PAYING reservation falls due (Redis ms; None when
        nothing is held): a sweeper can sleep until then instead of polling."""
        if not valid_lot_id(lot_id) or not int_in(limit, 1, 100_000):
            return 0, None
        r = await self._run("expire_due", lot_id, limit)
        if text(r[0]):
            return 0, None
        nxt = int(r[7]) if len(r) > 7 else -1
        return int(r[6]), (None if nxt < 0 else nxt)

    async def sweep(self, lot_ids: list[str] | None = None, limit: int = 500) -> int:
        """expire_due on many lots at once (default: every lot in list_lots()), pipelined; for a
        periodic sweeper task in the server. Returns how many reservations expired in all."""
        ids = await self.list_lots() if lot_ids is None else lot_ids
        counts = await asyncio.gather(*(self.expire_due(lot_id, limit) for lot_id in ids))
        return sum(counts)

    async def compact(self, lot_id: str, grace_s: int) -> CompactResult:
        """Keep only the audit summary and the SOLD reservations of a lot that is closed or
        cancelled, holds no units (due holds are expired first) and has had no stock event for
        `grace_s` seconds (inventory/compaction.py). Anything else is answered with why not and when
        to look again; nothing changes then."""
        if not valid_lot_id(lot_id) or not int_in(grace_s, 0, 10**8):
            return CompactResult("INVALID_REQUEST")
        return compaction._result(await self._run("compact", lot_id, grace_s * 1000))

    async def compact_due(self, grace_s: int, limit: int = 100) -> list[tuple[str, CompactResult]]:
        """One compaction pass over the lots due in the index (for a periodic task in the server)."""
        return await compaction.compact_due(self, grace_s, limit)

    async def join_waitlist(self, lot_id: str, user: str, qty: int) -> WaitlistResult:
        """Queue for up to qty units while sold out; already queued -> ok with the same position."""
        if not valid_lot_id(lot_id) or not valid_id(user):
            return WaitlistResult(ok=False, code=Refusal.INVALID_REQUEST, message="ids: 1-64 char strings")
        if not valid_qty(qty):
            return WaitlistResult(ok=False, code=Refusal.INVALID_QTY, message=f"qty: int 1..{MAX_QTY}")
        r = await self._run("join_waitlist", lot_id, user, qty)
        code = text(r[0])
        if len(r) == 1:
            return WaitlistResult(ok=False, code=Refusal(code), message=MESSAGES[Refusal(code)])
        if code:
            return WaitlistResult(ok=False, code=Refusal(code), levels=levels_of(r), message=MESSAGES[Refusal(code)])
        return WaitlistResult(ok=True, position=int(r[6]), levels=levels_of(r))

    async def get_reservation(self, lot_id: str, reservation_id: str) -> Reservation | None:
        """Read only; a HELD/PAYING reservation past its expiry reads as EXPIRED."""
        if not valid_lot_id(lot_id) or not valid_id(reservation_id):
            return None
        r = await self._run("get_reservation", lot_id, reservation_id)
        return None if text(r[0]) else reservation_at(lot_id, r, 6)

    async def holds_of(self, lot_id: str, user: str) -> list[Reservation]:
        """The user's HELD, PAYING and SOLD reservations in the lot (what counts towards the limit)."""
        if not valid_lot_id(lot_id) or not valid_id(user):
            return []
        r = await self._run("holds_of", lot_id, user)
        if text(r[0]):
            return []
        return [reservation_at(lot_id, r, i) for i in range(6, len(r), 10)]

    # --- personal data -----------------------------------------------------------------------

    async def user_reservations(self, lot_id: str, user: str) -> list[Reservation]:
        """Every reservation of the user in the lot, final ones included (an export). Scans the
        lot's reservations in chunks (HSCAN), so it never blocks Redis on a big lot."""
        if not valid_lot_id(lot_id) or not valid_id(user):
            return []
        out = []
        async for rid, raw in self.redis.hscan_iter(keys_for(lot_id)[RES], count=500):
            d = json.loads(text(raw))
            if d.get("u") == user:
                out.append(reservation_stored(lot_id, rid, d))
        return sorted(out, key=lambda r: (r.created_at_ms, r.id))

    async def forget_user(self, lot_id: str, user: str, pseudonym: str) -> int:
        """Erasure: the user's reservations in the lot name `pseudonym` instead, their reserve
        request ids are forgotten and they leave the waitlist; counts and states stay, so the
        audit still adds up. Returns how many reservations were renamed."""
        if not valid_lot_id(lot_id) or not valid_id(user) or not valid_id(pseudonym):
            return 0
        rids = [r.id for r in await self.user_reservations(lot_id, user)]
        prefix = user + "\n"
        reqs = []
        async for field, _ in self.redis.hscan_iter(keys_for(lot_id)[REQ], match=_glob_escape(prefix) + "*", count=500):
            if text(field).startswith(prefix):
                reqs.append(text(field))
        r = await self._run("forget_user", lot_id, user, pseudonym, len(rids), *rids, *reqs)
        return 0 if text(r[0]) else int(r[6])

    # --- reading ---------------------------------------------------------------------------------

    async def snapshot(self, lot_id: str) -> StockLevels | None:
        if not valid_lot_id(lot_id):
            return None
        r = await self._run("levels", lot_id)
        return None if text(r[0]) else levels_of(r)

    async def reservations(self, lot_id: str) -> list[Reservation]:
        """Every reservation of the lot as stored (one atomic read), oldest first. The state is the
        stored one: a hold past its expiry shows HELD until a sweep or a touch expires it, which is
        what an outside audit wants to see."""
        if not valid_lot_id(lot_id):
            return []
        r = await self._run("dump", lot_id)
        if text(r[0]):
            return []
        out = []
        flat = r[9]
        for i in range(0, len(flat), 2):
            out.append(reservation_stored(lot_id, flat[i], json.loads(text(flat[i + 1]))))
        out.sort(key=lambda x: (x.created_at_ms, x.id))
        return out

    async def audit(self, lot_id: str) -> AuditReport:
        """Recompute from the reservations (one atomic read) and compare with the counters."""
        if not valid_lot_id(lot_id):
            raise InventoryError(Refusal.INVALID_REQUEST, "lot_id")
        r = await self._run("dump", lot_id)
        if text(r[0]):
            raise InventoryError(Refusal.UNKNOWN_LOT, f"lot {lot_id!r}")
        return audit_report(r)

    def events_key(self, lot_id: str) -> str:
        """The lot's capped stream (XREAD it yourself, or use read_events)."""
        return keys_for(lot_id)[EVENTS]

    async def read_events(self, lot_id: str, after_id: str = "0-0", count: int = 100,
                          block_ms: int | None = None) -> list[StockEvent]:
        """Events after `after_id` (exclusive), oldest first; block_ms waits for new ones.
        Raises InventoryError(INVALID_REQUEST) for a malformed id or count."""
        if not valid_lot_id(lot_id):
            return []
        if (type(after_id) is not str or not STREAM_ID.fullmatch(after_id) or not int_in(count, 1, 10_000)
                or not (block_ms is None or int_in(block_ms, 0, 3_600_000))):
            raise InventoryError(Refusal.INVALID_REQUEST, "after_id like '0-0' or '$', count 1..10000, block_ms >= 0")
        got = await self.redis.xread({self.events_key(lot_id): after_id}, count=count, block=block_ms)
        out: list[StockEvent] = []
        streams = got.items() if isinstance(got, dict) else (got or [])
        for _stream, entries in streams:
            for eid, fields in entries:
                if not isinstance(fields, dict):
                    continue  # an entry deleted after it was read has no fields (redis-py gives None)
                f = {text(k): text(v) for k, v in fields.items()}
                lv = [int(x) for x in f.pop("lv").split()]
                out.append(StockEvent(id=text(eid), lot_id=lot_id, type=f.pop("t"), at_ms=int(f.pop("at")),
                                      levels=StockLevels(*lv), data=f))
        return out
