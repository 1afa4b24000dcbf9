"""Hypothesis stateful test: random reserve / release / extend / begin_payment / confirm / abort /
expire / adjust / waitlist / open-close / cancel sequences against a plain-Python model of one lot.

Time is real (Redis TIME, holds of 1 s), so expiry is part of the game. To keep the model exact,
every step first makes sure no live reservation expires within the next MARGIN_MS: if one would,
the step waits until it is past due. Then the set of due reservations during the step is exactly
those with expires_at <= t0 (server time read at the start of the step), and the model applies
the same lazy-expiry rules as the Lua. After every step the model, the stored counters, the audit
and the invariant (available + held + sold == total, nobody above the limit) must all agree.
"""
from __future__ import annotations

import time

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule, run_state_machine_as_test

from inventory import LotSpec, Refusal
from tests.inventory.stateful_model import (
    GRACE_S,
    HOLD_S,
    MARGIN_MS,
    MAX_ATTEMPTS,
    MAX_EXTEND_S,
    REQUESTS,
    USERS,
    MachineBase,
    Model,
    fresh_ids,
)


def test_inventory_matches_model(redis_url: str) -> None:
    url = redis_url

    class InventoryMachine(MachineBase):
        redis_url = url

        @initialize(total=st.integers(1, 4), limit=st.integers(1, 3))
        def create(self, total: int, limit: int) -> None:
            self.run(self.inv.create_lot(LotSpec(self.lot_id, "SKU", total, 100, "EUR", per_user_limit=limit,
                                                 hold_s=HOLD_S)))
            self.run(self.inv.open(self.lot_id))
            self.model = Model(total=total, limit=limit, available=total)

        @rule(user=st.sampled_from(USERS), qty=st.integers(1, 3), req=st.sampled_from(REQUESTS))
        def reserve(self, user: str, qty: int, req: str) -> None:
            m = self.m
            t0 = self.safe_time()
            got = self.run(self.inv.reserve(self.lot_id, user, qty, req))
            granted_before = m.seq
            if (user, req) in m.req:
                rid = m.req[(user, req)]
                m.settle(rid, t0)
                assert got.ok and got.reservation.id == rid and got.reservation.state.value == m.res[rid].state
            elif m.state != "OPEN":
                assert got.code is Refusal.CLOSED
            else:
                m.expire_due(t0)
                grants = [f"r{i}" for i in range(granted_before + 1, m.seq + 1)]
                if m.user_units.get(user, 0) + qty > m.limit:
                    assert got.code is Refusal.LIMIT_REACHED, got
                elif m.available < qty:
                    assert got.code is Refusal.SOLD_OUT, got
                else:
                    rid = m.hold(user, qty, t0)
                    m.req[(user, req)] = rid
                    assert got.ok, got
                    self.check_new(got.reservation, rid, t0)
                self.sync_grants(grants, t0)
                return
            self.sync_grants([f"r{i}" for i in range(granted_before + 1, m.seq + 1)], t0)

        @rule()
        def sell_out(self) -> None:
            """Every user reserves one unit (fresh request ids): usually sells the lot out, so
            the waitlist and freed-units rules get their turn."""
            for user in USERS:
                self.reserve(user, 1, f"fill{next(fresh_ids)}")

        @rule(user=st.sampled_from(USERS), qty=st.integers(1, 2), req=st.sampled_from(REQUESTS))
        def reserve_more(self, user: str, qty: int, req: str) -> None:
            """Same as reserve: a second rule so reserving is drawn more often."""
            self.reserve(user, qty, req)

        def on_reservation(self, name: str, rid: str, who: str | None, call):
            """Common part of ops on one reservation: unknown, owner, lazy expiry; returns the
            reservation when the op proper should be modelled, else None (result checked here)."""
            m = self.m
            t0 = self.safe_time()
            got = self.run(call)
            if rid not in m.res:
                assert got.code is Refusal.UNKNOWN_RESERVATION, (name, got)
                return got, None, t0
            r = m.res[rid]
            if who is not None and r.user != who:
                assert got.code is Refusal.NOT_OWNER, (name, got)
                return got, None, t0
            before = m.seq
            m.settle(rid, t0)
            self.sync_grants([f"r{i}" for i in range(before + 1, m.seq + 1)], t0)
            return got, r, t0

        @rule(data=st.data())
        def release(self, data: st.DataObject) -> None:
            rid = self.pick(data)
            who = self.owner(rid, data)
            got, r, t0 = self.on_reservation("release", rid, who, self.inv.release(self.lot_id, rid, who))
            if r is None:
                return
            m = self.m
            before = m.seq
            if r.state == "RELEASED":
                assert got.ok
            elif r.state == "EXPIRED":
                assert got.code is Refusal.EXPIRED
            elif r.state != "HELD":
                assert got.code is Refusal.NOT_HELD
            else:
                m.free(r, "RELEASED")
                m.serve(t0)
                assert got.ok and got.reservation.state.value == "RELEASED"
            self.sync_grants([f"r{i}" for i in range(before + 1, m.seq + 1)], t0)

        @precondition(lambda self: self.model is not None and bool(self.model.waitlist)
                      and any(r.state == "HELD" for r in self.model.res.values()))
        @rule(data=st.data())
        def release_while_waiting(self, data: st.DataObject) -> None:
            """Same as release, drawn when someone waits: the freed units must go to them."""
            self.release(data)

        @rule(data=st.data())
        def extend(self, data: st.DataObject) -> None:
            rid = self.pick(data)
            who = self.owner(rid, data)
            got, r, _ = self.on_reservation("extend", rid, who, self.inv.extend(self.lot_id, rid, who))
            if r is None:
                return
            if r.state == "EXPIRED":
                assert got.code is Refusal.EXPIRED
            elif r.state != "HELD":
                assert got.code is Refusal.NOT_HELD
            elif r.extended:
                assert got.code is Refusal.ALREADY_EXTENDED
            else:
                r.extended = True
                r.expires += min(HOLD_S, MAX_EXTEND_S) * 1000
                r.own = r.expires
                assert got.ok and got.reservation.expires_at_ms == r.expires

        @rule(data=st.data())
        def begin_payment(self, data: st.DataObject) -> None:
            rid = self.pick(data)
            self.begin(rid, self.owner(rid, data))

        def begin(self, rid: str, who: str) -> None:
            got, r, t0 = self.on_reservation("begin", rid, who, self.inv.begin_payment(self.lot_id, rid, who))
            if r is None:
                return
            assert self.model is not None
            if self.model.state == "CANCELLED":
                assert got.code is Refusal.SALE_CANCELLED, got
            elif r.state == "PAYING":
                assert got.ok and got.reservation.expires_at_ms == r.expires
            elif r.state == "EXPIRED":
                assert got.code is Refusal.EXPIRED
            elif r.state != "HELD":
                assert got.code is Refusal.NOT_HELD
            elif r.attempts >= MAX_ATTEMPTS:
                assert got.code is Refusal.TOO_MANY_ATTEMPTS, got
                assert got.reservation.state.value == "HELD" and got.reservation.expires_at_ms == r.expires
            else:
                assert got.ok and got.reservation.state.value == "PAYING"
                e = got.reservation.expires_at_ms  # max(expires, NOW + grace), NOW in [t0, t0 + MARGIN]
                pushed = t0 + GRACE_S * 1000 <= e <= t0 + MARGIN_MS + GRACE_S * 1000
                if r.expires >= t0 + MARGIN_MS + GRACE_S * 1000:
                    assert e == r.expires
                elif r.expires < t0 + GRACE_S * 1000:
                    assert pushed, (e, t0)
                else:
                    assert e == r.expires or pushed
                assert e >= r.expires
                assert e <= r.own + GRACE_S * 1000  # the hard cap
                r.state, r.expires = "PAYING", e
                r.attempts += 1
                assert got.reservation.payment_attempts == r.attempts

        @rule(data=st.data(), order=st.sampled_from(["o1", "o2"]))
        def confirm(self, data: st.DataObject, order: str) -> None:
            rid = self.pick(data, "PAYING")
            got, r, _ = self.on_reservation("confirm", rid, None, self.inv.confirm(self.lot_id, rid, order))
            if r is None:
                return
            m = self.m
            if r.state == "SOLD":
                assert got.ok if r.order == order else got.code is Refusal.NOT_PAYING
            elif m.state == "CANCELLED":
                assert got.code is Refusal.SALE_CANCELLED, got
            elif r.state == "EXPIRED":
                assert got.code is Refusal.EXPIRED
            elif r.state != "PAYING":
                assert got.code is Refusal.NOT_PAYING
            else:
                r.state, r.order = "SOLD", order
                m.held -= r.qty
                m.sold += r.qty
                assert got.ok and got.reservation.order_id == order

        @rule(data=st.data())
        def abort_payment(self, data: st.DataObject) -> None:
            self.abort(self.pick(data, "PAYING"))

        @rule(data=st.data())
        def declined_payment(self, data: st.DataObject) -> None:
            """begin then abort on one hold (a declined card): repeated, it meets the attempts cap."""
            rid = self.pick(data)
            assert self.model is not None
            self.begin(rid, self.model.res[rid].user if rid in self.model.res else "ann")
            self.abort(rid)

        @precondition(lambda self: self.model is not None
                      and any(r.state == "PAYING" for r in self.model.res.values()))
        @rule()
        def slow_decline(self) -> None:
            """A decline that comes back after the hold's own expiry: the abort must expire it."""
            m = self.m
            target, rid = min((r.own, rid) for rid, r in m.res.items() if r.state == "PAYING")
            while self.now() <= target:
                time.sleep(0.05)
            self.abort(rid)

        def abort(self, rid: str) -> None:
            got, r, t0 = self.on_reservation("abort", rid, None, self.inv.abort_payment(self.lot_id, rid))
            if r is None:
                return
            m = self.m
            before = m.seq
            if r.state == "HELD":
                assert got.ok
            elif r.state == "EXPIRED":
                assert got.code is Refusal.EXPIRED
            elif r.state != "PAYING":
                assert got.code is Refusal.NOT_PAYING
            elif r.own <= t0:  # the hold's own time ran out during the payment: it ends now
                m.free(r, "EXPIRED")
                m.serve(t0)
                assert got.code is Refusal.EXPIRED and got.reservation.state.value == "EXPIRED", got
            else:
                r.state, r.expires = "HELD", r.own
                assert got.ok and got.reservation.expires_at_ms == r.expires
            self.sync_grants([f"r{i}" for i in range(before + 1, m.seq + 1)], t0)

        @rule()
        def expire_due(self) -> None:
            m = self.m
            t0 = self.safe_time()
            before = m.seq
            n = self.run(self.inv.expire_due(self.lot_id))
            assert n == m.expire_due(t0)
            self.sync_grants([f"r{i}" for i in range(before + 1, m.seq + 1)], t0)

        @precondition(lambda self: self.model is not None and bool(self.model.live()))
        @rule()
        def let_time_pass(self) -> None:
            """Sleep until the earliest live reservation is past due (at most about 2 s)."""
            m = self.m
            target = min(r.expires for _, r in m.live())
            while self.now() <= target:
                time.sleep(0.05)

        @rule(user=st.sampled_from(USERS), qty=st.integers(1, 3))
        def join_waitlist(self, user: str, qty: int) -> None:
            m = self.m
            t0 = self.safe_time()
            before = m.seq
            got = self.run(self.inv.join_waitlist(self.lot_id, user, qty))
            if m.state != "OPEN":
                assert got.code is Refusal.CLOSED
                return
            m.expire_due(t0)
            self.sync_grants([f"r{i}" for i in range(before + 1, m.seq + 1)], t0)
            waiting = [u for u, _ in m.waitlist]
            if m.available > 0:
                assert got.code is Refusal.NOT_SOLD_OUT
            elif user in waiting:
                assert got.ok and got.position == waiting.index(user) + 1
            elif m.user_units.get(user, 0) + qty > m.limit:
                assert got.code is Refusal.LIMIT_REACHED
            else:
                m.waitlist.append((user, qty))
                assert got.ok and got.position == len(m.waitlist)

        @precondition(lambda self: self.model is not None and self.model.available == 0)
        @rule(user=st.sampled_from(USERS), qty=st.integers(1, 2))
        def join_when_sold_out(self, user: str, qty: int) -> None:
            """Same as join_waitlist, drawn only when the counters say sold out."""
            self.join_waitlist(user, qty)

        @rule(delta=st.integers(-3, 3))
        def adjust_total(self, delta: int) -> None:
            m = self.m
            t0 = self.safe_time()
            new = max(0, m.total + delta)
            before = m.seq
            try:
                lot = self.run(self.inv.adjust_total(self.lot_id, new))
            except Exception as exc:  # InventoryError
                assert new < m.held + m.sold and exc.code is Refusal.BELOW_COMMITTED
                return
            assert new >= m.held + m.sold
            m.total, m.available = new, new - m.held - m.sold
            m.serve(t0)
            self.sync_grants([f"r{i}" for i in range(before + 1, m.seq + 1)], t0)
            assert lot.levels == m.levels()

        @precondition(lambda self: self.model is not None and self.model.state != "CANCELLED")
        @rule()
        def toggle_open(self) -> None:
            m = self.m
            t0 = self.safe_time()
            before = m.seq
            if m.state == "OPEN":
                self.run(self.inv.close(self.lot_id))
                m.state = "CLOSED"
            else:
                self.run(self.inv.open(self.lot_id))
                m.state = "OPEN"
                m.serve(t0)
            self.sync_grants([f"r{i}" for i in range(before + 1, m.seq + 1)], t0)

        @precondition(lambda self: self.model is not None and self.model.state != "CANCELLED" and self.steps >= 25)
        @rule()
        def cancel(self) -> None:
            """Late in a run (cancelling ends the lot's story): live holds are freed, the waitlist
            emptied; payments are refused from then on (checked by begin_payment / confirm)."""
            m = self.m
            self.safe_time()
            lot = self.run(self.inv.cancel(self.lot_id))
            for _, r in m.live():
                m.free(r, "CANCELLED")
            m.waitlist.clear()
            m.state = "CANCELLED"
            assert lot.levels == m.levels() and lot.levels.held == 0 and lot.levels.waitlist == 0

        @invariant()
        def agrees(self) -> None:
            self.t0_mono = None  # reads after the step: they do not depend on the time
            m = self.model
            if m is None:
                return
            levels = self.run(self.inv.snapshot(self.lot_id))
            assert levels == m.levels()
            assert levels.available + levels.held + levels.sold == levels.total
            assert levels.available >= 0
            assert all(u <= m.limit for u in m.user_units.values())
            audit = self.run(self.inv.audit(self.lot_id))
            assert audit.ok, audit.problems
            assert audit.max_user_units <= m.limit
            for user in USERS:
                holds = self.run(self.inv.holds_of(self.lot_id, user))
                expect = sorted(rid for rid, r in m.res.items()
                                if r.user == user and r.state in ("HELD", "PAYING", "SOLD"))
                assert sorted(h.id for h in holds) == expect

    run_state_machine_as_test(
        InventoryMachine,
        settings=settings(max_examples=30, stateful_step_count=40, deadline=None,
                          suppress_health_check=list(HealthCheck)),
    )
