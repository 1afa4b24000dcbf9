"""Handing one tick to a room's sockets: all at once, or in slices with the loop running between.

A tick is one write per socket. At 10,000 sockets that is ~100 ms of `send()` calls in one go,
and everything else on the node (commands, joins, acks, Redis replies) waited behind it: the
event loop's lag p99 was the tick's length. The ticker hands a big room its tick `slice_size`
sockets at a time and yields to the loop between slices.

Order per socket stays the order the node produced things in: while a room's tick is being handed
out, urgent events and private messages for that room are held (with the sockets they were
addressed to at that moment) and written right after the tick's last slice, so no socket sees
an event before a tick that was produced earlier. Acks and snapshots (the control lane) are
replies, not broadcasts, and are written as before."""
from __future__ import annotations

import asyncio
import time
from typing import Any

from live.fanout.conn import Conn
from live.fanout.frames import Frame

SLICE_SIZE = 500  # sockets handed a tick between two turns of the loop (~4 ms of writes)
MAX_SLICES = 8  # past SLICE_SIZE * MAX_SLICES sockets the slices grow instead: each turn of the loop
# runs everything that waited (a join burst's work too), and at 10,000 sockets twenty turns
# stretched a tick to 450 ms

Targets = list[tuple[Conn, Frame]]


class Budget:
    """Sockets left before the next turn of the loop, shared by the rooms of one tick."""

    __slots__ = ("size", "left")

    def __init__(self, size: int, sockets: int = 0) -> None:
        self.size = max(1, size, -(-sockets // MAX_SLICES))
        self.left = self.size


class Handout:
    """One tick for one room: `(frame, group)` per (codec, staff) group, `group` being the room's
    live `{sid: conn}` dict."""

    __slots__ = ("room", "work", "n", "frozen")

    def __init__(self, room: Any, work: list[tuple[Frame, dict[str, Conn]]]) -> None:
        self.room = room  # live.fanout.room.Room: its `sending` and `held`
        self.work = work
        self.n = sum(len(group) for _, group in work)
        self.frozen: list[tuple[Frame, dict[str, Conn], list[tuple[str, Conn]]]] = []

    def all_now(self) -> float:
        """Every socket now (no yield). Returns the seconds spent writing."""
        start = time.perf_counter()
        for frame, group in self.work:
            for conn in group.values():
                conn.push(frame, True)
        return time.perf_counter() - start

    def freeze(self) -> None:
        """Take the members as they are now, before the loop turns: a socket that joins during the
        handout got a snapshot newer than this tick and must not get it."""
        self.frozen = [(frame, group, list(group.items())) for frame, group in self.work]

    async def in_slices(self, budget: Budget) -> float:
        """The frozen members a budget at a time, the loop turning between slices (a socket that
        left meanwhile is skipped). The caller has frozen every handout of the tick and set
        `room.sending` (events for the room are held meanwhile), and releases the room after.
        Returns the seconds spent writing (the turns of the loop excluded)."""
        spent = 0.0
        for frame, group, members in self.frozen:
            i = 0
            while i < len(members):
                take = min(budget.left, len(members) - i)
                start = time.perf_counter()
                for sid, conn in members[i:i + take]:
                    if sid in group:
                        conn.push(frame, True)
                spent += time.perf_counter() - start
                i += take
                budget.left -= take
                if budget.left == 0:
                    budget.left = budget.size
                    await asyncio.sleep(0)
        return spent


def hold_or_push(room: Any, targets: Targets) -> None:
    """Write an event's frames now, or after the tick being handed out to this room."""
    if room.sending:
        room.held.append(targets)
        return
    for conn, frame in targets:
        conn.push(frame, False)


def release(room: Any) -> None:
    """The room's tick is out: write what was held for it, in the order it was produced."""
    room.sending = False
    held, room.held = room.held, []
    for targets in held:
        for conn, frame in targets:
            conn.push(frame, False)
