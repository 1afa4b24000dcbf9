"""The model and the mechanics of the inventory's stateful test (test_stateful.py): a plain-Python
model of one lot with the same lazy-expiry rules as the Lua, and a state machine base that runs the
real Inventory on the test Redis, keeps every step clear of a hold falling due mid-step, and picks
reservations and owners for the rules."""
from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine

from inventory import Inventory, StockLevels
from tests.redis_proc import client_for

MARGIN_MS = 400
HOLD_S = 1
GRACE_S = 2
MAX_EXTEND_S = 1
MAX_ATTEMPTS = 2  # payment attempts per hold (small, so the limit is reached in a run)
USERS = ["ann", "ben", "cat", "dan"]
REQUESTS = ["q0", "q1", "q2"]
fresh_ids = itertools.count()


@dataclass
class MRes:
    user: str
    qty: int
    state: str
    expires: int
    order: str = ""
    extended: bool = False
    own: int = 0  # the hold's own expiry (without a payment lock)
    attempts: int = 0


@dataclass
class Model:
    total: int
    limit: int
    state: str = "OPEN"
    available: int = 0
    held: int = 0
    sold: int = 0
    seq: int = 0
    res: dict[str, MRes] = field(default_factory=dict)
    req: dict[tuple[str, str], str] = field(default_factory=dict)
    user_units: dict[str, int] = field(default_factory=dict)
    waitlist: list[tuple[str, int]] = field(default_factory=list)

    def levels(self) -> StockLevels:
        return StockLevels(self.total, self.available, self.held, self.sold, len(self.waitlist))

    def live(self) -> list[tuple[str, MRes]]:
        return [(rid, r) for rid, r in self.res.items() if r.state in ("HELD", "PAYING")]

    # --- the Lua rules, in Python ---
    def free(self, r: MRes, state: str) -> None:
        r.state = state
        self.held -= r.qty
        self.available += r.qty
        self.user_units[r.user] -= r.qty

    def hold(self, user: str, qty: int, now: int) -> str:
        self.seq += 1
        rid = f"r{self.seq}"
        self.res[rid] = MRes(user, qty, "HELD", now + HOLD_S * 1000, own=now + HOLD_S * 1000)
        self.user_units[user] = self.user_units.get(user, 0) + qty
        self.available -= qty
        self.held += qty
        return rid

    def serve(self, now: int) -> list[str]:
        granted = []
        if self.state != "OPEN":
            return granted
        while self.available > 0 and self.waitlist:
            user, want = self.waitlist.pop(0)
            q = min(want, self.available, self.limit - self.user_units.get(user, 0))
            if q > 0:
                granted.append(self.hold(user, q, now))
        return granted

    def expire_due(self, t0: int) -> int:
        due = sorted(((r.expires, rid) for rid, r in self.live() if r.expires <= t0))
        for _, rid in due:
            self.free(self.res[rid], "EXPIRED")
        if due:
            self.serve(t0)
        return len(due)

    def settle(self, rid: str, t0: int) -> None:
        r = self.res[rid]
        if r.state in ("HELD", "PAYING") and r.expires <= t0:
            self.free(r, "EXPIRED")
            self.serve(t0)


class MachineBase(RuleBasedStateMachine):
    """What the rules share; a subclass sets `redis_url` (the test's Redis) and adds the rules."""

    redis_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.client = client_for(self.redis_url)
        self.inv = Inventory(self.client, payment_grace_s=GRACE_S, max_extend_s=MAX_EXTEND_S,
                             max_payment_attempts=MAX_ATTEMPTS)
        self.steps = 0
        self.lot_id = f"sm{next(fresh_ids)}-{time.monotonic_ns()}"
        self.model: Model | None = None
        self.t0 = 0
        self.t0_mono: float | None = None

    def run(self, coro):  # an untyped coroutine in, its result out
        result = self.loop.run_until_complete(coro)
        # The model knows which holds are due from t0 only while the step stays inside the margin:
        # a step the machine stalled past it (a loaded CI box) proves nothing either way, so the
        # example is discarded instead of failing on a hold that expired mid-step.
        if self.t0_mono is not None:
            assume(time.monotonic() - self.t0_mono < MARGIN_MS / 1000)
        return result

    @property
    def m(self) -> Model:
        """The model (the first rule, `create`, makes it)."""
        assert self.model is not None
        return self.model

    def teardown(self) -> None:
        self.run(self.client.aclose())
        self.loop.close()

    def now(self) -> int:
        return self.loop.run_until_complete(self.inv.server_time_ms())  # not a step's op: no margin

    def safe_time(self) -> int:
        """Server time t0 such that no live reservation is due within (t0, t0 + MARGIN]."""
        assert self.model is not None
        while True:
            self.t0_mono = None
            before = time.monotonic()  # before the server read: the margin is counted conservatively
            t0 = self.now()
            self.steps += 1
            # a PAYING hold's own expiry counts too: abort_payment puts it back (or expires it)
            edges = [r.expires for _, r in self.model.live()] + [r.own for _, r in self.model.live()]
            soon = [e for e in edges if t0 < e <= t0 + MARGIN_MS]
            if not soon:
                self.t0, self.t0_mono = t0, before
                return t0
            time.sleep((max(soon) - t0 + 5) / 1000)

    def check_new(self, got, rid: str, t0: int) -> None:
        """A hold the model just created: take Redis's exact expiry after bounding it."""
        assert self.model is not None
        m = self.model.res[rid]
        assert got.id == rid and got.user == m.user and got.qty == m.qty
        assert t0 + HOLD_S * 1000 <= got.expires_at_ms <= t0 + MARGIN_MS + HOLD_S * 1000
        m.expires = m.own = got.expires_at_ms

    def sync_grants(self, granted: list[str], t0: int) -> None:
        for rid in granted:
            got = self.run(self.inv.get_reservation(self.lot_id, rid))
            assert got is not None and got.from_waitlist
            self.check_new(got, rid, t0)

    def pick(self, data: st.DataObject, prefer: str = "HELD") -> str:
        """Mostly a reservation in the state the op wants, sometimes any, rarely an unknown id."""
        assert self.model is not None
        roll = data.draw(st.integers(0, 9))
        fitting = [rid for rid, r in self.model.res.items() if r.state == prefer]
        if fitting and roll < 7:
            return data.draw(st.sampled_from(fitting))
        if not self.model.res or roll == 9:
            return "r999"
        return data.draw(st.sampled_from(list(self.model.res)))

    def owner(self, rid: str, data: st.DataObject) -> str:
        assert self.model is not None
        if rid in self.model.res and data.draw(st.integers(0, 5)) > 0:
            return self.model.res[rid].user
        return data.draw(st.sampled_from(USERS))
