"""The spike audit's checks on hand-made data: each property fails when it is broken."""
from loadtest.audit import check, passed


def _data(**changes):
    data = {
        "server_time": 10_000,
        "lot": {"total": 3, "per_user_limit": 2},
        "levels": {"total": 3, "available": 1, "held": 0, "sold": 2, "waitlist": 0},
        "reservations": [
            {"id": "r1", "user": "a", "qty": 1, "state": "SOLD", "order_id": "o1", "expires_at": 5000},
            {"id": "r2", "user": "b", "qty": 1, "state": "SOLD", "order_id": "o2", "expires_at": 5000},
            {"id": "r3", "user": "c", "qty": 1, "state": "EXPIRED", "order_id": None, "expires_at": 5000},
        ],
        "orders": [
            {"id": "o1", "reservation_id": "r1", "user": "a", "qty": 1, "state": "PAID"},
            {"id": "o2", "reservation_id": "r2", "user": "b", "qty": 1, "state": "PAID"},
        ],
        "inventory_audit": {"ok": True, "problems": []},
    }
    data.update(changes)
    return data


def _failed(checks):
    return {c.name for c in checks if not c.ok}


def test_consistent_sale_passes():
    checks = check(_data(), client_orders=["o1", "o2"])
    assert passed(checks), [c for c in checks if not c.ok]


def test_forged_extra_order_fails():
    d = _data()
    d["orders"].append({"id": "o3", "reservation_id": "r3", "user": "c", "qty": 1, "state": "PAID"})
    assert "every paid order matches a confirmed reservation" in _failed(check(d))


def test_order_paid_twice_fails():
    d = _data()
    d["orders"].append({"id": "o9", "reservation_id": "r1", "user": "a", "qty": 1, "state": "PAID"})
    assert "no duplicate orders" in _failed(check(d))


def test_user_above_limit_fails():
    d = _data()
    d["reservations"].append({"id": "r4", "user": "a", "qty": 2, "state": "HELD", "order_id": None, "expires_at": 99_000})
    assert "nobody above the limit" in _failed(check(d))


def test_oversold_fails():
    d = _data(levels={"total": 3, "available": -1, "held": 0, "sold": 4, "waitlist": 0})
    d["reservations"] += [{"id": f"x{i}", "user": f"u{i}", "qty": 1, "state": "SOLD", "order_id": f"ox{i}", "expires_at": 0}
                          for i in range(2)]
    failed = _failed(check(d))
    assert "units sold <= units" in failed
    assert "available + held + sold == total" in failed


def test_hold_left_past_expiry_fails():
    d = _data()
    d["reservations"][2] = {"id": "r3", "user": "c", "qty": 1, "state": "HELD", "order_id": None, "expires_at": 9_000}
    d["levels"] = {"total": 3, "available": 0, "held": 1, "sold": 2, "waitlist": 0}
    assert "after expiry every hold is sold or released" in _failed(check(d))


def test_confirmation_missing_from_ledger_fails():
    assert "every order a buyer was told about is in the ledger" in _failed(check(_data(), client_orders=["o1", "o7"]))


def test_sold_without_order_fails():
    d = _data()
    d["orders"] = d["orders"][:1]
    assert "every sold unit has a paid order" in _failed(check(d))


def test_a_sale_nobody_reached_fails():
    d = _data(reservations=[], orders=[], levels={"total": 3, "available": 3, "held": 0, "sold": 0, "waitlist": 0})
    assert "the sale took place (reservations were made)" in _failed(check(d))


def test_hawker_loadtest_spike_is_the_spike_runner():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "live", "loadtest", "spike", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--viewers" in out.stdout and "--allow-remote" in out.stdout
    refused = subprocess.run([sys.executable, "-m", "live", "loadtest", "spike", "--url", "http://192.0.2.1:8080",
                              "--secret", "x" * 40], capture_output=True, text=True)
    assert refused.returncode == 2 and "loopback" in refused.stderr  # safe by default: no remote target
    burst = subprocess.run([sys.executable, "-m", "live", "loadtest", "burst", "--help"], capture_output=True, text=True)
    assert burst.returncode == 0 and "--buyers" in burst.stdout
