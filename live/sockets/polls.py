"""Poll commands: create / close (staff), vote (everyone), the close timer and the snapshot part.

Tallies go out coalesced per tick as level `poll:<id>`, published by one node at a time (a Redis
lease) from the polls marked dirty by votes; `poll.opened` and `poll.closed` are urgent."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from domain import Code, DomainError
from domain import validate as v
from live.hub.hub import Hub
from live.hub.registry import EVERYONE, STAFF, Caller
from live.hub.scheduler import NOT_YET, Scheduler
from live.periodic import Periodic
from shop.names import mask
from shop.polls import Poll, PollStore
from shop.quizzes import QuizStore

if TYPE_CHECKING:
    from live.node import Node

log = logging.getLogger("hawker.hub.polls")

MIN_S, MAX_S = 5, 24 * 3600


def level_key(poll_id: str) -> str:
    return f"poll:{poll_id}"


def tally_dict(poll_id: str, tallies: list[int]) -> dict[str, Any]:
    """`v` grows with every counted vote: tallies from several nodes arrive in any order, and a
    client keeps the one with the highest `v`."""
    return {"poll_id": poll_id, "tallies": tallies, "total": sum(tallies), "v": sum(tallies)}


class Polls:
    def __init__(self, hub: Hub, scheduler: Scheduler) -> None:
        self.hub = hub
        self.store = PollStore(hub.redis)
        self.quizzes = QuizStore(hub.redis)
        self.timers = scheduler
        self._is_quiz: dict[str, bool] = {}  # poll id -> quiz? (never changes; bounded below)

    async def announce_close(self, broadcast: str, poll_id: str) -> None:
        poll = await self.store.get(broadcast, poll_id)
        if poll is not None:
            data = poll.to_dict()
            if poll.quiz:  # the close that won ranks it, once
                data["results"] = {**await self.quizzes.finish(broadcast, poll),
                                   "leaderboard": await self.quizzes.leaderboard(broadcast)}
            self.hub.fanout.urgent(broadcast, "poll.closed", data)

    async def create(self, caller: Caller, payload: dict) -> dict[str, Any]:
        v.only(payload, {"question", "options", "duration_s", "correct"})
        question = v.text(payload, "question", max_len=200)
        options = v.string_list(payload, "options", lo=2, hi=6, max_len=100)
        correct = v.integer(payload, "correct", required=False, lo=0, hi=len(options) - 1)
        duration_s = v.integer(payload, "duration_s", required=False, lo=MIN_S, hi=MAX_S, default=60)
        bc = await self.hub.broadcasts.require(caller.broadcast)
        if bc.state == "ended":
            raise DomainError(Code.BAD_STATE, "the broadcast has ended", state="ended")
        assert question is not None and duration_s is not None
        poll = await self.store.create(caller.broadcast, question, options, duration_s * 1000, correct)
        await self.timers.add(poll.closes_at, "poll.close", caller.broadcast, poll.id)
        self.hub.fanout.urgent(caller.broadcast, "poll.opened", poll.to_dict())
        return {"poll": poll.to_dict()}

    async def close(self, caller: Caller, payload: dict) -> dict[str, Any]:
        poll_id = v.ident(payload, "poll_id")
        assert poll_id is not None
        code = await self.store.close(caller.broadcast, poll_id)
        if code != "OK":
            raise DomainError(Code(code), "the poll is already closed" if code == "POLL_CLOSED" else f"no poll {poll_id!r}")
        await self.timers.cancel("poll.close", caller.broadcast, poll_id)
        await self.announce_close(caller.broadcast, poll_id)
        return {"poll_id": poll_id}

    async def on_close_timer(self, args: list[str]) -> object:
        broadcast, poll_id = args
        code = await self.store.close(broadcast, poll_id, only_if_due=True)
        if code == "OK":
            await self.announce_close(broadcast, poll_id)
        return NOT_YET if code == "NOT_YET" else code

    async def vote(self, caller: Caller, payload: dict) -> dict[str, Any]:
        poll_id = v.ident(payload, "poll_id")
        option = v.integer(payload, "option", lo=0, hi=5)
        assert poll_id is not None and option is not None
        counted, chosen, tallies = await self.store.vote(caller.broadcast, poll_id, caller.user, option)
        if not counted and chosen != option:
            raise DomainError(Code.ALREADY_VOTED, "you already voted in this poll", option=chosen)
        if counted and await self._quiz(caller.broadcast, poll_id):
            await self.quizzes.remember(caller.broadcast, caller.user, mask(caller.name or caller.user))
        return {"poll_id": poll_id, "option": chosen, "counted": counted, "tallies": tallies}

    async def _quiz(self, broadcast: str, poll_id: str) -> bool:
        if poll_id not in self._is_quiz:
            if len(self._is_quiz) > 10_000:
                self._is_quiz.clear()
            poll = await self.store.get(broadcast, poll_id)
            self._is_quiz[poll_id] = bool(poll and poll.quiz)
        return self._is_quiz[poll_id]

    async def quiz_part(self, caller: Caller) -> dict[str, Any]:
        """The last closed quiz's results and the leaderboard (with the caller's own place)."""
        return await self.quizzes.snapshot(caller.broadcast, caller.user)

    async def publish_dirty(self) -> None:
        """Run by one node at a time (TallyPublisher): fresh tallies of every poll that got votes,
        as the coalesced level `poll:<id>`. One publisher means batches of different nodes never
        carry different tallies for the same poll."""
        for broadcast, poll_id in await self.store.take_dirty():
            tallies = await self.store.tallies(broadcast, poll_id)
            if tallies is not None:
                self.hub.fanout.level(broadcast, level_key(poll_id), tally_dict(poll_id, tallies))

    async def end_broadcast(self, broadcast: str) -> None:
        poll = await self.store.active(broadcast)
        if poll is not None and await self.store.close(broadcast, poll.id) == "OK":
            await self.announce_close(broadcast, poll.id)

    async def snapshot_part(self, caller: Caller) -> dict[str, Any] | None:
        poll: Poll | None = await self.store.active(caller.broadcast)
        if poll is None:
            return None
        mine = await self.store.vote_of(caller.broadcast, poll.id, caller.user)
        return {**poll.to_dict(), "my_vote": mine}


def register(node: Node) -> None:
    hub, polls = node.hub, node.polls
    hub.command("poll.create", roles=STAFF)(polls.create)
    hub.command("poll.close", roles=STAFF)(polls.close)
    hub.command("poll.vote", roles=EVERYONE)(polls.vote)
    hub.snapshot_part("poll")(polls.snapshot_part)
    hub.snapshot_part("quiz")(polls.quiz_part)
    node.timers.handler("poll.close")(polls.on_close_timer)
    hub.on_broadcast_end(polls.end_broadcast)


_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""


class TallyPublisher:
    """Every `period_ms`: if this node holds the lease `hub:polls:publisher`, publish dirty tallies."""

    def __init__(self, polls: Polls, *, node_id: str, period_ms: int = 100) -> None:
        self._polls = polls
        self._node = node_id
        self._period = period_ms / 1000.0
        self._lease = polls.hub.redis.register_script(_LEASE)
        self._loop = Periodic(self.round, self._period, name="poll-tallies", log=log)

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def round(self) -> None:
        lease_ms = int(self._period * 1000 * 20) + 1000
        if await self._lease(keys=["hub:polls:publisher"], args=[self._node, lease_ms]):
            await self._polls.publish_dirty()
