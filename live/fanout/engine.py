"""The fan-out engine of one node: broadcast membership, per-broadcast ticks, Redis pub/sub between
nodes, viewer counts. See docs/architecture.md "Hub and fan-out: the engine". The Redis side
(outbox, subscriptions, shared viewer counts) is relay.py.

Per tick (default 100 ms) and broadcast, this node
  1. publishes its own input (chat, hearts summed, levels latest-wins) as ONE message on the
     broadcast's sharded channel `hub:fan:bc:{<id>}` (SPUBLISH; only if it has input);
  2. merges its own input with the batches other nodes published since the last tick and sends ONE
     `tick` frame to its local members (encoded once per codec; viewers get a chat sample past the
     overload rate, staff the whole chat);
  3. refreshes its member count in the hash `hub:fan:viewers:<id>` (field = node id, value
     `count:ms`); counts older than `viewers_ttl_ms` are ignored and removed, so a dead node's
     viewers disappear.
Urgent events and private messages are delivered locally at once and published at once; other
nodes deliver them on receipt. One publisher task keeps this node's messages in order.

Pub/sub between nodes is *sharded* (Redis 7 SSUBSCRIBE/SPUBLISH, redislayer.shardpubsub): the
channel carries the broadcast id as its hash tag, so on a Redis Cluster a broadcast's messages
reach only the shard that owns its slot instead of being copied to every node; on a standalone
server it is the same commands on one connection."""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from live.fanout import metrics
from live.fanout.frames import Encoded
from live.fanout.handout import SLICE_SIZE, Budget, Handout, Targets, hold_or_push, release
from live.fanout.relay import VIEWERS, Batch, Relay, bc_channel, put_level
from live.fanout.room import Member, Room
from redislayer.shardpubsub import ShardedSubscriber

log = logging.getLogger("hawker.fanout")

VIEWERS_EVERY_MS = 1000  # a tick that would carry only a changed viewer count: at most this often


def _now_ms() -> int:
    return int(time.time() * 1000)


class Fanout(Relay):
    """See live/fanout/__init__.py for the interface."""

    def __init__(self, sio: Any, redis: aioredis.Redis, *, node_id: str, tick_ms: int = 100,
                 chat_overload_rate: float = 50.0, chat_overload_k: int = 10,
                 viewers_ttl_ms: int = 5000, clock: Callable[[], int] | None = None,
                 max_outbox: int = 10_000, viewers_every_ms: int = VIEWERS_EVERY_MS,
                 max_writes_per_s: int = 0, slice_size: int = SLICE_SIZE) -> None:
        if not hasattr(sio, "conn"):
            raise TypeError("Fanout needs a live.fanout.FanoutServer as its Socket.IO server")
        from chat.overload import ChatSampler, OverloadPolicy

        self.sio = sio
        self.redis = redis
        self.node_id = node_id
        self.tick_s = max(0.005, tick_ms / 1000)
        self.chat_sampler: Any = ChatSampler(OverloadPolicy(chat_overload_rate, chat_overload_k))
        self.viewers_ttl_ms = viewers_ttl_ms
        self.viewers_every_ms = viewers_every_ms
        self.max_writes_per_s = max_writes_per_s  # 0: no budget (a tick every tick_s whatever the audience)
        self.slice_size = slice_size  # the ticker yields to the loop every this many sockets
        self.clock = clock or _now_ms
        self.max_outbox = max_outbox
        self._members: dict[str, Member] = {}
        self._rooms: dict[str, Room] = {}
        self._pending: dict[str, Batch] = {}   # this node's input since the last tick
        self._inbound: dict[str, Batch] = {}   # other nodes' batches since the last tick
        self._totals: dict[str, tuple[int, int]] = {}  # broadcast -> (total, our count at the time)
        self._gone: set[str] = set()            # broadcasts we left: remove our viewer field
        self._outbox: deque[tuple[str, bytes, str]] = deque()
        self._out_wake = asyncio.Event()
        self._sub_lock = asyncio.Lock()
        self._unsubscribed: set[str] = set()  # broadcasts with members whose SUBSCRIBE failed
        self._pubsub: Any = None
        self._node_subscribed = False
        self._tasks: list[asyncio.Task] = []
        self._running = False
        self.ticks = 0
        self.published_ticks = 0

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._pubsub = ShardedSubscriber(self.redis)
        await self._subscribe_node()
        self._running = True
        self._tasks = [asyncio.ensure_future(self._listen()), asyncio.ensure_future(self._ticker()),
                       asyncio.ensure_future(self._publisher())]

    async def stop(self) -> None:
        self._running = False
        self._out_wake.set()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except BaseException:  # noqa: BLE001 - a task's end (cancelled or failed) must not stop the others' shutdown
                pass
        self._tasks = []
        try:
            pipe = self.redis.pipeline(transaction=False)
            for bc in list(self._rooms) + list(self._gone):
                pipe.hdel(VIEWERS + bc, self.node_id)
            await pipe.execute()
        except Exception:  # noqa: BLE001 - Redis away at shutdown: the counts expire by themselves
            log.debug("viewer cleanup failed", exc_info=True)
        if self._pubsub is not None:
            try:
                await self._pubsub.aclose()
            except Exception:  # noqa: BLE001 - closing a dead subscription must not fail shutdown
                pass

    def set_chat_sampler(self, sampler: Any) -> None:
        """The chat part's overload policy (`chat.overload.ChatSampler`)."""
        self.chat_sampler = sampler

    # ---- membership ---------------------------------------------------------------------------

    async def join(self, sid: str, broadcast: str, *, staff: bool = False, user: str | None = None) -> None:
        conn = self.sio.conn(sid)
        if conn is None:
            raise LookupError(f"no socket {sid}")
        if sid in self._members:
            await self.leave(sid)
        key = (conn.out_codec, bool(staff))
        room = self._rooms.get(broadcast)
        if room is None:
            room = self._rooms[broadcast] = Room()
            self._gone.discard(broadcast)
        room.groups[key][sid] = conn
        room.count += 1
        if user:
            room.users.setdefault(user, set()).add(sid)
        self._members[sid] = Member(broadcast, bool(staff), user, conn, key)
        metrics.SOCKETS.labels(broadcast).inc()
        if room.count == 1:
            await self._subscribe(broadcast, room)

    async def _subscribe(self, broadcast: str, room: Room) -> None:
        """Subscribe this node to a broadcast; if Redis is away, the ticker retries (the join stands)."""
        async with self._sub_lock:
            if self._pubsub is not None and self._rooms.get(broadcast) is room:
                try:
                    await self._pubsub.subscribe(bc_channel(broadcast))
                    self._unsubscribed.discard(broadcast)
                except Exception:  # noqa: BLE001 - Redis away: the join stands, the ticker retries
                    log.warning("fan-out: subscribing to %s failed; retrying each tick", broadcast)
                    self._unsubscribed.add(broadcast)

    async def leave(self, sid: str) -> None:
        m = self._members.pop(sid, None)
        if m is None:
            return
        room = self._rooms.get(m.broadcast)
        if room is None:
            return
        room.groups[m.key].pop(sid, None)
        room.count -= 1
        metrics.SOCKETS.labels(m.broadcast).dec()
        if m.user:
            sids = room.users.get(m.user)
            if sids is not None:
                sids.discard(sid)
                if not sids:
                    del room.users[m.user]
        if room.count <= 0:
            del self._rooms[m.broadcast]
            self._inbound.pop(m.broadcast, None)
            self._gone.add(m.broadcast)
            self._unsubscribed.discard(m.broadcast)
            async with self._sub_lock:
                if self._pubsub is not None and m.broadcast not in self._rooms:
                    try:
                        await self._pubsub.unsubscribe(bc_channel(m.broadcast))
                    except Exception:  # noqa: BLE001 - Redis away: the leave stands, nothing is delivered to it
                        log.warning("fan-out: unsubscribing from %s failed", m.broadcast)

    def inbound_pending(self, broadcast: str) -> bool:
        """Whether other nodes' input for this broadcast waits for the next tick."""
        return broadcast in self._inbound

    def members(self, broadcast: str) -> int:
        """Sockets of this broadcast on this node."""
        room = self._rooms.get(broadcast)
        return room.count if room else 0

    # ---- input --------------------------------------------------------------------------------

    def _batch(self, broadcast: str) -> Batch:
        b = self._pending.get(broadcast)
        if b is None:
            b = self._pending[broadcast] = Batch()
        return b

    def chat(self, broadcast: str, message: dict) -> None:
        self._batch(broadcast).chat.append(message)

    def hearts(self, broadcast: str, n: int = 1) -> None:
        self._batch(broadcast).hearts += int(n)

    def level(self, broadcast: str, key: str, value: Any) -> None:
        """Set a level for the next tick (latest wins; a dict with an int `v` is versioned: an older
        one is dropped here, when batches of several nodes merge and at delivery, as clients would)."""
        put_level(self._batch(broadcast).levels, key, value)

    def urgent(self, broadcast: str, event: str, data: Any) -> None:
        self._deliver_event(broadcast, event, data)
        self._publish(broadcast, {"n": self.node_id, "k": "u", "e": event, "d": data}, "urgent")

    def to_user(self, broadcast: str, user: str, event: str, data: Any) -> None:
        self._deliver_user(broadcast, user, event, data)
        self._publish(broadcast, {"n": self.node_id, "k": "p", "u": user, "e": event, "d": data}, "user")

    def viewer_count(self, broadcast: str) -> int:
        local = self.members(broadcast)
        total, ours = self._totals.get(broadcast, (0, 0))
        return max(0, total - ours + local)

    # ---- local delivery -----------------------------------------------------------------------

    def _deliver_event(self, broadcast: str, event: str, data: Any) -> None:
        room = self._rooms.get(broadcast)
        if room is None:
            return
        enc = Encoded(event, data)
        targets: Targets = []
        for (codec, _staff), conns in room.groups.items():
            if conns:
                frame = enc.frame(codec)
                targets += [(conn, frame) for conn in conns.values()]
        hold_or_push(room, targets)
        metrics.DELIVERIES.labels("urgent").inc(len(targets))

    def _deliver_user(self, broadcast: str, user: str, event: str, data: Any) -> None:
        room = self._rooms.get(broadcast)
        sids = room.users.get(user) if room else None
        if not sids:
            return
        enc = Encoded(event, data)
        targets: Targets = []
        for sid in sids:
            m = self._members[sid]
            targets.append((m.conn, enc.frame(m.key[0])))
        assert room is not None  # sids came from it
        hold_or_push(room, targets)
        metrics.DELIVERIES.labels("user").inc(len(sids))

    def _handout(self, broadcast: str, room: Room, batch: Batch | None, now: int) -> Handout | None:
        """The room's tick (encoded once per codec), or None when there is nothing to send."""
        viewers = self.viewer_count(broadcast)
        if batch is None or batch.empty():
            # a changed count alone goes at most every viewers_every_ms: while thousands join, the
            # count changes every tick, and a tick to every socket for it alone was most of the
            # CPU of a join ramp (on the server and on every client)
            if viewers == room.last_viewers or now - room.viewers_at < self.viewers_every_ms:
                return None
            batch = batch or Batch()
        room.last_viewers = viewers
        room.viewers_at = now
        base: dict[str, Any] = {"ts": now}
        if batch.hearts:
            base["hearts"] = batch.hearts
        levels = room.fresh(batch.levels) if batch.levels else None
        if levels:
            base["levels"] = levels
        base["viewers"] = viewers
        chat = batch.chat
        for_viewers = chat
        if chat and self.chat_sampler is not None:
            for_viewers = self.chat_sampler.for_viewers(broadcast, chat, now)
        vpay = {**base, "chat": for_viewers} if for_viewers else base
        spay = {**base, "chat": chat} if chat and len(for_viewers) != len(chat) else vpay
        encs = {False: Encoded("tick", vpay)}
        encs[True] = encs[False] if spay is vpay else Encoded("tick", spay)
        work = [(encs[staff].frame(codec), conns) for (codec, staff), conns in room.groups.items() if conns]
        metrics.BATCH_SIZE.observe(len(chat) + len(batch.levels) + (1 if batch.hearts else 0))
        return Handout(room, work)

    # ---- the tick -----------------------------------------------------------------------------

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while self._running:
            due += self.period()
            delay = due - loop.time()
            if delay < 0:  # behind: do not try to catch up with a burst of ticks
                due = loop.time()
                delay = 0
            await asyncio.sleep(delay)
            try:
                if await self._tick_in_slices():  # tick due -> the last socket's bytes handed to its transport
                    metrics.TICK_LAG.observe(max(0.0, loop.time() - due))
                for bc in list(self._unsubscribed):
                    room = self._rooms.get(bc)
                    if room is not None:
                        await self._subscribe(bc, room)
                await self._refresh_viewers()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one failed tick must not stop the ticker
                log.warning("fan-out tick failed", exc_info=True)

    def tick(self) -> int:
        """One tick: publish our input, deliver the merged batch to every local member now.
        Returns how many sockets got it. (The ticker hands big rooms their tick in slices.)"""
        handouts = self._handouts()
        return self._ticked(handouts, sum(h.all_now() for h in handouts))

    async def _tick_in_slices(self) -> int:
        """`tick()`, but the loop turns every `slice_size` sockets; meanwhile events for the rooms
        of this tick are held and written after each room's last slice (live/fanout/handout.py)."""
        handouts = self._handouts()
        sockets = sum(h.n for h in handouts)
        if sockets <= self.slice_size:
            return self._ticked(handouts, sum(h.all_now() for h in handouts))
        for h in handouts:
            h.freeze()
            h.room.sending = True
        spent = 0.0
        budget = Budget(self.slice_size, sockets)
        try:
            for h in handouts:
                spent += await h.in_slices(budget)
                release(h.room)
        finally:  # cancelled midway (stop): nothing stays held
            for h in handouts:
                if h.room.sending:
                    release(h.room)
        return self._ticked(handouts, spent)

    def _ticked(self, handouts: list[Handout], seconds: float) -> int:
        n = sum(h.n for h in handouts)
        if n:
            metrics.DELIVERIES.labels("tick").inc(n)
            metrics.TICK_SECONDS.observe(seconds)
        self.ticks += 1
        return n

    def _handouts(self) -> list[Handout]:
        """Publish our input; each room's merged batch as a tick to hand out."""
        now = self.clock()
        pending, self._pending = self._pending, {}
        inbound, self._inbound = self._inbound, {}
        for bc, b in pending.items():
            if not b.empty():
                msg: dict[str, Any] = {"n": self.node_id, "k": "t"}
                if b.chat:
                    msg["c"] = b.chat
                if b.hearts:
                    msg["h"] = b.hearts
                if b.levels:
                    msg["l"] = b.levels
                self._publish(bc, msg, "tick")
                self.published_ticks += 1
        handouts: list[Handout] = []
        for bc, room in self._rooms.items():
            batch = pending.get(bc)
            remote = inbound.get(bc)
            if remote is not None:
                if batch is None:
                    batch = remote
                else:  # other nodes' chat first (older), ours after; levels: ours are newer
                    merged = Batch()
                    merged.merge(remote.chat, remote.hearts, remote.levels)
                    merged.merge(batch.chat, batch.hearts, batch.levels)
                    batch = merged
            h = self._handout(bc, room, batch, now)
            if h is not None:
                handouts.append(h)
        return handouts

    def period(self) -> float:
        """Seconds between ticks: `tick_s`, stretched so this node hands at most `max_writes_per_s`
        tick frames a second to its sockets (a tick is one write per socket). Past that budget a
        node spent most of a core in send() and fell behind on everything else (joins, commands);
        a longer period coalesces more into each tick (chat lines, hearts summed, latest levels)
        and urgent events still go at once."""
        period = self.tick_s
        if self.max_writes_per_s > 0:
            period = max(period, len(self._members) / self.max_writes_per_s)
        metrics.TICK_PERIOD.set(period)
        return period
