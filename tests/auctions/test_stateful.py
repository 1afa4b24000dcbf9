"""Hypothesis stateful test: random pre-bid / start / bid / next-increment bid / max bid / retry /
cancel / close sequences against a plain-Python model of one auction.

Time is real (Redis TIME; a 2 s auction with 500 ms counter-bid time). The model takes the server
instant of each accepted bid from its answer (`at`, an input, like the clock) and applies the rules
itself: the minimum, proxy defence and ties, the end moving on a late bid. Before every bid the test
reads the server clock: if the end is within MARGIN_MS it waits until the end has passed and then
expects AUCTION_CLOSED, so the model never has to guess which side of the end a bid landed on.
After every step the stored auction must equal the model and the log's audit must agree."""
from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from auctions import AuctionError, Auctions, AuctionSpec
from inventory import Inventory
from tests.redis_proc import client_for

START = 1_000
DURATION_MS = 2_000
COUNTER_MS = 500
MARGIN_MS = 400
TABLE = ((0, 100), (1_500, 200), (3_000, 500))
USERS = ["ann", "ben", "cat", "dan"]
_ids = itertools.count()


def step(price: int) -> int:
    return [s for f, s in TABLE if price >= f][-1]


@dataclass
class Model:
    state: str = "scheduled"
    high: int = 0
    leader: str = ""
    lmax: int = 0
    bids: int = 0
    ends: int = 0
    pre: dict[str, tuple[int, int]] = field(default_factory=dict)
    seq: int = 0
    answers: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # (user, rid) -> (high, v)

    def min_next(self) -> int:
        return self.high + step(self.high) if self.leader else START

    def accept(self, kind: str, user: str, amount: int, at: int) -> None:
        """A bid the rules accept (the caller checked the minimum and own-bid rules)."""
        if kind == "max" and user == self.leader:
            self.lmax = amount
            return
        if not self.leader:
            self.leader, self.lmax, self.high = user, amount, amount if kind == "bid" else START
        elif amount > self.lmax:
            self.high = amount if kind == "bid" else min(amount, self.lmax + step(self.lmax))
            self.leader, self.lmax = user, amount
        elif amount == self.lmax:
            self.high = self.lmax
        else:
            self.high = min(self.lmax, amount + step(amount))
        self.bids += 1
        if self.ends - at < COUNTER_MS:
            self.ends = at + COUNTER_MS


class AuctionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis = client_for(self.url)
        self.auc = Auctions(self.redis, Inventory(self.redis), bid_rate=1000, bid_burst=1000, hold_s=10)
        self.id = f"st{next(_ids)}-{time.monotonic_ns()}"
        self.m = Model()
        self.rids = itertools.count()

    url = ""

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.redis.aclose())
        self.loop.close()

    @initialize()
    def create(self) -> None:
        self.run(self.auc.create(AuctionSpec(self.id, "b1", "SKU", "USD", START, DURATION_MS, counter_ms=COUNTER_MS,
                                             increments=TABLE)))

    async def _now(self) -> int:
        return await self.auc.server_time_ms()

    def _open_window(self) -> bool:
        """True when a bid sent now surely lands before the end; else waits until past the end."""
        now = self.run(self._now())
        if self.m.ends - now > MARGIN_MS:
            return True
        while self.run(self._now()) < self.m.ends:
            self.run(asyncio.sleep(0.02))
        return False

    @precondition(lambda self: self.m.state == "scheduled")
    @rule(user=st.sampled_from(USERS), delta=st.integers(-200, 3_000))
    def prebid(self, user: str, delta: int) -> None:
        amount = START + delta
        rid = f"p{next(self.rids)}"
        r = self.run(self.auc.max_bid(self.id, user, rid, amount))
        old = self.m.pre.get(user)
        if amount < START:
            assert r.code == "BID_TOO_LOW" and r.details["min"] == START
        elif old and amount <= old[0]:
            assert r.code == "MAX_TOO_LOW"
        else:
            assert r.ok, r
            self.m.seq += 1
            self.m.pre[user] = (amount, self.m.seq)

    @precondition(lambda self: self.m.state == "scheduled")
    @rule()
    def start(self) -> None:
        out = self.run(self.auc.start(self.id))
        m = self.m
        m.state, m.ends = "live", out["started_at"] + DURATION_MS
        order = sorted(m.pre.items(), key=lambda kv: (-kv[1][0], kv[1][1]))
        if order:
            m.leader, m.lmax = order[0][0], order[0][1][0]
            if len(order) == 1:
                m.high = START
            elif order[1][1][0] == m.lmax:
                m.high = m.lmax
            else:
                m.high = min(m.lmax, order[1][1][0] + step(order[1][1][0]))
            m.bids = len(order)
        assert out["high"] == m.high

    @precondition(lambda self: self.m.state == "scheduled")
    @rule()
    def cancel(self) -> None:
        self.run(self.auc.cancel(self.id))
        self.m.state = "cancelled"

    @precondition(lambda self: self.m.state == "live")
    @rule(user=st.sampled_from(USERS), kind=st.sampled_from(["bid", "next", "max"]), delta=st.integers(-300, 2_500))
    def bid(self, user: str, kind: str, delta: int) -> None:
        m = self.m
        rid = f"r{next(self.rids)}"
        in_time = self._open_window()
        amount = m.min_next() + delta
        if kind == "max":
            r = self.run(self.auc.max_bid(self.id, user, rid, amount))
        else:
            r = self.run(self.auc.bid(self.id, user, rid, None if kind == "next" else amount))
            if kind == "next":
                amount = m.min_next()
        if not in_time:
            assert r.code == "AUCTION_CLOSED", r
            return
        own = user == m.leader
        if kind != "max" and own:
            assert r.code == "OWN_HIGH_BID", r
        elif kind == "max" and own and amount <= m.lmax:
            assert r.code == "MAX_TOO_LOW" and r.details["min"] == m.lmax + 1, r
        elif not own and amount < m.min_next():
            assert r.code == "BID_TOO_LOW" and r.details["min"] == m.min_next(), r
        else:
            assert r.ok and not r.replay, r
            m.accept("max" if kind == "max" else "bid", user, amount, r.at)
            assert (r.high, r.leading, r.ends_at, r.bids) == (m.high, m.leader == user, m.ends, m.bids)
            m.answers[(user, rid)] = (r.high, r.v)

    @precondition(lambda self: bool(self.m.answers) and self.m.state == "live")
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        (user, rid), (high, v) = data.draw(st.sampled_from(sorted(self.m.answers.items())))
        r = self.run(self.auc.bid(self.id, user, rid, 123_456))  # whatever the retry says, the first answer
        assert r.ok and r.replay and (r.high, r.v) == (high, v)

    @precondition(lambda self: self.m.state == "live")
    @rule()
    def finish(self) -> None:
        m = self.m
        while self.run(self._now()) < m.ends:
            self.run(asyncio.sleep(0.02))
        c = self.run(self.auc.close(self.id))
        assert c.code == "OK" and c.closed_at >= m.ends
        expect = ("sold", m.leader, m.high) if m.leader else ("no_bids", "", 0)
        assert (c.result, c.winner, c.price) == expect
        m.state = "closed"
        if m.leader:
            offer = self.run(self.auc.settle(self.id))
            assert (offer.user, offer.price) == (m.leader, m.high)

    @precondition(lambda self: self.m.state in ("closed", "cancelled"))
    @rule(user=st.sampled_from(USERS), kind=st.sampled_from(["bid", "max", "cancel"]))
    def after_the_end(self, user: str, kind: str) -> None:
        """Nothing moves an auction that is over: bids and cancels are refused."""
        if kind == "cancel":
            if self.m.state == "closed":
                with pytest.raises(AuctionError) as exc:
                    self.run(self.auc.cancel(self.id))
                assert exc.value.code == "AUCTION_CLOSED"
            return
        call = self.auc.bid(self.id, user, "late", 10**6) if kind == "bid" else self.auc.max_bid(self.id, user, "late", 10**6)
        assert self.run(call).code == "AUCTION_CLOSED"

    @invariant()
    def stored_equals_model(self) -> None:
        a = self.run(self.auc.get(self.id))
        m = self.m
        assert a.state == m.state
        assert (a.high, a.leader, a.bids) == (m.high, m.leader, m.bids)
        if m.state == "live":
            assert (a.leader_max, a.ends_at) == (m.lmax, m.ends)
        report = self.run(self.auc.audit(self.id))
        assert report.ok, report.problems
        assert report.late_bids == 0


def test_auction_state_machine(redis_url: str) -> None:
    AuctionMachine.url = redis_url
    run_state_machine_as_test(AuctionMachine, settings=settings(
        max_examples=25, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
