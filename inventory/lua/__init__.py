"""The Lua scripts: one per operation, each given the same nine keys of one lot (one hash tag).
prelude.py holds what they share; holds.py, lots.py and records.py the scripts by what they act on.

Every script starts with PRELUDE (helpers + NOW from Redis TIME) and builds no key of its own:
it touches only KEYS[1..9], which keys_for() derives from the lot id inside the tag {lot:ID}.

Keys of a lot (tag = {lot:ID}):
  meta  hash   lot fields + counters total/available/held/sold + seq (reservation counter)
  res   hash   reservation id -> cjson {u user, q qty, s state, e expires_at, o order_id,
               c created_at, x extended 0/1, w from_waitlist 0/1, h the hold's own expiry
               (e without a payment lock), n payment attempts}; kept after final states
  exp   zset   reservation id -> expires_at, for HELD and PAYING only (the expiry index)
  usr   hash   user -> HELD + PAYING + SOLD units (the per-user limit)
  uh    hash   user -> space-separated ids of the user's HELD/PAYING/SOLD reservations
  req   hash   user "\\n" request_id -> reservation id (reserve idempotency)
  wl    list   waiting users, head first
  wlu   hash   waiting user -> wanted qty
  ev    stream capped event log (XADD MAXLEN ~ ARGV[1])

A script that appends events also SPUBLISHes the lot id once on the lot's sharded channel
`inv:changed:{lot:ID}` (core.changed_channel: the lot's hash tag, so on a Redis Cluster it is the
slot of the lot's keys and the wake reaches only that shard), so a watcher subscribed to the lots
it watches wakes on stock changes instead of polling every lot.
Compaction (script `compact`, Inventory.compact): once a lot is closed (or cancelled), holds no
units and has been quiet for a grace, it keeps only its audit summary (meta, with compacted_at and
the counts of what was dropped) and its SOLD reservations (res, usr, uh); released and expired
reservations, request ids, the waitlist and the event stream are deleted. A compacted lot cannot
be opened again.

Replies are flat arrays: {code, total, available, held, sold, waitlist, ...op specific}; code ''
means success. A reservation is appended as {id, user, qty, state, expires_at, order_id,
created_at, extended, from_waitlist, payment_attempts}.

A hold's lifetime is bounded whatever payments do: begin_payment may lock it at most until
h + payment_grace (h = created_at + hold_s [+ the one extension]), abort_payment puts the expiry
back to h (or expires the hold when h has passed), and a hold takes at most max_attempts payment
attempts (then TOO_MANY_ATTEMPTS; the hold is left to expire at h). A cancelled lot refuses
begin_payment and confirm (SALE_CANCELLED); cancelling frees every live hold (CANCELLED) and
empties the waitlist.
"""
from __future__ import annotations

from inventory.lua import holds, lots, records
from inventory.lua.prelude import PRELUDE

SCRIPTS: dict[str, str] = {**holds.SCRIPTS, **lots.SCRIPTS, **records.SCRIPTS}

__all__ = ["PRELUDE", "SCRIPTS", "source"]


def source(name: str) -> str:
    """Full text of one script: the shared prelude and its body."""
    return PRELUDE + SCRIPTS[name]
