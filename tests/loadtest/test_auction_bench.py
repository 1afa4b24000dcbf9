"""The auction bench end to end (a small run through a real server), and its replay of the rules."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from auctions import DEFAULT_INCREMENTS
from loadtest.auction_bench import replay

TABLE = [list(r) for r in DEFAULT_INCREMENTS]


def test_the_bench_replay_finds_the_winner_and_the_price():
    # v, kind, user, amount, at, high the server said
    acks = [(1, "bid", "a", 100, 0, 100), (2, "max", "b", 1_000, 0, 200), (3, "bid", "c", 500, 0, 600),
            (4, "max", "d", 1_000, 0, 1_000)]
    assert replay(acks, TABLE, 100) == ("b", 1_000, 0)  # a tie goes to the earlier max
    assert replay(acks[:3], TABLE, 100) == ("b", 600, 0)
    wrong = [(1, "bid", "a", 100, 0, 100), (2, "bid", "b", 300, 0, 250)]
    assert replay(wrong, TABLE, 100)[2] == 1  # an ack that disagrees with the rules is counted


@pytest.mark.slow
def test_a_small_bench_finds_one_winner_and_no_late_bid():
    proc = subprocess.run([sys.executable, "-m", "loadtest.auction_bench", "--bidders", "8", "--seconds", "5",
                           "--processes", "1", "--proxy-every", "3", "--json"],
                          check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["winner_ok"] is True and figures["late_bids_accepted"] == 0
    assert figures["connected"] == 8 and figures["accepted"] > 8 and figures["holds"] == 1
    assert figures["codes"].get("AUCTION_CLOSED") == 8  # every bidder kept bidding until the end refused it
    assert set(figures) >= {"bids_per_s", "p99_ms", "winner_ok", "late_bids_accepted"}
