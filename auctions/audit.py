"""The audit: replay an auction's append-only bid log with the bidding rules and check that every
recorded price, leader and end time — and so the winner and the price — follow from it.

The rules, in Python (the Lua in bid.lua / start.lua / close.lua applies the same ones):
- min next bid = start price with no leader, else high + increment(high);
- a bid of A >= min next: A > leader's max -> A leads at price A; else the leader's max defends:
  price = min(max, A + increment(A)), a tie (A == max) goes to the earlier max (the leader);
- a max bid M >= min next from someone else: M > leader's max -> M leads at min(M, old max +
  increment(old max)); else defended as above; with no leader M leads at the start price;
  the leader raising their own max moves no price;
- pre-bids at start: highest max leads (ties: the earlier), price = start with one pre-bidder,
  else min(top, second + increment(second)) (a tie: the top max);
- every price-moving bid inside the last counter_ms moves the end to t + counter_ms (unless sudden
  death); nothing is accepted at or after the end;
- at close: no leader -> no_bids; reserve above the leader's max -> reserve_not_met; else sold at
  max(price, reserve)."""
from __future__ import annotations

from typing import Any

from auctions.types import Auction, AuditReport, increment_at


def replay(auction: Auction, entries: list[dict[str, Any]]) -> AuditReport:
    """Recompute the auction from its log; `problems` lists every disagreement."""
    inc = auction.increments
    problems: list[str] = []
    high, leader, lmax, ends, bids, late = 0, "", 0, 0, 0, 0
    state = "scheduled"
    pre: dict[str, tuple[int, int]] = {}
    best: dict[str, tuple[int, int]] = {}  # user -> (highest amount committed, seq it was first reached)
    result, winner, price = None, "", 0

    def commit(user: str, amount: int, seq: int) -> None:
        if user not in best or amount > best[user][0]:
            best[user] = (amount, seq)

    for e in entries:
        k, seq, t = e.get("k"), int(e.get("s", 0)), int(e.get("t", 0))
        if k == "pre":
            if state != "scheduled":
                problems.append(f"#{seq}: a pre-bid while {state}")
            pre[e["u"]] = (int(e["a"]), seq)
            commit(e["u"], int(e["a"]), seq)
        elif k == "start":
            state = "live"
            ends = t + auction.duration_ms
            order = sorted(pre.items(), key=lambda kv: (-kv[1][0], kv[1][1]))
            if order:
                leader, (lmax, _) = order[0][0], order[0][1]
                if len(order) == 1:
                    high = auction.start_price
                elif order[1][1][0] == lmax:
                    high = lmax
                else:
                    second = order[1][1][0]
                    high = min(lmax, max(auction.start_price, second + increment_at(inc, second)))
                bids = len(order)
            _check(problems, seq, e, high, leader, ends)
        elif k in ("bid", "max"):
            if state != "live":
                problems.append(f"#{seq}: a bid while {state}")
            if t >= ends:
                late += 1
                problems.append(f"#{seq}: accepted at {t}, at or after the end {ends}")
            user, amount = e["u"], int(e["a"])
            min_next = high + increment_at(inc, high) if leader else auction.start_price
            own = k == "max" and user == leader
            if own:
                if amount <= lmax:
                    problems.append(f"#{seq}: own max {amount} not above {lmax}")
                lmax = amount
            else:
                if amount < min_next:
                    problems.append(f"#{seq}: {amount} below the minimum {min_next}")
                if k == "bid" and user == leader:
                    problems.append(f"#{seq}: a bid on one's own high bid")
                if not leader:
                    leader, lmax = user, amount
                    high = amount if k == "bid" else auction.start_price
                elif amount > lmax:
                    high = amount if k == "bid" else min(amount, lmax + increment_at(inc, lmax))
                    leader, lmax = user, amount
                elif amount == lmax:
                    high = lmax
                else:
                    high = min(lmax, amount + increment_at(inc, amount))
                bids += 1
                if not auction.sudden_death and ends - t < auction.counter_ms:
                    ends = t + auction.counter_ms
            commit(user, amount, seq)
            _check(problems, seq, e, high, leader, ends)
        elif k == "close":
            if t < ends:
                problems.append(f"#{seq}: closed at {t} before the end {ends}")
            state = "closed"
            if not leader:
                result, winner, price = "no_bids", "", 0
            elif auction.reserve is not None and lmax < auction.reserve:
                result, winner, price = "reserve_not_met", "", 0
            else:
                result, winner, price = "sold", leader, max(high, auction.reserve or 0)
            if (e.get("w"), int(e.get("p", 0)), e.get("r")) != (winner, price, result):
                problems.append(f"#{seq}: close says {e.get('r')} {e.get('w')!r} at {e.get('p')}, "
                                f"the log implies {result} {winner!r} at {price}")
        elif k == "cancel":
            if state != "scheduled":
                problems.append(f"#{seq}: cancelled while {state}")
            state, result = "cancelled", "cancelled"
    if auction.state in ("closed", "cancelled") and auction.result != result:
        problems.append(f"the auction says {auction.result}, the log implies {result}")
    if auction.state == "closed" and ((auction.winner or ""), auction.price or 0) != (winner, price):
        problems.append(f"the auction says {auction.winner!r} at {auction.price}, the log implies {winner!r} at {price}")
    if auction.state == "live" and (auction.high, auction.leader, auction.ends_at) != (high, leader, ends):
        problems.append(f"the auction says {auction.high} by {auction.leader!r} until {auction.ends_at}, "
                        f"the log implies {high} by {leader!r} until {ends}")
    if bids != auction.bids:
        problems.append(f"the auction counts {auction.bids} bids, the log {bids}")
    others = sorted(((a, s, u) for u, (a, s) in best.items() if u != winner), key=lambda x: (-x[0], x[1]))
    runner = others[0] if others else (0, 0, "")
    return AuditReport(ok=not problems, problems=problems[:50], bids=bids, winner=winner, price=price, result=result,
                       late_bids=late, runner_up=runner[2], runner_up_amount=runner[0])


def _check(problems: list[str], seq: int, e: dict[str, Any], high: int, leader: str, ends: int) -> None:
    if (int(e.get("h", -1)), e.get("l"), int(e.get("e", -1))) != (high, leader, ends):
        problems.append(f"#{seq}: recorded {e.get('h')} by {e.get('l')!r} until {e.get('e')}, "
                        f"the rules give {high} by {leader!r} until {ends}")
