"""The auction rules one by one, against a real Redis: increments, proxy bids and ties, pre-bids,
counter-bid time and sudden death, the close at the server instant, reserve price, no cancel once
started, idempotent and rate-limited bids, the log and its audit, the winner's hold and checkout,
and the second-chance offer."""
from __future__ import annotations

import asyncio

import pytest

from auctions import (
    DEFAULT_INCREMENTS,
    AuctionError,
    Auctions,
    AuctionSpec,
    increment_at,
)
from inventory import ReservationState


def test_the_increment_table_steps_up_with_the_price():
    assert increment_at(DEFAULT_INCREMENTS, 0) == 100
    assert increment_at(DEFAULT_INCREMENTS, 2_999) == 100
    assert increment_at(DEFAULT_INCREMENTS, 3_000) == 200
    assert increment_at(DEFAULT_INCREMENTS, 30_000) == 500
    assert increment_at(DEFAULT_INCREMENTS, 10**9) == 5_000


async def test_bids_follow_the_increments_and_too_low_names_the_minimum(auc, make_auction):
    a = await make_auction(start_price=2_900)
    first = await auc.bid(a.id, "ann", "r1")  # the next increment with no leader: the start price
    assert first.ok and first.high == 2_900 and first.leading
    low = await auc.bid(a.id, "ben", "r1", amount=2_999)
    assert not low.ok and low.code == "BID_TOO_LOW" and low.details["min"] == 3_000
    ok = await auc.bid(a.id, "ben", "r2", amount=3_000)
    assert ok.ok and ok.high == 3_000 and ok.leading and ok.outbid == "ann"
    nxt = await auc.bid(a.id, "ann", "r2")  # from 3,000 the step is 200
    assert nxt.ok and nxt.high == 3_200 and nxt.min_next == 3_400
    own = await auc.bid(a.id, "ann", "r3")
    assert not own.ok and own.code == "OWN_HIGH_BID"


async def test_a_max_bid_defends_up_to_its_max_and_a_tie_goes_to_the_earlier_max(auc, make_auction):
    a = await make_auction(start_price=1_000)
    m = await auc.max_bid(a.id, "ann", "m1", 2_000)
    assert m.ok and m.leading and m.high == 1_000 and m.max == 2_000
    b = await auc.bid(a.id, "ben", "b1", amount=1_500)  # defended: 1,500 + 100
    assert b.ok and not b.leading and b.high == 1_600 and b.outbid == ""
    tie = await auc.max_bid(a.id, "cat", "c1", 2_000)  # the same max, later: ann keeps it at 2,000
    assert tie.ok and not tie.leading and tie.high == 2_000
    over = await auc.max_bid(a.id, "dan", "d1", 5_000)  # above: 2,000 + 100
    assert over.ok and over.leading and over.high == 2_100 and over.outbid == "ann"
    raise_own = await auc.max_bid(a.id, "dan", "d2", 6_000)
    assert raise_own.ok and raise_own.high == 2_100 and raise_own.max == 6_000
    lower = await auc.max_bid(a.id, "dan", "d3", 5_500)
    assert not lower.ok and lower.code == "MAX_TOO_LOW"


async def test_pre_bids_apply_at_the_start(auc, make_auction):
    a = await make_auction(start=False, start_price=1_000)
    assert (await auc.bid(a.id, "ann", "x")).code == "NOT_STARTED"
    assert (await auc.max_bid(a.id, "ann", "p1", 900)).code == "BID_TOO_LOW"
    assert (await auc.max_bid(a.id, "ann", "p1", 3_000)).ok
    assert (await auc.max_bid(a.id, "ben", "p1", 3_000)).ok  # a tie: ann was first
    assert (await auc.max_bid(a.id, "cat", "p1", 1_500)).ok
    started = await auc.start(a.id)
    assert started["high"] == 3_000 and sorted(started["outbid"]) == ["ben", "cat"]
    got = await auc.get(a.id)
    assert got.leader == "ann" and got.high == 3_000 and got.bids == 3


async def test_a_late_bid_moves_the_end_unless_sudden_death(auc, make_auction):
    a = await make_auction(duration_ms=1_500, counter_ms=5_000)
    b = await auc.bid(a.id, "ann", "r1")
    assert b.ok and b.extended and b.ends_at >= b.at + 5_000 - 1
    s = await make_auction(duration_ms=1_500, counter_ms=5_000, sudden_death=True)
    b2 = await auc.bid(s.id, "ann", "r1")
    assert b2.ok and not b2.extended and b2.ends_at == s.ends_at


async def test_no_bid_is_accepted_at_or_after_the_end_and_close_waits_for_it(auc, make_auction):
    a = await make_auction(duration_ms=1_000, counter_ms=0)
    assert (await auc.close(a.id)).code == "NOT_YET"
    await auc.bid(a.id, "ann", "r1")
    while await auc.server_time_ms() < a.ends_at:
        await asyncio.sleep(0.05)
    late = await auc.bid(a.id, "ben", "r1", amount=10_000)
    assert not late.ok and late.code == "AUCTION_CLOSED"
    closed = await auc.close(a.id)
    assert closed.code == "OK" and closed.winner == "ann" and closed.price == 1_000 and closed.closed_at >= a.ends_at
    again = await auc.close(a.id)
    assert again.code == "ALREADY" and again.winner == "ann"
    report = await auc.audit(a.id)
    assert report.ok, report.problems
    assert (report.winner, report.price, report.late_bids) == ("ann", 1_000, 0)


async def test_the_reserve_price(auc, make_auction):
    a = await make_auction(duration_ms=1_000, counter_ms=0, reserve=5_000)
    await auc.bid(a.id, "ann", "r1", amount=4_000)
    b = await make_auction(duration_ms=1_000, counter_ms=0, reserve=5_000)
    await auc.max_bid(b.id, "ann", "r1", 8_000)
    await asyncio.sleep(1.1)
    while (ca := await auc.close(a.id)).code == "NOT_YET" or (cb := await auc.close(b.id)).code == "NOT_YET":
        await asyncio.sleep(0.05)
    assert ca.result == "reserve_not_met" and ca.winner == ""
    assert cb.result == "sold" and cb.winner == "ann" and cb.price == 5_000  # raised to the reserve
    assert (await auc.audit(a.id)).ok and (await auc.audit(b.id)).ok
    assert await auc.settle(a.id) is None


async def test_a_started_auction_cannot_be_cancelled(auc, make_auction):
    a = await make_auction(start=False)
    b = await make_auction()
    with pytest.raises(AuctionError) as exc:
        await auc.cancel(b.id)
    assert exc.value.code == "AUCTION_STARTED"
    assert (await auc.get(b.id)).state == "live"
    await auc.cancel(a.id)
    assert (await auc.get(a.id)).state == "cancelled"
    assert (await auc.max_bid(a.id, "ann", "r", 2_000)).code == "AUCTION_CLOSED"
    with pytest.raises(AuctionError) as exc:
        await auc.start(a.id)
    assert exc.value.code == "AUCTION_CLOSED"


async def test_a_retried_bid_returns_the_first_answer_and_counts_once(auc, make_auction):
    a = await make_auction()
    first = await auc.bid(a.id, "ann", "same")
    await auc.bid(a.id, "ben", "b1")
    again = await auc.bid(a.id, "ann", "same")
    assert again.ok and again.replay and again.high == first.high and again.v == first.v
    assert (await auc.get(a.id)).bids == 2
    assert len([e for e in await auc.bid_log(a.id) if e["k"] == "bid"]) == 2


async def test_bids_are_rate_limited_per_user(redis, inv, make_auction):
    slow = Auctions(redis, inv, bid_rate=1, bid_burst=2)
    a = await make_auction()
    answers = [await slow.bid(a.id, "ann", f"r{i}", amount=10_000 + i * 1_000) for i in range(3)]
    assert [x.ok for x in answers[:2]] == [True, False]  # the second: OWN_HIGH_BID, it took a token too
    assert answers[2].code == "RATE_LIMITED" and answers[2].details["retry_after"] > 0
    assert (await slow.bid(a.id, "ben", "r0")).ok  # another user is unaffected


async def test_bad_input_is_refused_and_changes_nothing(auc, make_auction):
    a = await make_auction()
    for bad in (await auc.bid(a.id, "ann", "r", amount=-5), await auc.bid(a.id, "ann", "r", amount=True),
                await auc.max_bid(a.id, "ann", "r", 10**13), await auc.bid(a.id, "", "r"),
                await auc.bid(a.id, "ann", "x" * 65)):
        assert not bad.ok and bad.code == "INVALID_REQUEST"
    assert (await auc.bid("nope", "ann", "r")).code == "UNKNOWN_AUCTION"
    assert (await auc.bid("../x", "ann", "r")).code == "UNKNOWN_AUCTION"
    assert (await auc.get(a.id)).v == a.v
    with pytest.raises(AuctionError) as exc:
        await auc.create(AuctionSpec("ok1", "b1", "S", "USD", 100, 60_000, increments=((5, 100),)))
    assert exc.value.code == "INVALID_REQUEST" and "increments" in exc.value.message


async def test_the_audit_catches_a_tampered_log(redis, auc, make_auction):
    from auctions import keys_for

    a = await make_auction(duration_ms=1_000, counter_ms=0)
    await auc.max_bid(a.id, "ann", "r1", 5_000)
    await auc.bid(a.id, "ben", "r1", amount=2_000)
    assert (await auc.audit(a.id)).ok
    await redis.lset(keys_for(a.id)[3], 2, b'{"s":3,"t":1,"k":"bid","u":"ben","a":9000,"h":9000,"l":"ben","e":1}')
    report = await auc.audit(a.id)
    assert not report.ok and report.problems


async def test_the_winner_gets_a_hold_at_the_winning_price_and_pays_through_checkout(redis, auc, inv, make_auction):
    from checkout import Checkout, PayRequest
    from checkout.payments import load_provider

    a = await make_auction(duration_ms=1_000, counter_ms=0)
    await auc.max_bid(a.id, "ann", "r1", 5_000)
    await auc.bid(a.id, "ben", "r1", amount=2_000)
    while (await auc.close(a.id)).code == "NOT_YET":
        await asyncio.sleep(0.05)
    offer = await auc.settle(a.id)
    assert offer.user == "ann" and offer.price == 2_100 and offer.n == 1
    assert await auc.settle(a.id) == offer  # once
    lot = await inv.get_lot(offer.lot_id)
    assert lot.unit_price == 2_100 and lot.total == 1 and lot.state.value == "CLOSED"
    assert not (await inv.reserve(offer.lot_id, "ben", 1, "sneak")).ok  # nobody else can reserve it
    co = Checkout(redis, inv, load_provider("sandbox", redis))
    order = await co.pay(PayRequest(user="ann", broadcast="b1", sale_id=offer.lot_id,
                                    reservation_id=offer.reservation_id, card={"number": "4242424242424242",
                                                                               "exp": "12/34", "cvc": "123"},
                                    contact={"name": "Ann", "email": "ann@example.com"}))
    assert order.total == 2_100
    assert (await auc.second_chance(a.id))[0] == "PAID"


async def test_an_unpaid_win_goes_to_the_runner_up(auc, inv, make_auction):
    a = await make_auction(duration_ms=1_000, counter_ms=0)
    await auc.max_bid(a.id, "ann", "r1", 5_000)
    await auc.bid(a.id, "ben", "r1", amount=2_000)
    await auc.bid(a.id, "cat", "r1", amount=3_000)
    while (await auc.close(a.id)).code == "NOT_YET":
        await asyncio.sleep(0.05)
    offer = await auc.settle(a.id)
    assert (await auc.second_chance(a.id))[0] == "NOT_YET"
    await inv.release(offer.lot_id, offer.reservation_id, "ann")  # the winner walks away
    code, second = await auc.second_chance(a.id)
    assert code == "OFFERED" and second.user == "cat" and second.price == 3_000 and second.n == 2
    res = await inv.get_reservation(second.lot_id, second.reservation_id)
    assert res.user == "cat" and res.state == ReservationState.HELD
    assert (await inv.get_lot(second.lot_id)).unit_price == 3_000
    assert (await auc.second_chance(a.id))[0] == "DONE"
    assert (await auc.audit(a.id)).ok


async def test_request_ids_and_rate_buckets_expire_after_the_end_the_log_stays(redis, auc, make_auction):
    from auctions import keys_for

    a = await make_auction(duration_ms=1_000, counter_ms=0)
    await auc.bid(a.id, "ann", "r1")
    meta, req, rl, log, _pre = keys_for(a.id)
    assert await redis.ttl(req) == -1  # kept while the auction runs
    while (await auc.close(a.id)).code == "NOT_YET":
        await asyncio.sleep(0.05)
    assert 0 < await redis.ttl(req) <= 86_400 and 0 < await redis.ttl(rl) <= 86_400
    assert await redis.ttl(log) == -1 and await redis.ttl(meta) == -1
    assert (await auc.bid(a.id, "ann", "r1")).replay  # a late retry still gets its first answer
